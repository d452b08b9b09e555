// The job store's two backends for the tests that run against both (TEST_CASE_TEMPLATE over
// STORE_BACKENDS): each value is a fresh empty database, and open() a new connection to it.
#pragma once

#include <memory>

#include "postgres_test_database.hpp"
#include "store/postgres_job_store.hpp"
#include "store/sqlite_job_store.hpp"
#include "temp_dir.hpp"

struct SqliteBackend {
  TempDir dir;
  std::unique_ptr<apsis::store::JobStore> open() const {
    return std::make_unique<apsis::store::SqliteJobStore>(apsis::store::SqliteJobStore::open(dir.path() / "jobs.sqlite3"));
  }
};

struct PostgresBackend {
  apsis::testing::PostgresTestDatabase database;
  std::unique_ptr<apsis::store::JobStore> open() const {
    return apsis::store::PostgresJobStore::open(database.settings());
  }
};

#define STORE_BACKENDS SqliteBackend, PostgresBackend
