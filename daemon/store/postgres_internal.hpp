// What PostgresJobStore's files share: the column list and its reader, and call(). Private to store/.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pg/error.hpp"
#include "pg/result.hpp"
#include "store/postgres_job_store.hpp"
#include "store/postgres_session.hpp"

namespace apsis::store {

// SqliteJobStore's columns in the same order, then the account (for the fence's cache).
inline constexpr const char* kPostgresColumns =
    "id, export, scheduled_for, state, definition, created_at, submit_attempts, submitted_at, poll_url, "
    "poll_expires_at, polls, last_http_status, next_poll_at, download_attempts, content_type, "
    "content_encoding, finished_at, error, output_path, bytes, sha256, resubmits, manifest_path, hook_result, "
    "file_removed_at, poll_url_field, polls_503_in_a_row, previous_poll_url, resubmit_reason, window_start, "
    "window_end, account";
inline constexpr const char* kPostgresFinished = "state IN ('succeeded','failed','expired','skipped')";
inline constexpr const char* kPostgresUnfinished = "state IN ('pending','submitted','downloading')";

// Row `row` of a result with kPostgresColumns; records the job's account in `accounts`.
Job read_postgres_job(const pg::Result& result, int row, std::map<std::int64_t, std::optional<std::string>>& accounts);
// A time column; throws std::runtime_error for text that is not one.
TimePoint postgres_time(const pg::Result& result, int row, int column);
std::optional<std::string> optional_iso(const std::optional<TimePoint>& t);
std::optional<std::string> optional_number(const std::optional<std::int64_t>& n);

// Times the operation, rolls back a transaction a failed outermost call left open, and turns
// pg::Error into Busy (the connection went away or the server asks to try again) or
// std::runtime_error with the server's message.
template <typename Body>
decltype(auto) PostgresJobStore::call(std::string_view operation, Body&& body) {
  std::unique_lock lock(mutex_, std::defer_lock);
  if (!lock.try_lock_for(options_.lock_wait))
    throw Busy(description_ + ": database busy: " + std::string(operation) + " waited " +
               std::to_string(options_.lock_wait.count()) + " ms for another call to end");
  struct Depth {
    PostgresJobStore& store;
    std::chrono::steady_clock::time_point started{std::chrono::steady_clock::now()};
    explicit Depth(PostgresJobStore& s) : store(s) { ++store.depth_; }
    ~Depth() {
      if (--store.depth_ == 0) store.times_.record(std::chrono::steady_clock::now() - started);
    }
    Depth(const Depth&) = delete;
    Depth& operator=(const Depth&) = delete;
    bool outermost() const { return store.depth_ == 1; }
  } depth(*this);
  try {
    try {
      return body();
    } catch (const pg::Error& e) {
      if (e.connection_lost() || pg::is_transient(e))
        throw Busy(description_ + ": database unavailable: " + std::string(operation) + ": " + e.what());
      throw std::runtime_error(description_ + ": " + std::string(operation) + ": " + e.what());
    }
  } catch (...) {
    if (depth.outermost()) session_->abandon_transaction();
    throw;
  }
}

}  // namespace apsis::store
