// The job table: every job's whole story, one row per job, behind one interface with two backends:
// SQLite (store/sqlite_job_store.hpp, the embedded default) and PostgreSQL
// (store/postgres_job_store.hpp, several daemons on one table). Both keep the same columns and
// views, so an operator's queries carry over from `sqlite3` to `psql`.
//
// A store is not thread-safe: the daemon calls it from one thread (the event loop for SQLite, the
// database thread for PostgreSQL: store/store_writer.hpp). A call that finds the database locked or
// unreachable throws Busy: nothing was written, and the same call may succeed later.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/call_times.hpp"
#include "store/job.hpp"
#include "store/job_updates.hpp"

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

// The database could not answer now: another connection held SQLite's lock past the busy timeout
// (SQLITE_BUSY, SQLITE_LOCKED), or PostgreSQL was unreachable. Nothing was written, and the same
// call may succeed later.
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

// A fenced write (PostgreSQL) matched no row because this instance no longer holds the job's account
// lease: another instance owns the job now. Never retried; the job stops without touching its row.
class LeaseLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  virtual Job create(const std::string& export_name, TimePoint scheduled_for, const std::string& definition_json,
             TimePoint now) = 0;
  // A job asked for by hand (`once`, `trigger`): its slot is when it was asked for, or the next free
  // millisecond when another such job of the export was asked for in the same one.
  virtual Job create_asked_for(const std::string& export_name, TimePoint asked_at, const std::string& definition_json,
                       TimePoint now) = 0;
  // The same, with `claim(id)` run before the row is committed: no other connection sees the row before
  // `claim` has returned (`once` takes the job's lock there). A `claim` that throws leaves no row.
  virtual Job create_asked_for(const std::string& export_name, TimePoint asked_at, const std::string& definition_json,
                       TimePoint now, const std::function<void(std::int64_t id)>& claim) = 0;
  // Writes every mutable column of `job` (state, counters, timings, result) in one statement.
  // Deprecated: a whole-row write from a stale copy undoes another writer's columns. Use the
  // record_* updates below; only the old job core still calls this.
  virtual void save(const Job& job) = 0;

  // Narrow updates (store/job_updates.hpp): one UPDATE of only the columns each one names. Each
  // throws std::runtime_error if the row is missing.
  virtual void record_submit_attempt(std::int64_t id, const SubmitAttempt& attempt) = 0;
  virtual void record_submitted(std::int64_t id, const SubmittedColumns& submitted) = 0;
  // All in one transaction: the still-in-progress answers of many jobs. Rows that are gone or
  // already final are passed over (a progress note must never reopen a finished job).
  virtual void record_progress(std::span<const PollProgress> progress) = 0;
  virtual void record_download_started(std::int64_t id, const DownloadStarted& started) = 0;
  virtual void record_resubmit(std::int64_t id, const Resubmitting& resubmitting) = 0;
  virtual void record_published(std::int64_t id, const PublishedColumns& published) = 0;
  virtual void record_finished(std::int64_t id, const FinishedColumns& finished) = 0;
  virtual void record_hook_result(std::int64_t id, const std::string& hook_result) = 0;
  // Retention deleted the job's published file.
  virtual void record_file_removed(std::int64_t id, TimePoint removed_at) = 0;

  virtual std::optional<Job> find(std::int64_t id) = 0;
  virtual std::vector<Job> list(const JobFilter& filter) = 0;
  // Unfinished rows (pending, submitted, downloading) with an id above `after_id`, oldest first, at
  // most `limit`: a restart with 100 000 jobs in flight reads them a page at a time.
  virtual std::vector<Job> unfinished(std::int64_t after_id = 0, int limit = -1) = 0;
  // Pending rows with an id above `after_id`: jobs that `apsis-exportd trigger` added.
  virtual std::vector<Job> pending_after(std::int64_t after_id) = 0;
  // The newest slot the export has a job for, if any.
  virtual std::optional<TimePoint> latest_slot(const std::string& export_name) = 0;

  // For /metrics and `status`: how many rows each export has in each state.
  virtual std::vector<ExportStateCount> count_by_export_and_state() = 0;
  // The export's newest job in a final state: `status`'s "last result".
  virtual std::optional<Job> latest_finished(const std::string& export_name) = 0;
  // When each export last published a file.
  virtual std::map<std::string, TimePoint> last_success_by_export() = 0;
  // Succeeded jobs whose file retention has not removed, newest slot first.
  virtual std::vector<Job> published_files(const std::string& export_name) = 0;
  // The newest succeeded job of any export whose file (not removed by retention) is at `path`.
  virtual std::optional<std::int64_t> newest_owner(const std::string& path) = 0;
  // How long the export's recent runs took from submit to their file (the median of its last ten
  // succeeded jobs), once it has at least five: a recurring export usually takes about as long.
  virtual std::optional<Milliseconds> typical_duration(const std::string& export_name) = 0;
  // The highest job id in the table (0 when empty): rows created later have higher ids.
  virtual std::int64_t max_id() = 0;
  // history_days: deletes finished rows that finished before `cutoff`, except each export's newest
  // finished row, so `status` can still say how an export last ended. Returns the rows deleted.
  virtual std::int64_t prune_finished_before(TimePoint cutoff) = 0;
  // Unfinished rows of one account, as unfinished() pages them: what a new owner of the account
  // resumes (PostgreSQL: account leases).
  virtual std::vector<Job> unfinished_of_account(const std::string& account, std::int64_t after_id, int limit) = 0;

  // Throws LeaseLost unless this instance still holds the lease of job `id`'s account, by the
  // database's clock (PostgreSQL with leases): asked right before a file is published, the step
  // whose effect no fenced row write can take back. Writes nothing; with SQLite it does nothing.
  virtual void confirm_lease(std::int64_t id) = 0;

  // How long the calls so far took (steady clock); nested calls count once.
  virtual const CallTimes& call_times() const = 0;
  // Where the table lives, for messages: the SQLite file, or the PostgreSQL URL without password.
  virtual std::string describe() const = 0;

 protected:
  JobStore() = default;
  JobStore(const JobStore&) = default;
  JobStore(JobStore&&) = default;
  JobStore& operator=(const JobStore&) = default;
  JobStore& operator=(JobStore&&) = default;
};

}  // namespace apsis::store
