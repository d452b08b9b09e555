// The job table: every job's whole story, in a SQLite file that `sqlite3` can read while the daemon
// writes (WAL). Owned by the event-loop thread; not thread-safe.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <vector>

#include "store/job.hpp"
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
  // Creates the file and its parent directory if needed, applies schema migrations, and refuses a
  // database whose schema is newer than this binary knows or that is not an apsis-exportd database.
  static JobStore open(const std::filesystem::path& file);
  // For `jobs`: never creates or migrates anything. Throws NotInitialised for a database the daemon
  // is creating right now.
  static JobStore open_read_only(const std::filesystem::path& file);

  static int schema_version();

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
  void save(const Job& job);
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
  // history_days: deletes finished rows that finished before `cutoff`, except each export's newest
  // finished row, so `status` can still say how an export last ended. Returns the rows deleted.
  std::int64_t prune_finished_before(TimePoint cutoff);

 private:
  explicit JobStore(Database db) : db_(std::move(db)) {}
  void migrate();

  Database db_;
  std::optional<Statement> save_;  // prepared once: save() runs on every poll of every job
};

}  // namespace apsis::store
