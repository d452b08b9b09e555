// keep: after a publish, the export's older files that no rule keeps are deleted, and their rows
// (other jobs' rows) get file_removed_at, written by a narrow update: a job of those rows still
// running its hook keeps its own columns and they keep theirs.
#pragma once

#include "after_publish/after_publish.hpp"

namespace apsis::after_publish {

// Throws on a database or planning error (the caller logs it on the job); a file that cannot be
// deleted is logged and its row left as it is.
boost::asio::awaitable<void> apply_retention(const Context& context, const PublishedJob& job);

}  // namespace apsis::after_publish
