#include "store/sqlite_job_store.hpp"

#include <sys/stat.h>

#include <random>
#include <thread>

#include "schema_sql.hpp"
#include "store/first_free_slot.hpp"
#include "store/prepared.hpp"
#include "util/directories.hpp"

namespace apsis::store {
namespace {

constexpr const char* kColumns =
    "id, export, scheduled_for, state, definition, created_at, submit_attempts, submitted_at, poll_url, "
    "poll_expires_at, polls, last_http_status, next_poll_at, download_attempts, content_type, "
    "content_encoding, finished_at, error, output_path, bytes, sha256, resubmits, manifest_path, hook_result, "
    "file_removed_at, poll_url_field, polls_503_in_a_row, previous_poll_url, resubmit_reason, window_start, window_end";

constexpr const char* kFinished = "state IN ('succeeded','failed','expired','skipped')";

std::optional<std::string> iso(const std::optional<TimePoint>& t) {
  if (!t) return std::nullopt;
  return format_iso8601(*t);
}

TimePoint required_time(const Statement& row, int column) {
  auto text = row.column_text(column);
  auto parsed = parse_iso8601(text);
  if (!parsed) throw std::runtime_error("job table holds an unreadable time '" + text + "'");
  return *parsed;
}

std::optional<TimePoint> optional_time(const Statement& row, int column) {
  if (row.is_null(column)) return std::nullopt;
  return required_time(row, column);
}

std::optional<int> optional_int(const Statement& row, int column) {
  if (row.is_null(column)) return std::nullopt;
  return static_cast<int>(row.column_int(column));
}

Job read_job(const Statement& row) {
  Job job;
  job.id = row.column_int(0);
  job.export_name = row.column_text(1);
  job.scheduled_for = required_time(row, 2);
  const auto state_text = row.column_text(3);
  const auto state = parse_job_state(state_text);
  if (!state) throw std::runtime_error("job table holds an unknown state '" + state_text + "'");
  job.state = *state;
  job.definition_json = row.column_text(4);
  job.created_at = required_time(row, 5);
  job.submit_attempts = static_cast<int>(row.column_int(6));
  job.submitted_at = optional_time(row, 7);
  job.poll_url = row.column_optional_text(8);
  job.poll_expires_at = optional_time(row, 9);
  job.polls = static_cast<int>(row.column_int(10));
  job.last_http_status = optional_int(row, 11);
  job.next_poll_at = optional_time(row, 12);
  job.download_attempts = static_cast<int>(row.column_int(13));
  job.content_type = row.column_optional_text(14);
  job.content_encoding = row.column_optional_text(15);
  job.finished_at = optional_time(row, 16);
  job.error = row.column_optional_text(17);
  job.output_path = row.column_optional_text(18);
  job.bytes = row.column_optional_int(19);
  job.sha256 = row.column_optional_text(20);
  job.resubmits = static_cast<int>(row.column_int(21));
  job.manifest_path = row.column_optional_text(22);
  job.hook_result = row.column_optional_text(23);
  job.file_removed_at = optional_time(row, 24);
  job.poll_url_field = row.column_optional_text(25);
  job.polls_503_in_a_row = static_cast<int>(row.column_int(26));
  job.previous_poll_url = row.column_optional_text(27);
  job.resubmit_reason = row.column_optional_text(28);
  job.window_start = optional_time(row, 29);
  job.window_end = optional_time(row, 30);
  return job;
}

// Files created while it lives are readable by their owner only; the process's umask comes back after.
class PrivateFileMask {
 public:
  PrivateFileMask() : old_(::umask(0077)) {}
  ~PrivateFileMask() { ::umask(old_); }
  PrivateFileMask(const PrivateFileMask&) = delete;
  PrivateFileMask& operator=(const PrivateFileMask&) = delete;

