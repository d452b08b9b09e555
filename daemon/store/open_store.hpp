// Opens the job table where `state_db:` says: a path is a SQLite file, a postgresql:// URL a
// PostgreSQL database.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "store/fence.hpp"
#include "store/job_store.hpp"
#include "util/time.hpp"

namespace apsis::store {

struct StateDb {
  std::filesystem::path file;      // SQLite, when `url` is empty
  std::optional<std::string> url;  // PostgreSQL: the URL as configured (${ENV} not yet expanded)

  bool postgres() const { return url.has_value(); }
};

struct OpenOptions {
  // `jobs`, `status`: never creates or migrates anything; NotInitialised for a table not made yet.
  bool read_only{false};
  // PostgreSQL with leases: every write for a job is fenced by its account's lease (store/fence.hpp).
  std::shared_ptr<const LeaseBook> leases{};
  // PostgreSQL: how long a call waits for another thread's call to end (PostgresStoreOptions);
  // empty: as long as it takes (commands).
  std::optional<Milliseconds> lock_wait{};
};

std::unique_ptr<JobStore> open_job_store(const StateDb& where, const OpenOptions& options = {});

}  // namespace apsis::store
