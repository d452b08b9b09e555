// The job table in a SQLite file that `sqlite3` can read while the daemon writes (WAL): the embedded
// default backend of store/job_store.hpp. Owned by the event-loop thread; not thread-safe.
//
// Every call runs on the event loop and blocks it: SQLite waits at most the busy timeout (200 ms)
// for another connection's write lock, then the call throws Busy, reads included. Busy is transient:
// the caller tries again later (store/store_writer.hpp does that for the daemon's writes). Every call
// is timed into call_times().
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "store/call_times.hpp"
#include "store/job.hpp"
#include "store/job_updates.hpp"
#include "store/job_store.hpp"
#include "store/sqlite.hpp"

namespace apsis::store {

class SqliteJobStore final : public JobStore {
 public:
  // How long a call waits for another connection's lock before it throws Busy.
  static constexpr Milliseconds kBusyTimeout{200};
  // Opening (and migrating the schema) waits longer: nothing runs on the loop yet, and a `trigger`
  // opening the file while the daemon creates it should wait rather than fail.
  static constexpr Milliseconds kOpenBusyTimeout{10'000};

  // Creates the file and its parent directory if needed, applies schema migrations, and refuses a
  // database whose schema is newer than this binary knows or that is not an apsis-exportd database.
  // Blocks up to kOpenBusyTimeout while other connections hold the lock, then throws Busy.
  static SqliteJobStore open(const std::filesystem::path& file);
  // For `jobs`: never creates or migrates anything. Throws NotInitialised for a database the daemon
  // is creating right now.
  static SqliteJobStore open_read_only(const std::filesystem::path& file);

  static int schema_version();

  SqliteJobStore(SqliteJobStore&&) noexcept;
  SqliteJobStore& operator=(SqliteJobStore&&) = delete;
  ~SqliteJobStore() override;

  Job create(const std::string& export_name, TimePoint scheduled_for, const std::string& definition_json,
             TimePoint now) override;
  Job create_asked_for(const std::string& export_name, TimePoint asked_at, const std::string& definition_json,
                       TimePoint now) override;
  Job create_asked_for(const std::string& export_name, TimePoint asked_at, const std::string& definition_json,
                       TimePoint now, const std::function<void(std::int64_t id)>& claim) override;
  void save(const Job& job) override;

  void record_submit_attempt(std::int64_t id, const SubmitAttempt& attempt) override;
  void record_submitted(std::int64_t id, const SubmittedColumns& submitted) override;
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
  std::vector<Job> unfinished_of_account(const std::string& account, std::int64_t after_id, int limit) override;
  void confirm_lease(std::int64_t) override {}  // one instance, no leases

  // How long the calls so far took (steady clock); nested calls count once.
  const CallTimes& call_times() const override { return times_; }
  std::string describe() const override { return "SQLite file " + file_.string(); }
  const std::filesystem::path& file() const { return file_; }

 private:
  struct Prepared;  // the statements run on every job's steps, prepared once

  SqliteJobStore(Database db, std::filesystem::path file);
  // One try at open(): a fresh connection that waits at most `busy_timeout` for a lock.
  static SqliteJobStore open_once(const std::filesystem::path& file, Milliseconds busy_timeout);
  void migrate();
  // Runs one store operation: times it, and turns SQLite's BUSY/LOCKED into Busy naming the file
  // and `operation`.
  template <typename Body>
  decltype(auto) call(std::string_view operation, Body&& body);
  [[noreturn]] void raise_busy(std::string_view operation, const SqliteError& error) const;
  Statement& prepared(std::optional<Statement>& slot, std::string_view sql);
  void expect_one_row(std::int64_t id, std::string_view operation) const;

  Database db_;
  std::filesystem::path file_;
  std::unique_ptr<Prepared> prepared_;
  CallTimes times_;
  int depth_{0};  // of nested call()s: only the outermost is timed
};

bool is_busy(const SqliteError& error);

template <typename Body>
decltype(auto) SqliteJobStore::call(std::string_view operation, Body&& body) {
  struct Timer {
    SqliteJobStore& store;
    std::chrono::steady_clock::time_point started{std::chrono::steady_clock::now()};
    explicit Timer(SqliteJobStore& s) : store(s) { ++store.depth_; }
    ~Timer() {
      if (--store.depth_ == 0) store.times_.record(std::chrono::steady_clock::now() - started);
    }
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;
  } timer(*this);
  try {
    return body();
  } catch (const SqliteError& e) {
    if (is_busy(e)) raise_busy(operation, e);
    throw;
  }
}

}  // namespace apsis::store
