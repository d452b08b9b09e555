#include "store/open_store.hpp"

#include <stdexcept>

#include "store/sqlite_job_store.hpp"

namespace apsis::store {

std::unique_ptr<JobStore> open_job_store(const StateDb& where, const OpenOptions& options) {
  if (where.postgres())
    throw std::runtime_error("state_db: PostgreSQL job tables are not available in this build yet");
  if (options.read_only) return std::make_unique<SqliteJobStore>(SqliteJobStore::open_read_only(where.file));
  return std::make_unique<SqliteJobStore>(SqliteJobStore::open(where.file));
}

}  // namespace apsis::store
