// The job table on PostgreSQL (schema/postgresql/*.sql): the same rows, columns and meaning as
// SqliteJobStore, shared by several instances.
//
// Synchronous: it owns a private io_context and one pg::Connection and runs each query to its end
// (pg::run_blocking). The daemon makes its calls on one database thread (store/store_writer.hpp),
// CLI commands on their main thread; calls are serialised by a lock, so the few the event loop still
// makes directly are safe (they wait for the database thread's call to end). A lost connection or a transient server error throws Busy ("database
// unavailable") and nothing is assumed written; the next call connects again.
//
// Fencing: with a LeaseBook, every write to an existing row (save, record_*) is one statement that
// only changes the row while this instance holds the lease of the row's account, under the epoch the
// book names, and the lease has not expired by the database's clock; otherwise it throws LeaseLost and
// the row stays as it was. Without a book (CLI commands) writes are not fenced. Creating a row is
// never fenced: any instance may add a slot.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pg/settings.hpp"
#include "store/fence.hpp"
#include "store/job_store.hpp"

namespace apsis::store {

class PostgresSession;
// Statement parameters in text format; empty is NULL.
using SqlParams = std::vector<std::optional<std::string>>;

struct PostgresStoreOptions {
  // null: writes are not fenced (CLI commands, which hold no lease).
  std::shared_ptr<const LeaseBook> leases{};
  // Connecting, and each statement: a server that stops answering becomes Busy, not a hang.
  Milliseconds connect_timeout{10'000};
  Milliseconds statement_timeout{30'000};
  // How long a call waits for another thread's call to end before it throws Busy. The daemon keeps it
  // short: the event loop's few direct calls must not queue behind the database thread's retries
  // while the database is away.
  Milliseconds lock_wait{std::chrono::hours(1)};
};

class PostgresJobStore final : public JobStore {
 public:
  // Connects and migrates the schema (one transaction under an advisory lock, so instances starting
  // together apply it once); refuses a schema newer than this binary knows, and a database holding a
  // table `jobs` that no apsis-exportd made.
  static std::unique_ptr<PostgresJobStore> open(const pg::ConnectionSettings& settings,
                                                PostgresStoreOptions options = {});
  // For `jobs` and `status`: never creates or migrates anything, and writes nothing. Throws
  // NotInitialised while the database has no job table yet, and refuses another schema version.
  static std::unique_ptr<PostgresJobStore> open_read_only(const pg::ConnectionSettings& settings,
                                                          PostgresStoreOptions options = {});
  static int schema_version();

  ~PostgresJobStore() override;
  PostgresJobStore(const PostgresJobStore&) = delete;
  PostgresJobStore& operator=(const PostgresJobStore&) = delete;

  Job create(const std::string& export_name, TimePoint scheduled_for, const std::string& definition_json,
             TimePoint now) override;
  Job create_asked_for(const std::string& export_name, TimePoint asked_at, const std::string& definition_json,
                       TimePoint now) override;
  Job create_asked_for(const std::string& export_name, TimePoint asked_at, const std::string& definition_json,
                       TimePoint now, const std::function<void(std::int64_t id)>& claim) override;
  void save(const Job& job) override;

  void record_submit_attempt(std::int64_t id, const SubmitAttempt& attempt) override;
  void record_submitted(std::int64_t id, const SubmittedColumns& submitted) override;
  // With a book, the rows whose lease is held are written and LeaseLost then names the others.
  void record_progress(std::span<const PollProgress> progress) override;
  void record_download_started(std::int64_t id, const DownloadStarted& started) override;
  void record_resubmit(std::int64_t id, const Resubmitting& resubmitting) override;
  void record_published(std::int64_t id, const PublishedColumns& published) override;
  void record_finished(std::int64_t id, const FinishedColumns& finished) override;
  void record_hook_result(std::int64_t id, const std::string& hook_result) override;
  void record_file_removed(std::int64_t id, TimePoint removed_at) override;

  std::optional<Job> find(std::int64_t id) override;
  std::vector<Job> list(const JobFilter& filter) override;
  std::vector<Job> unfinished(std::int64_t after_id = 0, int limit = -1) override;
  std::vector<Job> unfinished_of_account(const std::string& account, std::int64_t after_id, int limit) override;
  std::vector<Job> pending_after(std::int64_t after_id) override;
  std::optional<TimePoint> latest_slot(const std::string& export_name) override;

  std::vector<ExportStateCount> count_by_export_and_state() override;
  std::optional<Job> latest_finished(const std::string& export_name) override;
  std::map<std::string, TimePoint> last_success_by_export() override;
  std::vector<Job> published_files(const std::string& export_name) override;
  std::optional<std::int64_t> newest_owner(const std::string& path) override;
  std::optional<Milliseconds> typical_duration(const std::string& export_name) override;
  std::int64_t max_id() override;
  std::int64_t prune_finished_before(TimePoint cutoff) override;

  const CallTimes& call_times() const override { return times_; }
  // "PostgreSQL postgresql://user@host/db" with no password: for messages and logs.
  std::string describe() const override { return description_; }
  void confirm_lease(std::int64_t id) override;

 private:
  PostgresJobStore(std::unique_ptr<PostgresSession> session, std::string description, PostgresStoreOptions options);
  void migrate();
  void check_version_for_reading();

  // Runs one store operation: times it, rolls back a transaction it left open, and turns the
  // database's errors into Busy / std::runtime_error naming the database and `operation`.
  template <typename Body>
  decltype(auto) call(std::string_view operation, Body&& body);

  // A write to row `id` whose SET clause uses parameters $1..$n (`params`): fenced when there is a
  // book. Throws LeaseLost or "missing" when no row changed.
  void update_row(std::string_view operation, std::int64_t id, const std::string& set_clause,
                  SqlParams params);
  // The account of job `id` (cached from the rows this store has read or written).
  std::optional<std::string> account_of(std::string_view operation, std::int64_t id);
  std::vector<Job> read_jobs(const std::string& where_and_order, SqlParams params);

  std::unique_ptr<PostgresSession> session_;
  std::string description_;
  PostgresStoreOptions options_;
  std::map<std::int64_t, std::optional<std::string>> accounts_;  // job id → account, for the fence
  CallTimes times_;
  int depth_{0};  // of nested call()s: only the outermost is timed and rolls back
  std::recursive_timed_mutex mutex_;  // one call at a time, nested calls included
};

}  // namespace apsis::store
