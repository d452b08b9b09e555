// PostgresJobStore: opening, the schema, creating rows and reading them. The narrow updates are in
// postgres_job_updates.cpp.
#include "store/postgres_job_store.hpp"

#include <algorithm>

#include "postgres_schema_sql.hpp"
#include "store/first_free_slot.hpp"
#include "store/job_history.hpp"
#include "store/postgres_internal.hpp"

namespace apsis::store {
namespace {

// pg_advisory_xact_lock's key for migrations: any constant no other application on the database
// uses ("apsisjob" in ASCII).
constexpr const char* kMigrationLock = "7017555224479017570";

// The job cache of accounts (for the fence) forgets everything past this many jobs: it is only a
// shortcut, a forgotten account is looked up again.
constexpr std::size_t kAccountCacheLimit = 200'000;

constexpr std::string_view kUniqueViolation = "23505";

}  // namespace

int PostgresJobStore::schema_version() { return postgres_schema::migrations.back().version; }

PostgresJobStore::PostgresJobStore(std::unique_ptr<PostgresSession> session, std::string description,
                                   PostgresStoreOptions options)
    : session_(std::move(session)), description_(std::move(description)), options_(std::move(options)) {}

PostgresJobStore::~PostgresJobStore() = default;

std::unique_ptr<PostgresJobStore> PostgresJobStore::open(const pg::ConnectionSettings& settings,
                                                         PostgresStoreOptions options) {
  auto session = std::make_unique<PostgresSession>(settings, options.connect_timeout, options.statement_timeout,
                                                   /*read_only=*/false);
  std::unique_ptr<PostgresJobStore> store(
      new PostgresJobStore(std::move(session), "PostgreSQL " + pg::redacted(settings), std::move(options)));
  store->call("opening", [&] { store->migrate(); });
  return store;
}

std::unique_ptr<PostgresJobStore> PostgresJobStore::open_read_only(const pg::ConnectionSettings& settings,
                                                                   PostgresStoreOptions options) {
  options.leases.reset();  // it writes nothing
  auto session = std::make_unique<PostgresSession>(settings, options.connect_timeout, options.statement_timeout,
                                                   /*read_only=*/true);
  std::unique_ptr<PostgresJobStore> store(
      new PostgresJobStore(std::move(session), "PostgreSQL " + pg::redacted(settings), std::move(options)));
  store->call("opening", [&] { store->check_version_for_reading(); });
  return store;
}

namespace {

// The version the database's schema_version table holds; 0 when there is none yet.
int stored_version(PostgresSession& session) {
  if (session.query("SELECT to_regclass('schema_version') IS NULL").text(0, 0) == "t") return 0;
  return static_cast<int>(session.query("SELECT coalesce(max(version), 0) FROM schema_version").int64(0, 0));
}

}  // namespace

// One transaction under an advisory lock: instances starting together queue on the lock, and each
// after the first sees the finished schema. PostgreSQL's DDL is transactional, so a migration that
// fails leaves nothing behind.
void PostgresJobStore::migrate() {
  session_->begin();
  session_->query(std::string("SELECT pg_advisory_xact_lock(") + kMigrationLock + ")");
  auto tables = session_->query(
      "SELECT to_regclass('schema_version') IS NOT NULL, to_regclass('jobs') IS NOT NULL");
  const bool has_version = tables.text(0, 0) == "t";
  if (!has_version && tables.text(0, 1) == "t")
    throw std::runtime_error(description_ + " holds a table jobs but no apsis-exportd schema version; refusing to "
                             "touch it");
  if (!has_version) session_->query("CREATE TABLE schema_version (version integer NOT NULL)");
  // An apsis-exportd built with an older schema list leaves alone what a newer one made.
  const int current = stored_version(*session_);
  if (current > schema_version())
    throw std::runtime_error("the job database " + description_ + " has schema version " + std::to_string(current) +
                             ", newer than this apsis-exportd (" + std::to_string(schema_version()) +
                             "); refusing to touch it");
  for (const auto& migration : postgres_schema::migrations)
    if (migration.version > current) session_->execute(migration.sql);
  if (current < schema_version()) {
    session_->query("DELETE FROM schema_version");
    session_->query("INSERT INTO schema_version (version) VALUES ($1::integer)", {std::to_string(schema_version())});
  }
  session_->commit();
}

void PostgresJobStore::check_version_for_reading() {
  const int version = stored_version(*session_);
  if (version == 0) throw NotInitialised(description_ + " holds no job table yet");
  if (version != schema_version())
    throw std::runtime_error(description_ + " has schema version " + std::to_string(version) +
                             ", this apsis-exportd reads version " + std::to_string(schema_version()));
}

Job PostgresJobStore::create(const std::string& export_name, TimePoint scheduled_for,
                             const std::string& definition_json, TimePoint now) {
  return call("create", [&]() -> Job {
    // ON CONFLICT: a slot another instance created a moment ago is DuplicateSlot, not an error that
    // would abort an enclosing transaction.
    const auto duplicate = [&] {
      return DuplicateSlot("export '" + export_name + "' already has a job for " + format_iso8601(scheduled_for));
    };
    pg::Result inserted;
    try {
      inserted = session_->query(
        std::string("INSERT INTO jobs (export, scheduled_for, state, definition, created_at, account) "
                    "VALUES ($1, $2, 'pending', $3::text, $4, ($3::text)::jsonb ->> 'account') "
                    "ON CONFLICT (export, scheduled_for) DO NOTHING RETURNING ") +
            kPostgresColumns,
        {export_name, format_iso8601(scheduled_for), definition_json, format_iso8601(now)});
    } catch (const pg::Error& e) {
      if (e.sqlstate() == kUniqueViolation) throw duplicate();
      throw;
    }
    if (inserted.rows() == 0) throw duplicate();
    return read_postgres_job(inserted, 0, accounts_);
  });
}

Job PostgresJobStore::create_asked_for(const std::string& export_name, TimePoint asked_at,
                                       const std::string& definition_json, TimePoint now) {
  return call("create_asked_for", [&]() -> Job {
    return create_in_first_free_slot(asked_at, [&](TimePoint slot) { return create(export_name, slot, definition_json, now); });
  });
}

Job PostgresJobStore::create_asked_for(const std::string& export_name, TimePoint asked_at,
                                       const std::string& definition_json, TimePoint now,
                                       const std::function<void(std::int64_t id)>& claim) {
  return call("create_asked_for", [&]() -> Job {
    session_->begin();
    auto job = create_asked_for(export_name, asked_at, definition_json, now);
    claim(job.id);
    session_->commit();
    return job;
  });
}

std::vector<Job> PostgresJobStore::read_jobs(const std::string& where_and_order, SqlParams params) {
  auto rows = session_->query(std::string("SELECT ") + kPostgresColumns + " FROM jobs " + where_and_order,
                              std::move(params));
  if (accounts_.size() > kAccountCacheLimit) accounts_.clear();
  std::vector<Job> jobs;
  jobs.reserve(static_cast<std::size_t>(rows.rows()));
  for (int row = 0; row < rows.rows(); ++row) jobs.push_back(read_postgres_job(rows, row, accounts_));
  return jobs;
}

std::optional<Job> PostgresJobStore::find(std::int64_t id) {
  return call("find", [&]() -> std::optional<Job> {
    auto jobs = read_jobs("WHERE id = $1", {std::to_string(id)});
    if (jobs.empty()) return std::nullopt;
    return std::move(jobs.front());
  });
}

std::vector<Job> PostgresJobStore::list(const JobFilter& filter) {
  return call("list", [&] {
    std::optional<std::string> state;
    if (filter.state) state = std::string(to_string(*filter.state));
    std::optional<std::string> limit;
    if (filter.limit) limit = std::to_string(*filter.limit);
    return read_jobs("WHERE ($1::text IS NULL OR export = $1) AND ($2::text IS NULL OR state = $2) "
                     "ORDER BY id DESC LIMIT $3::bigint",
                     {filter.export_name, state, limit});
  });
}

namespace {
// SQLite's LIMIT -1 is "no limit"; PostgreSQL's is LIMIT NULL.
std::optional<std::string> limit_parameter(int limit) {
  if (limit < 0) return std::nullopt;
  return std::to_string(limit);
}
}  // namespace

std::vector<Job> PostgresJobStore::unfinished(std::int64_t after_id, int limit) {
  return call("unfinished", [&] {
    return read_jobs(std::string("WHERE ") + kPostgresUnfinished + " AND id > $1 ORDER BY id LIMIT $2::bigint",
                     {std::to_string(after_id), limit_parameter(limit)});
  });
}

std::vector<Job> PostgresJobStore::unfinished_of_account(const std::string& account, std::int64_t after_id,
                                                         int limit) {
  return call("unfinished_of_account", [&] {
    return read_jobs(std::string("WHERE account = $1 AND ") + kPostgresUnfinished +
                         " AND id > $2 ORDER BY id LIMIT $3::bigint",
                     {account, std::to_string(after_id), limit_parameter(limit)});
  });
}

std::vector<Job> PostgresJobStore::pending_after(std::int64_t after_id) {
  return call("pending_after",
              [&] { return read_jobs("WHERE state = 'pending' AND id > $1 ORDER BY id", {std::to_string(after_id)}); });
}

std::optional<TimePoint> PostgresJobStore::latest_slot(const std::string& export_name) {
  return call("latest_slot", [&]() -> std::optional<TimePoint> {
    auto latest = session_->query("SELECT max(scheduled_for) FROM jobs WHERE export = $1", {export_name});
    if (latest.is_null(0, 0)) return std::nullopt;
    return postgres_time(latest, 0, 0);
  });
}

std::vector<ExportStateCount> PostgresJobStore::count_by_export_and_state() {
  return call("count_by_export_and_state", [&] {
    auto rows = session_->query("SELECT export, state, count(*) FROM jobs GROUP BY export, state ORDER BY export, state");
    std::vector<ExportStateCount> counts;
    for (int row = 0; row < rows.rows(); ++row) {
      const auto state = parse_job_state(rows.text(row, 1));
      if (!state) continue;  // the CHECK constraint makes this impossible
      counts.push_back({std::string(rows.text(row, 0)), *state, rows.int64(row, 2)});
    }
    return counts;
  });
}

std::optional<Job> PostgresJobStore::latest_finished(const std::string& export_name) {
  return call("latest_finished", [&]() -> std::optional<Job> {
    auto jobs = read_jobs(std::string("WHERE export = $1 AND ") + kPostgresFinished + " ORDER BY id DESC LIMIT 1",
                          {export_name});
    if (jobs.empty()) return std::nullopt;
    return std::move(jobs.front());
  });
}

std::map<std::string, TimePoint> PostgresJobStore::last_success_by_export() {
  return call("last_success_by_export", [&] {
    auto rows = session_->query("SELECT export, max(finished_at) FROM jobs WHERE state = 'succeeded' GROUP BY export");
    std::map<std::string, TimePoint> last;
    for (int row = 0; row < rows.rows(); ++row)
      if (!rows.is_null(row, 1)) last[std::string(rows.text(row, 0))] = postgres_time(rows, row, 1);
    return last;
  });
}

std::vector<Job> PostgresJobStore::published_files(const std::string& export_name) {
  return call("published_files", [&] {
    return read_jobs("WHERE export = $1 AND state = 'succeeded' AND output_path IS NOT NULL"
                     " AND file_removed_at IS NULL ORDER BY scheduled_for DESC, id DESC",
                     {export_name});
  });
}

std::optional<std::int64_t> PostgresJobStore::newest_owner(const std::string& path) {
  return call("newest_owner", [&] {
    auto owner = session_->query(
        "SELECT max(id) FROM jobs WHERE output_path = $1 AND state = 'succeeded' AND file_removed_at IS NULL", {path});
    return owner.optional_int64(0, 0);
  });
}

std::optional<Milliseconds> PostgresJobStore::typical_duration(const std::string& export_name) {
  return call("typical_duration", [&] {
    auto rows = session_->query(
        "SELECT submitted_at, finished_at FROM jobs WHERE export = $1 AND state = 'succeeded' "
        "AND submitted_at IS NOT NULL AND finished_at IS NOT NULL ORDER BY id DESC LIMIT $2::bigint",
        {export_name, std::to_string(kTypicalRuns)});
    std::vector<std::pair<std::string, std::string>> runs;
    for (int row = 0; row < rows.rows(); ++row)
      runs.emplace_back(std::string(rows.text(row, 0)), std::string(rows.text(row, 1)));
    return median_duration(runs);
  });
}

std::int64_t PostgresJobStore::max_id() {
  return call("max_id", [&] { return session_->query("SELECT coalesce(max(id), 0) FROM jobs").int64(0, 0); });
}

std::int64_t PostgresJobStore::prune_finished_before(TimePoint cutoff) {
  return call("prune_finished_before", [&] {
    auto pruned = session_->query(std::string("DELETE FROM jobs WHERE ") + kPostgresFinished +
                                      " AND finished_at < $1 AND id NOT IN (SELECT max(id) FROM jobs WHERE " +
                                      kPostgresFinished + " GROUP BY export)",
                                  {format_iso8601(cutoff)});
    return pruned.affected();
  });
}

}  // namespace apsis::store
