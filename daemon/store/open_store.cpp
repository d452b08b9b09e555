#include "store/open_store.hpp"

#include <cstdlib>
#include <stdexcept>

#include "pg/settings.hpp"
#include "store/postgres_job_store.hpp"
#include "store/sqlite_job_store.hpp"

namespace apsis::store {
namespace {

// ${NAME} in the URL comes from the daemon's environment (a password kept out of the YAML).
std::optional<std::string> from_environment(const std::string& name) {
  if (const char* value = std::getenv(name.c_str())) return std::string(value);
  return std::nullopt;
}

}  // namespace

std::unique_ptr<JobStore> open_job_store(const StateDb& where, const OpenOptions& options) {
  if (where.postgres()) {
    const auto settings = pg::parse_database_url(*where.url, from_environment);
    PostgresStoreOptions postgres{.leases = options.leases};
    if (options.lock_wait) postgres.lock_wait = *options.lock_wait;
    if (options.read_only) return PostgresJobStore::open_read_only(settings, std::move(postgres));
    return PostgresJobStore::open(settings, std::move(postgres));
  }
  if (options.read_only) return std::make_unique<SqliteJobStore>(SqliteJobStore::open_read_only(where.file));
  return std::make_unique<SqliteJobStore>(SqliteJobStore::open(where.file));
}

}  // namespace apsis::store
