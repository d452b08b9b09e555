// What follows a publish: the manifest beside the file (before the row says succeeded: loaders wait
// for it), then retention (keep:) and the on_success hook. Retention and the hook never change the
// job's state; they write only their own columns (file_removed_at of other rows, hook_result of
// this one), so no other writer of those rows loses an update.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "metrics/metrics.hpp"
#include "util/log.hpp"
#include "store/job_store.hpp"
#include "store/store_writer.hpp"
#include "util/time.hpp"

namespace apsis::after_publish {

// The published job, as the manifest and the hook describe it.
struct PublishedJob {
  std::int64_t id{0};
  std::string export_name;
  TimePoint scheduled_for{};
  TimePoint created_at{};
  std::optional<TimePoint> submitted_at;
  std::string output_path;  // where the file was published, absolute
  std::uint64_t bytes{0};
  std::string sha256;
  std::string content_type;
  std::optional<std::string> content_encoding;
  int polls{0};
  int download_attempts{0};
  Milliseconds download_duration{0};  // first body byte to published
};

// What the steps need from the daemon around them; all owned elsewhere and outliving the call.
struct Context {
  boost::asio::any_io_executor executor;
  store::StoreWriter& writer;  // every write, and the reads that must not fail on a busy database
  store::JobStore& store;      // the one write made after a shutdown began ("interrupted by shutdown")
  const config::Config& config;
  const config::ExportDefinition& definition;
  const Logger& log;
  boost::asio::thread_pool* blocking{nullptr};  // file writes and deletes; null = on the loop
  metrics::Metrics* metrics{nullptr};           // null = not measured
  NowFunction now;
  std::string_view instance{};  // this process's instance id, named in the manifest
};

// The job's export, id and account, for its log entries.
inline LogFields log_fields(const Context& context, const PublishedJob& job) {
  return {.export_name = job.export_name, .job_id = job.id, .account = context.definition.account};
}

// Writes <file>.json beside the published file (durably) and returns its path. Writes no row: the
// path goes into the row that says succeeded. Throws std::system_error when it cannot.
boost::asio::awaitable<std::filesystem::path> write_manifest(const Context& context, const PublishedJob& job);

// Retention, then the hook, for a job whose row already says succeeded. Failures are logged on the
// job and never change its state; cancellation (shutdown) is rethrown, after the hook's row says
// "interrupted by shutdown" if the hook was running.
boost::asio::awaitable<void> after_success(const Context& context, const PublishedJob& job,
                                           std::optional<std::filesystem::path> manifest);

}  // namespace apsis::after_publish
