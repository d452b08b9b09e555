// The job table: every job's whole story, in a SQLite file that `sqlite3` can read while the daemon
// writes (WAL). Owned by the event-loop thread; not thread-safe.
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
#include "store/sqlite.hpp"

namespace apsis::store {

// The (export, scheduled_for) slot already has a job.
class DuplicateSlot : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The database file exists but the daemon has not created the job table in it yet.
class NotInitialised : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Another connection held the database's lock past the busy timeout (SQLITE_BUSY, SQLITE_LOCKED):
// nothing was written, and the same call may succeed later.
class Busy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JobFilter {
  std::optional<std::string> export_name{};
  std::optional<JobState> state{};
  std::optional<int> limit{};
};

struct ExportStateCount {
  std::string export_name;
  JobState state{JobState::pending};
  std::int64_t count{0};
};

class JobStore {
 public:
  // How long a call waits for another connection's lock before it throws Busy.
  static constexpr Milliseconds kBusyTimeout{200};
  // Opening (and migrating the schema) waits longer: nothing runs on the loop yet, and a `trigger`
  // opening the file while the daemon creates it should wait rather than fail.
  static constexpr Milliseconds kOpenBusyTimeout{10'000};

  // Creates the file and its parent directory if needed, applies schema migrations, and refuses a
  // database whose schema is newer than this binary knows or that is not an apsis-exportd database.
  // Blocks up to kOpenBusyTimeout while other connections hold the lock, then throws Busy.
  static JobStore open(const std::filesystem::path& file);
  // For `jobs`: never creates or migrates anything. Throws NotInitialised for a database the daemon
  // is creating right now.
  static JobStore open_read_only(const std::filesystem::path& file);

  static int schema_version();

  JobStore(JobStore&&) noexcept;
  JobStore& operator=(JobStore&&) = delete;
  ~JobStore();

  Job create(const std::string& export_name, TimePoint scheduled_for, const std::string& definition_json,
             TimePoint now);
  // A job asked for by hand (`once`, `trigger`): its slot is when it was asked for, or the next free
  // millisecond when another such job of the export was asked for in the same one.
  Job create_asked_for(const std::string& export_name, TimePoint asked_at, const std::string& definition_json,
                       TimePoint now);
  // The same, with `claim(id)` run before the row is committed: no other connection sees the row before
  // `claim` has returned (`once` takes the job's lock there). A `claim` that throws leaves no row.
  Job create_asked_for(const std::string& export_name, TimePoint asked_at, const std::string& definition_json,
                       TimePoint now, const std::function<void(std::int64_t id)>& claim);
  // Writes every mutable column of `job` (state, counters, timings, result) in one statement.
  // Deprecated: a whole-row write from a stale copy undoes another writer's columns. Use the
  // record_* updates below; only the old job core still calls this.
  void save(const Job& job);

  // Narrow updates (store/job_updates.hpp): one UPDATE of only the columns each one names. Each
  // throws std::runtime_error if the row is missing.
  void record_submit_attempt(std::int64_t id, const SubmitAttempt& attempt);
  void record_submitted(std::int64_t id, const SubmittedColumns& submitted);
  // All in one transaction: the still-in-progress answers of many jobs. Rows that are gone or
  // already final are passed over (a progress note must never reopen a finished job).
  void record_progress(std::span<const PollProgress> progress);
  void record_download_started(std::int64_t id, const DownloadStarted& started);
  void record_resubmit(std::int64_t id, const Resubmitting& resubmitting);
  void record_published(std::int64_t id, const PublishedColumns& published);
  void record_finished(std::int64_t id, const FinishedColumns& finished);
  void record_hook_result(std::int64_t id, const std::string& hook_result);
  // Retention deleted the job's published file.
  void record_file_removed(std::int64_t id, TimePoint removed_at);

  std::optional<Job> find(std::int64_t id);
  std::vector<Job> list(const JobFilter& filter);
  // Unfinished rows (pending, submitted, downloading) with an id above `after_id`, oldest first, at
  // most `limit`: a restart with 100 000 jobs in flight reads them a page at a time.
  std::vector<Job> unfinished(std::int64_t after_id = 0, int limit = -1);
  // Pending rows with an id above `after_id`: jobs that `apsis-exportd trigger` added.
  std::vector<Job> pending_after(std::int64_t after_id);
  // The newest slot the export has a job for, if any.
  std::optional<TimePoint> latest_slot(const std::string& export_name);

  // For /metrics and `status`: how many rows each export has in each state.
  std::vector<ExportStateCount> count_by_export_and_state();
  // The export's newest job in a final state: `status`'s "last result".
  std::optional<Job> latest_finished(const std::string& export_name);
  // When each export last published a file.
  std::map<std::string, TimePoint> last_success_by_export();
  // Succeeded jobs whose file retention has not removed, newest slot first.
  std::vector<Job> published_files(const std::string& export_name);
  // The newest succeeded job of any export whose file (not removed by retention) is at `path`.
  std::optional<std::int64_t> newest_owner(const std::string& path);
  // How long the export's recent runs took from submit to their file (the median of its last ten
  // succeeded jobs), once it has at least five: a recurring export usually takes about as long.
  std::optional<Milliseconds> typical_duration(const std::string& export_name);
  // The highest job id in the table (0 when empty): rows created later have higher ids.
  std::int64_t max_id();
  // history_days: deletes finished rows that finished before `cutoff`, except each export's newest
  // finished row, so `status` can still say how an export last ended. Returns the rows deleted.
  std::int64_t prune_finished_before(TimePoint cutoff);

  // How long the calls so far took (steady clock); nested calls count once.
  const CallTimes& call_times() const { return times_; }
  const std::filesystem::path& file() const { return file_; }

 private:
  struct Prepared;  // the statements run on every job's steps, prepared once

  JobStore(Database db, std::filesystem::path file);
  // One try at open(): a fresh connection that waits at most `busy_timeout` for a lock.
  static JobStore open_once(const std::filesystem::path& file, Milliseconds busy_timeout);
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
decltype(auto) JobStore::call(std::string_view operation, Body&& body) {
  struct Timer {
    JobStore& store;
    std::chrono::steady_clock::time_point started{std::chrono::steady_clock::now()};
    explicit Timer(JobStore& s) : store(s) { ++store.depth_; }
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
