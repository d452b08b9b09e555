// JobStore's statements that run on every step of every job: prepared on first use, kept for the
// store's life (preparing is the costly part of a statement). Private to store/.
#pragma once

#include <optional>

#include "store/sqlite_job_store.hpp"
#include "store/sqlite.hpp"

namespace apsis::store {

struct SqliteJobStore::Prepared {
  std::optional<Statement> save;
  std::optional<Statement> submit_attempt;
  std::optional<Statement> submitted;
  std::optional<Statement> progress;
  std::optional<Statement> download_started;
  std::optional<Statement> resubmit;
  std::optional<Statement> published;
  std::optional<Statement> finished;
  std::optional<Statement> hook_result;
  std::optional<Statement> file_removed;
};

}  // namespace apsis::store
