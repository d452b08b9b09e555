// store/postgres_job_store: what only the PostgreSQL backend does (the behaviour both backends share
// is tested against both in job_store_test.cpp and job_updates_test.cpp): migrating under
// concurrent opens, refusing another schema, fencing writes by the account's lease, and a lost
// connection surfacing as Busy.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "postgres_test_database.hpp"
#include "store/postgres_job_store.hpp"

using namespace apsis;
using namespace apsis::store;
using namespace std::chrono_literals;
using apsis::testing::PostgresTestDatabase;

namespace {

const TimePoint kSlot = *parse_iso8601("2026-11-29T06:30:00.000Z");
const std::string kDefinition = R"({"name":"dupes","account":"acme"})";

std::string text_of(const std::exception& e) { return e.what(); }

// Ends every other session on the database, as a server restart or a network cut would, and waits
// until they are gone (without the wait, the next statement can still reach a dying session).
void kill_other_sessions(const PostgresTestDatabase& db) {
  db.sql("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
         "WHERE datname = current_database() AND pid <> pg_backend_pid()");
}

}  // namespace

TEST_CASE("postgres: instances opening a fresh database together create one schema") {
  PostgresTestDatabase db;
  constexpr int kInstances = 8;
  std::vector<std::string> errors(kInstances);
  std::vector<std::thread> instances;
  for (int i = 0; i < kInstances; ++i)
    instances.emplace_back([&, i] {
      try {
        auto store = PostgresJobStore::open(db.settings());
        store->create_asked_for("dupes", kSlot, kDefinition, kSlot);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
      }
    });
  for (auto& instance : instances) instance.join();
  for (const auto& error : errors) CHECK(error == "");
  CHECK(db.sql("SELECT count(*) FROM schema_version") == "1");
  CHECK(db.sql("SELECT version FROM schema_version") == std::to_string(PostgresJobStore::schema_version()));
  CHECK(db.sql("SELECT count(*) FROM jobs") == std::to_string(kInstances));
  // The account comes from the definition.
  CHECK(db.sql("SELECT count(*) FROM jobs WHERE account = 'acme'") == std::to_string(kInstances));
  // Opening again applies nothing twice.
  auto again = PostgresJobStore::open(db.settings());
  CHECK(again->list({}).size() == kInstances);
}

TEST_CASE("postgres: a newer schema and a foreign jobs table are refused and left untouched") {
  PostgresTestDatabase newer;
  PostgresJobStore::open(newer.settings());
  newer.sql("UPDATE schema_version SET version = 99");
  const auto refusal = "schema version 99, newer than this apsis-exportd (" +
                       std::to_string(PostgresJobStore::schema_version()) + ")";
  CHECK_THROWS_WITH(PostgresJobStore::open(newer.settings()), doctest::Contains(refusal.c_str()));
  CHECK_THROWS_WITH(PostgresJobStore::open_read_only(newer.settings()), doctest::Contains("schema version 99"));
  CHECK(newer.sql("SELECT version FROM schema_version") == "99");

  PostgresTestDatabase foreign;
  foreign.sql("CREATE TABLE jobs (x integer)");
  CHECK_THROWS_WITH(PostgresJobStore::open(foreign.settings()), doctest::Contains("refusing to touch it"));
  CHECK(foreign.sql("SELECT to_regclass('schema_version') IS NULL") == "t");
}

TEST_CASE("postgres: the read-only view creates nothing and writes nothing") {
  PostgresTestDatabase db;
  CHECK_THROWS_AS(PostgresJobStore::open_read_only(db.settings()), NotInitialised);
  CHECK(db.sql("SELECT to_regclass('jobs') IS NULL") == "t");
  auto writer = PostgresJobStore::open(db.settings());
  writer->create("dupes", kSlot, kDefinition, kSlot);
  auto reader = PostgresJobStore::open_read_only(db.settings());
  CHECK(reader->list({}).size() == 1);
  CHECK_THROWS_WITH(reader->create("dupes", kSlot + 1s, kDefinition, kSlot), doctest::Contains("read-only"));
  // Also on the connection made again after one was lost.
  CHECK(reader->list({}).size() == 1);
  kill_other_sessions(db);
  CHECK_THROWS_AS(reader->list({}), Busy);
  CHECK_THROWS_WITH(reader->create("dupes", kSlot + 1s, kDefinition, kSlot), doctest::Contains("read-only"));
  CHECK(reader->describe().find("PostgreSQL postgresql:///") == 0);
}

TEST_CASE("postgres: job_summary reads like SQLite's, seconds computed from the text times") {
  PostgresTestDatabase db;
  auto store = PostgresJobStore::open(db.settings());
  const auto id = store->create("dupes", kSlot, kDefinition, kSlot).id;
  store->record_submitted(id, {kSlot + 10s, "https://api.example/exports/9", "file_download_url", kSlot + 20h, 201,
                               kSlot + 40s});
  store->record_published(id, {"/srv/a.csv", 10, "abc", std::nullopt, kSlot + 72s + 350ms, 200});
  CHECK(db.sql("SELECT seconds FROM job_summary WHERE id = " + std::to_string(id)) == "62.4");
  CHECK(db.sql("SELECT scheduled_for::timestamptz = '2026-11-29 06:30:00+00' FROM jobs") == "t");
}

