// The on_success command of a published job: its environment, and running it with its outcome
// recorded in the job's hook_result column (and nothing else of the row).
#pragma once

#include <map>
#include <string>

#include "after_publish/after_publish.hpp"

namespace apsis::after_publish {

// APSIS_FILE, APSIS_MANIFEST, APSIS_EXPORT, … as documented in the README.
std::map<std::string, std::string> hook_environment(const PublishedJob& job,
                                                    const std::optional<std::filesystem::path>& manifest,
                                                    const std::filesystem::path& output_dir);

// Runs the definition's on_success hook. Never throws but for cancellation, which it records first.
boost::asio::awaitable<void> run_hook(const Context& context, const PublishedJob& job,
                                      const std::optional<std::filesystem::path>& manifest);

}  // namespace apsis::after_publish