 private:
  mode_t old_;
};

void configure_connection(Database& db, Milliseconds busy_timeout) {
  sqlite3_busy_timeout(db.handle(), static_cast<int>(busy_timeout.count()));
  db.exec("PRAGMA foreign_keys = ON");
}

}  // namespace

std::string_view to_string(JobState s) {
  switch (s) {
    case JobState::pending: return "pending";
    case JobState::submitted: return "submitted";
    case JobState::downloading: return "downloading";
    case JobState::succeeded: return "succeeded";
    case JobState::failed: return "failed";
    case JobState::expired: return "expired";
    case JobState::skipped: return "skipped";
  }
  return "unknown";
}

std::optional<JobState> parse_job_state(std::string_view text) {
  for (auto s : {JobState::pending, JobState::submitted, JobState::downloading, JobState::succeeded,
                 JobState::failed, JobState::expired, JobState::skipped})
    if (to_string(s) == text) return s;
  return std::nullopt;
}

bool is_busy(const SqliteError& error) {
  const int primary = error.code() & 0xff;  // extended codes are on: SQLITE_BUSY_SNAPSHOT and kin
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

int SqliteJobStore::schema_version() { return schema::migrations.back().version; }

SqliteJobStore::SqliteJobStore(Database db, std::filesystem::path file)
    : db_(std::move(db)), file_(std::move(file)), prepared_(std::make_unique<Prepared>()) {}
SqliteJobStore::SqliteJobStore(SqliteJobStore&&) noexcept = default;
SqliteJobStore::~SqliteJobStore() = default;

void SqliteJobStore::raise_busy(std::string_view operation, const SqliteError& error) const {
  throw Busy("job database " + file_.string() + " busy: " + std::string(operation) +
             " waited out the busy timeout, another connection holds its lock (" + error.what() + ")");
}

Statement& SqliteJobStore::prepared(std::optional<Statement>& slot, std::string_view sql) {
  if (!slot) slot.emplace(db_.prepare(sql));
  slot->reset();  // also after a BUSY step, which leaves the statement mid-way
  return *slot;
}

void SqliteJobStore::expect_one_row(std::int64_t id, std::string_view operation) const {
  if (db_.changes() != 1)
    throw std::runtime_error(std::string(operation) + ": job " + std::to_string(id) + " is missing from the job table");
}

SqliteJobStore SqliteJobStore::open(const std::filesystem::path& file) {
  if (file.has_parent_path()) apsis::create_directories(file.parent_path(), 0700);
  // SQLite answers BUSY without waiting when waiting could deadlock: the switch to WAL upgrades a read
  // transaction, and is refused at once while another process holds the write lock (several
  // `once` creating one new file). So the whole opening step is tried again, on a fresh connection,
  // until kOpenBusyTimeout has passed. Nothing runs on the event loop yet: sleeping here blocks nobody.
  const auto deadline = std::chrono::steady_clock::now() + kOpenBusyTimeout;
  std::minstd_rand jitter(std::random_device{}());  // apart, so openers that collided do not again
  for (;;) {
    const auto left = std::chrono::ceil<Milliseconds>(deadline - std::chrono::steady_clock::now());
    try {
      return open_once(file, std::max(left, Milliseconds(1)));
    } catch (const Busy&) {
      if (left <= Milliseconds(0)) throw;
    }
    std::this_thread::sleep_for(Milliseconds(std::uniform_int_distribution<int>(5, 50)(jitter)));
  }
}

SqliteJobStore SqliteJobStore::open_once(const std::filesystem::path& file, Milliseconds busy_timeout) {
  // The job table names exports and poll URLs: not for other users of the machine.
  std::optional<Database> opened;
  {
    const PrivateFileMask mask;  // restored even when opening throws
    opened.emplace(file);
  }
  auto db = std::move(*opened);
  configure_connection(db, busy_timeout);
  SqliteJobStore store(std::move(db), file);
  store.call("opening", [&] {
    store.migrate();
    // WAL lets `sqlite3` read while the daemon writes; NORMAL sync keeps every commit across a process
    // crash (kill -9), which is the failure the job table must survive.
    store.db_.exec("PRAGMA journal_mode = WAL");
    store.db_.exec("PRAGMA synchronous = NORMAL");
  });
  // From here on calls run on the event loop: a lock held elsewhere must not stall it.
  sqlite3_busy_timeout(store.db_.handle(), static_cast<int>(kBusyTimeout.count()));
  return store;
}

SqliteJobStore SqliteJobStore::open_read_only(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) throw NotInitialised("no job database at " + file.string() + " yet");
  Database db(file, /*read_only=*/true);
  configure_connection(db, kBusyTimeout);
  SqliteJobStore store(std::move(db), file);
  auto version = store.db_.prepare("PRAGMA user_version");
  version.step();
  if (version.column_int(0) == 0) throw NotInitialised(file.string() + " holds no job table yet");
  if (version.column_int(0) != schema_version())
    throw std::runtime_error(file.string() + " has schema version " + std::to_string(version.column_int(0)) +
                             ", this apsis-exportd reads version " + std::to_string(schema_version()));
  return store;
}

void SqliteJobStore::migrate() {
  // Inside one write transaction, so a second process opening the same new file (`trigger` while the
  // daemon starts) waits and then sees the finished schema instead of racing to create it.
  std::optional<Transaction> tx;
  int current = 0;
  try {
    tx.emplace(db_);
    auto version = db_.prepare("PRAGMA user_version");
    version.step();
    current = static_cast<int>(version.column_int(0));
  } catch (const SqliteError& e) {
    if (is_busy(e)) throw;
    throw std::runtime_error("not a usable SQLite database: " + std::string(e.what()));
  }
  if (current > schema_version())
    throw std::runtime_error("the job database has schema version " + std::to_string(current) +
                             ", newer than this apsis-exportd (" + std::to_string(schema_version()) +
                             "); refusing to touch it");
  if (current == 0) {
    auto tables = db_.prepare("SELECT count(*) FROM sqlite_schema");
    tables.step();
    if (tables.column_int(0) != 0)
      throw std::runtime_error("the database file holds tables but no apsis-exportd schema version; refusing to "
                               "touch it");
  }
  for (const auto& migration : schema::migrations)
    if (migration.version > current) db_.exec(migration.sql);
  if (current < schema_version()) db_.exec("PRAGMA user_version = " + std::to_string(schema_version()));
  tx->commit();
}

Job SqliteJobStore::create(const std::string& export_name, TimePoint scheduled_for, const std::string& definition_json,
                     TimePoint now) {
  return call("create", [&]() -> Job {
    auto insert = db_.prepare(
        "INSERT INTO jobs (export, scheduled_for, state, definition, created_at, account) "
        "VALUES (?, ?, 'pending', ?, ?, json_extract(?3, '$.account'))");
    insert.bind(1, export_name).bind(2, format_iso8601(scheduled_for)).bind(3, definition_json);
    insert.bind(4, format_iso8601(now));
    try {
      insert.run();
    } catch (const SqliteError& e) {
      if (e.code() == SQLITE_CONSTRAINT_UNIQUE)
        throw DuplicateSlot("export '" + export_name + "' already has a job for " + format_iso8601(scheduled_for));
      throw;
    }
    return *find(db_.last_insert_id());
  });
}

Job SqliteJobStore::create_asked_for(const std::string& export_name, TimePoint asked_at, const std::string& definition_json,
                               TimePoint now) {
  return call("create_asked_for", [&]() -> Job {
    return create_in_first_free_slot(asked_at, [&](TimePoint slot) { return create(export_name, slot, definition_json, now); });
  });
}

Job SqliteJobStore::create_asked_for(const std::string& export_name, TimePoint asked_at, const std::string& definition_json,
                               TimePoint now, const std::function<void(std::int64_t id)>& claim) {
  Transaction tx(db_);
  auto job = create_asked_for(export_name, asked_at, definition_json, now);
  claim(job.id);
  tx.commit();
  return job;
}

void SqliteJobStore::save(const Job& job) {
  return call("save", [&]() -> void {
    auto& update = prepared(prepared_->save,
        "UPDATE jobs SET state = ?, submit_attempts = ?, submitted_at = ?, poll_url = ?, poll_expires_at = ?, "
        "polls = ?, last_http_status = ?, next_poll_at = ?, download_attempts = ?, content_type = ?, "
        "content_encoding = ?, finished_at = ?, error = ?, output_path = ?, bytes = ?, sha256 = ?, resubmits = ?, "
        "manifest_path = ?, hook_result = ?, file_removed_at = ?, poll_url_field = ?, polls_503_in_a_row = ?, "
        "previous_poll_url = ?, resubmit_reason = ?, window_start = ?, window_end = ? WHERE id = ?");
    update.bind(1, to_string(job.state)).bind(2, job.submit_attempts).bind(3, iso(job.submitted_at));
    update.bind(4, job.poll_url).bind(5, iso(job.poll_expires_at)).bind(6, job.polls);
    update.bind(7, job.last_http_status).bind(8, iso(job.next_poll_at)).bind(9, job.download_attempts);
    update.bind(10, job.content_type).bind(11, job.content_encoding).bind(12, iso(job.finished_at));
    update.bind(13, job.error).bind(14, job.output_path).bind(15, job.bytes).bind(16, job.sha256);
    update.bind(17, job.resubmits).bind(18, job.manifest_path).bind(19, job.hook_result);
    update.bind(20, iso(job.file_removed_at)).bind(21, job.poll_url_field).bind(22, job.polls_503_in_a_row);
    update.bind(23, job.previous_poll_url).bind(24, job.resubmit_reason).bind(25, iso(job.window_start));
    update.bind(26, iso(job.window_end)).bind(27, job.id);
    update.run();
    expect_one_row(job.id, "save");
  });
}

std::optional<Job> SqliteJobStore::find(std::int64_t id) {
  return call("find", [&]() -> std::optional<Job> {
    auto query = db_.prepare(std::string("SELECT ") + kColumns + " FROM jobs WHERE id = ?");
    query.bind(1, id);
    if (!query.step()) return std::nullopt;
    return read_job(query);
  });
}

std::vector<Job> SqliteJobStore::list(const JobFilter& filter) {
  return call("list", [&]() -> std::vector<Job> {
    std::string sql = std::string("SELECT ") + kColumns +
                      " FROM jobs WHERE (?1 IS NULL OR export = ?1) AND (?2 IS NULL OR state = ?2) ORDER BY id DESC";
    if (filter.limit) sql += " LIMIT " + std::to_string(*filter.limit);
    auto query = db_.prepare(sql);
    query.bind(1, filter.export_name);
    if (filter.state)
      query.bind(2, to_string(*filter.state));
    else
      query.bind(2, std::nullopt);
    std::vector<Job> jobs;
    while (query.step()) jobs.push_back(read_job(query));
    return jobs;
  });
}

std::vector<Job> SqliteJobStore::unfinished(std::int64_t after_id, int limit) {
  return call("unfinished", [&]() -> std::vector<Job> {
    auto query = db_.prepare(std::string("SELECT ") + kColumns +
                             " FROM jobs WHERE state IN ('pending','submitted','downloading') AND id > ? ORDER BY id LIMIT ?");
    query.bind(1, after_id).bind(2, static_cast<std::int64_t>(limit));
    std::vector<Job> jobs;
    while (query.step()) jobs.push_back(read_job(query));
    return jobs;
  });
}

std::vector<Job> SqliteJobStore::unfinished_of_account(const std::string& account, std::int64_t after_id, int limit) {
  return call("unfinished_of_account", [&]() -> std::vector<Job> {
    auto query = db_.prepare(std::string("SELECT ") + kColumns +
                             " FROM jobs WHERE state IN ('pending','submitted','downloading') AND account = ? AND id > ?"
                             " ORDER BY id LIMIT ?");
    query.bind(1, account).bind(2, after_id).bind(3, static_cast<std::int64_t>(limit));
    std::vector<Job> jobs;
    while (query.step()) jobs.push_back(read_job(query));
    return jobs;
  });
}

std::vector<Job> SqliteJobStore::pending_after(std::int64_t after_id) {
  return call("pending_after", [&]() -> std::vector<Job> {
    auto query = db_.prepare(std::string("SELECT ") + kColumns + " FROM jobs WHERE state = 'pending' AND id > ? ORDER BY id");
    query.bind(1, after_id);
    std::vector<Job> jobs;
    while (query.step()) jobs.push_back(read_job(query));
    return jobs;
  });
}

std::optional<TimePoint> SqliteJobStore::latest_slot(const std::string& export_name) {
  return call("latest_slot", [&]() -> std::optional<TimePoint> {
    auto query = db_.prepare("SELECT max(scheduled_for) FROM jobs WHERE export = ?");
    query.bind(1, export_name);
    query.step();
    if (query.is_null(0)) return std::nullopt;
    return required_time(query, 0);
  });
}

std::vector<ExportStateCount> SqliteJobStore::count_by_export_and_state() {
  return call("count_by_export_and_state", [&]() -> std::vector<ExportStateCount> {
    auto query = db_.prepare("SELECT export, state, count(*) FROM jobs GROUP BY export, state ORDER BY export, state");
    std::vector<ExportStateCount> counts;
    while (query.step()) {
      const auto state = parse_job_state(query.column_text(1));
      if (!state) continue;  // the CHECK constraint makes this impossible
      counts.push_back({query.column_text(0), *state, query.column_int(2)});
    }
    return counts;
  });
}

std::optional<Job> SqliteJobStore::latest_finished(const std::string& export_name) {
  return call("latest_finished", [&]() -> std::optional<Job> {
    auto query = db_.prepare(std::string("SELECT ") + kColumns + " FROM jobs WHERE export = ? AND " + kFinished +
                             " ORDER BY id DESC LIMIT 1");
    query.bind(1, export_name);
    if (!query.step()) return std::nullopt;
    return read_job(query);
  });
}

std::map<std::string, TimePoint> SqliteJobStore::last_success_by_export() {
  return call("last_success_by_export", [&]() -> std::map<std::string, TimePoint> {
    auto query = db_.prepare("SELECT export, max(finished_at) FROM jobs WHERE state = 'succeeded' GROUP BY export");
    std::map<std::string, TimePoint> last;
    while (query.step())
      if (!query.is_null(1)) last[query.column_text(0)] = required_time(query, 1);
    return last;
  });
}

std::vector<Job> SqliteJobStore::published_files(const std::string& export_name) {
  return call("published_files", [&]() -> std::vector<Job> {
    auto query = db_.prepare(std::string("SELECT ") + kColumns +
                             " FROM jobs WHERE export = ? AND state = 'succeeded' AND output_path IS NOT NULL"
                             " AND file_removed_at IS NULL ORDER BY scheduled_for DESC, id DESC");
    query.bind(1, export_name);
    std::vector<Job> jobs;
    while (query.step()) jobs.push_back(read_job(query));
    return jobs;
  });
}

std::optional<std::int64_t> SqliteJobStore::newest_owner(const std::string& path) {
  return call("newest_owner", [&] {
    auto query = db_.prepare(
        "SELECT max(id) FROM jobs WHERE output_path = ? AND state = 'succeeded' AND file_removed_at IS NULL");
    query.bind(1, path);
    return query.step() ? query.column_optional_int(0) : std::nullopt;
  });
}

std::int64_t SqliteJobStore::prune_finished_before(TimePoint cutoff) {
  return call("prune_finished_before", [&] {
    auto prune = db_.prepare(std::string("DELETE FROM jobs WHERE ") + kFinished +
                             " AND finished_at < ? AND id NOT IN (SELECT max(id) FROM jobs WHERE " + kFinished +
                             " GROUP BY export)");
    prune.bind(1, format_iso8601(cutoff));
    prune.run();
    return db_.changes();
  });
}

}  // namespace apsis::store