TEST_CASE("postgres: writes are fenced by the lease of the job's account") {
  PostgresTestDatabase db;
  auto book = std::make_shared<LeaseBook>();
  auto unfenced = PostgresJobStore::open(db.settings());
  const auto id = unfenced->create("dupes", kSlot, kDefinition, kSlot).id;
  const auto other = unfenced->create("dupes", kSlot + 1s, kDefinition, kSlot).id;
  db.sql("INSERT INTO leases (account, owner, epoch, expires_at, acquired_at) "
         "VALUES ('acme', 'host-a', 7, now() + interval '15 seconds', now())");
  auto store = PostgresJobStore::open(db.settings(), {.leases = book});

  SUBCASE("no tenure: LeaseLost without a write") {
    CHECK_THROWS_AS(store->record_hook_result(id, "x"), LeaseLost);
    CHECK_FALSE(unfenced->find(id)->hook_result);
  }
  SUBCASE("the tenure held: the write lands") {
    book->hold("acme", {"host-a", 7});
    store->record_hook_result(id, "x");
    CHECK(unfenced->find(id)->hook_result == "x");
    const PollProgress note{id, JobState::submitted, 5, kSlot + 5min, 404, 0, 0};
    store->record_progress(std::span(&note, 1));
    CHECK(unfenced->find(id)->polls == 5);
  }
  SUBCASE("another epoch: LeaseLost, the row unchanged") {
    book->hold("acme", {"host-a", 6});
    CHECK_THROWS_WITH_AS(store->record_finished(id, {JobState::failed, kSlot + 1min, "x", {}, {}, {}, {}, {}, {}, {}}),
                         doctest::Contains("no longer holds the account's lease"), LeaseLost);
    CHECK(unfenced->find(id)->state == JobState::pending);
  }
  SUBCASE("another owner: LeaseLost") {
    book->hold("acme", {"host-b", 7});
    CHECK_THROWS_AS(store->save(*unfenced->find(id)), LeaseLost);
  }
  SUBCASE("the lease expired by the database's clock: LeaseLost, the row unchanged") {
    book->hold("acme", {"host-a", 7});
    db.sql("UPDATE leases SET expires_at = now() - interval '1 second'");
    CHECK_THROWS_AS(store->record_submit_attempt(id, {3, std::nullopt, std::nullopt}), LeaseLost);
    CHECK(unfenced->find(id)->submit_attempts == 0);
  }
  SUBCASE("a batch of progress notes: the held rows are written, LeaseLost names the others") {
    const auto elsewhere = unfenced->create("other", kSlot, R"({"account":"globex"})", kSlot).id;
    book->hold("acme", {"host-a", 7});
    book->hold("globex", {"host-a", 1});  // globex has no lease row: never held in the database
    const std::vector<PollProgress> batch{{id, JobState::submitted, 5, kSlot + 5min, 404, 0, 0},
                                          {elsewhere, JobState::submitted, 6, kSlot + 6min, 404, 0, 0},
                                          {other, JobState::submitted, 7, kSlot + 7min, 404, 0, 0}};
    try {
      store->record_progress(batch);
      FAIL("no LeaseLost");
    } catch (const LeaseLost& e) {
      CHECK(text_of(e).find("jobs " + std::to_string(elsewhere) + ":") != std::string::npos);
    }
    CHECK(unfenced->find(id)->polls == 5);
    CHECK(unfenced->find(other)->polls == 7);
    CHECK(unfenced->find(elsewhere)->polls == 0);
  }
  SUBCASE("a missing row is still 'missing', not a lost lease") {
    book->hold("acme", {"host-a", 7});
    CHECK_THROWS_WITH_AS(store->record_hook_result(4242, "x"), doctest::Contains("job 4242 is missing"),
                         std::runtime_error);
  }
  SUBCASE("confirm_lease before a publish: passes while held, LeaseLost once expired or without a tenure") {
    CHECK_THROWS_AS(store->confirm_lease(id), LeaseLost);
    book->hold("acme", {"host-a", 7});
    CHECK_NOTHROW(store->confirm_lease(id));
    db.sql("UPDATE leases SET expires_at = now() - interval '1 second'");
    CHECK_THROWS_WITH_AS(store->confirm_lease(id), doctest::Contains("nothing published"), LeaseLost);
    CHECK_NOTHROW(unfenced->confirm_lease(id));  // no book: a command, not an instance
  }
  SUBCASE("creating a slot is not fenced") {
    CHECK_NOTHROW(store->create("dupes", kSlot + 1h, kDefinition, kSlot));
    CHECK_THROWS_AS(store->create("dupes", kSlot + 1h, kDefinition, kSlot), DuplicateSlot);
  }
}

TEST_CASE("postgres: a killed connection is Busy once, and the next call connects again") {
  PostgresTestDatabase db;
  auto store = PostgresJobStore::open(db.settings());
  const auto id = store->create("dupes", kSlot, kDefinition, kSlot).id;
  kill_other_sessions(db);
  try {
    store->record_hook_result(id, "x");
    FAIL("no Busy");
  } catch (const Busy& e) {
    CHECK(text_of(e).find("database unavailable") != std::string::npos);
    CHECK(text_of(e).find("record_hook_result") != std::string::npos);
  }
  CHECK_FALSE(store->find(id)->hook_result);
  store->record_hook_result(id, "x");
  CHECK(store->find(id)->hook_result == "x");
}

TEST_CASE("postgres: a transaction cut by a lost connection leaves no row, and the store recovers") {
  PostgresTestDatabase db;
  auto store = PostgresJobStore::open(db.settings());
  CHECK_THROWS_AS(store->create_asked_for("dupes", kSlot, kDefinition, kSlot,
                                          [&](std::int64_t) {
                                            kill_other_sessions(db);
                                          }),
                  Busy);
  CHECK(store->list({}).empty());
  CHECK(store->create_asked_for("dupes", kSlot, kDefinition, kSlot, [](std::int64_t) {}).scheduled_for == kSlot);
}
