#include <doctest/doctest.h>

#include <atomic>
#include <barrier>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite.hpp"
#include "store/sqlite_job_store.hpp"
#include "store_backends.hpp"
#include "temp_dir.hpp"

using namespace apsis;
using namespace apsis::store;
using namespace std::chrono_literals;

namespace {
const TimePoint kSlot = *parse_iso8601("2026-11-29T06:30:00.000Z");
}

TEST_CASE("the database file and its directory are created, with the schema applied") {
  TempDir dir;
  const auto file = dir.path() / "state" / "nested" / "jobs.sqlite3";
  auto store = SqliteJobStore::open(file);
  CHECK(std::filesystem::exists(file));
  CHECK((std::filesystem::status(file).permissions() & std::filesystem::perms::others_all) ==
        std::filesystem::perms::none);
  CHECK(store.list({}).empty());
  // Opening again does not re-apply the migration.
  auto again = SqliteJobStore::open(file);
  CHECK(again.list({}).empty());
}

TEST_CASE_TEMPLATE("a job row records every transition, read back exactly", Backend, STORE_BACKENDS) {
  const Backend backend;
  auto store = backend.open();
  auto job = store->create("dupes", kSlot, R"({"name":"dupes"})", kSlot + 1s);
  CHECK(job.id > 0);
  CHECK(job.state == JobState::pending);
  CHECK(job.scheduled_for == kSlot);
  CHECK(job.created_at == kSlot + 1s);

  job.state = JobState::submitted;
  job.submit_attempts = 2;
  job.submitted_at = kSlot + 2s;
  job.poll_url = "https://api.apsis.one/exports/1";
  job.poll_expires_at = kSlot + 2s + 24h;
  job.polls = 3;
  job.last_http_status = 404;
  job.next_poll_at = kSlot + 45s + 123ms;
  store->save(job);
  auto read = *store->find(job.id);
  CHECK(read.state == JobState::submitted);
  CHECK(read.submit_attempts == 2);
  CHECK(read.poll_url == job.poll_url);
  CHECK(read.poll_expires_at == job.poll_expires_at);
  CHECK(read.next_poll_at == job.next_poll_at);  // millisecond precision survives
  CHECK(read.last_http_status == 404);

  job.state = JobState::succeeded;
  job.finished_at = kSlot + 1min;
  job.output_path = "/srv/exports/x.csv";
  job.bytes = 5'000'000'000;  // larger than 32 bits
  job.sha256 = std::string(64, 'a');
  job.next_poll_at.reset();
  store->save(job);
  read = *store->find(job.id);
  CHECK(read.state == JobState::succeeded);
  CHECK(read.bytes == 5'000'000'000);
  CHECK_FALSE(read.next_poll_at);
  CHECK(read.sha256 == job.sha256);
}

TEST_CASE_TEMPLATE("one job per (export, scheduled slot)", Backend, STORE_BACKENDS) {
  const Backend backend;
  auto store = backend.open();
  store->create("dupes", kSlot, "{}", kSlot);
  CHECK_THROWS_AS(store->create("dupes", kSlot, "{}", kSlot), DuplicateSlot);
  CHECK_NOTHROW(store->create("dupes", kSlot + 1ms, "{}", kSlot));
  CHECK_NOTHROW(store->create("other", kSlot, "{}", kSlot));
}

TEST_CASE_TEMPLATE("listing filters and the unfinished set", Backend, STORE_BACKENDS) {
  const Backend backend;
  auto store = backend.open();
  auto a = store->create("a", kSlot, "{}", kSlot);
  auto b = store->create("b", kSlot, "{}", kSlot);
  store->create("b", kSlot + 1h, "{}", kSlot);
  b.state = JobState::failed;
  b.error = "boom";
  store->save(b);
  CHECK(store->list({}).size() == 3);
  CHECK(store->list({.export_name = "b"}).size() == 2);
  CHECK(store->list({.state = JobState::failed}).at(0).id == b.id);
  CHECK(store->list({.limit = 1}).size() == 1);
  CHECK(store->list({.limit = 1}).at(0).id == 3);  // newest first
  CHECK(store->unfinished().size() == 2);
  CHECK(store->unfinished().at(0).id == a.id);
}

TEST_CASE_TEMPLATE("each row names its account, and an account's unfinished rows page by id", Backend, STORE_BACKENDS) {
  const Backend backend;
  auto store = backend.open();
  const auto a1 = store->create("a1", kSlot, R"({"account":"alpha"})", kSlot);
  store->create("b1", kSlot, R"({"account":"beta"})", kSlot);
  const auto a2 = store->create("a2", kSlot, R"({"account":"alpha"})", kSlot);
  auto done = store->create("a3", kSlot, R"({"account":"alpha"})", kSlot);
  FinishedColumns failed;
  failed.state = JobState::failed;
  failed.finished_at = kSlot;
  store->record_finished(done.id, failed);
  const auto first = store->unfinished_of_account("alpha", 0, 1);
  REQUIRE(first.size() == 1);
  CHECK(first.at(0).id == a1.id);
  const auto rest = store->unfinished_of_account("alpha", a1.id, 10);
  REQUIRE(rest.size() == 1);
  CHECK(rest.at(0).id == a2.id);
  CHECK(store->unfinished_of_account("gamma", 0, 10).empty());
}

TEST_CASE_TEMPLATE("saving a job whose row vanished is an error, not silence", Backend, STORE_BACKENDS) {
  const Backend backend;
  auto store = backend.open();
  Job ghost;
  ghost.id = 99;
  CHECK_THROWS_WITH(store->save(ghost), doctest::Contains("missing"));
}

TEST_CASE("a newer schema, a foreign database and a non-database are refused and left untouched") {
  TempDir dir;
  const auto newer = dir.path() / "newer.sqlite3";
  {
    Database db(newer);
    db.exec("CREATE TABLE jobs(x); PRAGMA user_version = 99");
  }
  CHECK_THROWS_WITH(SqliteJobStore::open(newer), doctest::Contains("newer than this apsis-exportd"));

  const auto foreign = dir.path() / "foreign.sqlite3";
  {
    Database db(foreign);
    db.exec("CREATE TABLE customers(id)");
  }
  CHECK_THROWS_WITH(SqliteJobStore::open(foreign), doctest::Contains("refusing to touch it"));

  const auto garbage = dir.path() / "garbage.sqlite3";
  write_file(garbage, std::string(4096, 'x'));
  CHECK_THROWS(SqliteJobStore::open(garbage));
  CHECK(read_file(garbage) == std::string(4096, 'x'));
}

TEST_CASE("the read-only view refuses a missing database instead of creating one") {
  TempDir dir;
  CHECK_THROWS_AS(SqliteJobStore::open_read_only(dir.path() / "none.sqlite3"), NotInitialised);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "none.sqlite3"));
}

TEST_CASE("times are ISO-8601 UTC with milliseconds") {
  CHECK(format_iso8601(kSlot + 5ms) == "2026-11-29T06:30:00.005Z");
  CHECK(parse_iso8601("2024-02-29T23:59:59.999Z") == Clock::from_time_t(1709251199) + 999ms);
  CHECK_FALSE(parse_iso8601("2024-02-29 23:59:59"));
  CHECK_FALSE(parse_iso8601("2024-02-29T23:59:59.999Zjunk"));
}

TEST_CASE_TEMPLATE("jobs asked for by hand in the same millisecond each get a slot of their own", Backend, STORE_BACKENDS) {
  // Two `once` (or `trigger`) runs started together used to collide on one slot, and one failed.
  const Backend backend;
  auto store = backend.open();
  const auto first = store->create_asked_for("dupes", kSlot, "{}", kSlot);
  const auto second = store->create_asked_for("dupes", kSlot, "{}", kSlot);
  const auto third = store->create_asked_for("dupes", kSlot, "{}", kSlot);
  CHECK(first.scheduled_for == kSlot);
  CHECK(second.scheduled_for == kSlot + 1ms);
  CHECK(third.scheduled_for == kSlot + 2ms);
  // A scheduled slot is never moved: that stays a duplicate.
  CHECK_THROWS_AS(store->create("dupes", kSlot, "{}", kSlot), DuplicateSlot);
}

// `once` takes its job's lock inside `claim`: a `run` starting meanwhile must not see the row unowned.
TEST_CASE_TEMPLATE("a claimed job is invisible to other connections until its claim returned", Backend, STORE_BACKENDS) {
  const Backend backend;
  auto store = backend.open();
  auto service = backend.open();
  std::int64_t claimed = 0;
  const auto job = store->create_asked_for("dupes", kSlot, "{}", kSlot, [&](std::int64_t id) {
    claimed = id;
    CHECK(service->unfinished().empty());
    CHECK(service->pending_after(0).empty());
  });
  CHECK(claimed == job.id);
  REQUIRE(service->pending_after(0).size() == 1);
  CHECK(service->pending_after(0).front().id == job.id);

  // A claim that fails leaves no row.
  CHECK_THROWS_WITH(store->create_asked_for("dupes", kSlot, "{}", kSlot,
                                           [](std::int64_t) { throw std::runtime_error("cannot lock"); }),
                    "cannot lock");
  CHECK(service->list({}).size() == 1);
}

namespace {

// Opens `file` from `threads` threads at once, each with its own JobStore; returns the errors.
std::vector<std::string> open_together(const std::filesystem::path& file, int threads) {
  std::vector<std::string> errors(static_cast<std::size_t>(threads));
  std::barrier start(threads);
  std::vector<std::thread> openers;
  for (int i = 0; i < threads; ++i)
    openers.emplace_back([&, i] {
      start.arrive_and_wait();
      try {
        (void)SqliteJobStore::open(file);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
      }
    });
  for (auto& opener : openers) opener.join();
  std::erase(errors, std::string());
  return errors;
}

// Takes the database's write lock again and again, for a moment each time, until stopped: another
// process writing while this one opens the file. Its busy handler spins, so it grabs the lock the
// moment an opener lets go of it.
class BusyWriter {
 public:
  explicit BusyWriter(const std::filesystem::path& file) : db_(file) {
    sqlite3_busy_handler(db_.handle(), [](void*, int) { std::this_thread::yield(); return 1; }, nullptr);
    thread_ = std::thread([this] {
      while (!stop_) {
        db_.exec("BEGIN IMMEDIATE");
        std::this_thread::sleep_for(2ms);
        db_.exec("COMMIT");
        std::this_thread::sleep_for(2ms);
      }
    });
  }
  ~BusyWriter() {
    stop_ = true;
    thread_.join();
  }
  BusyWriter(const BusyWriter&) = delete;
  BusyWriter& operator=(const BusyWriter&) = delete;

 private:
  Database db_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("several processes creating one new database file at once all open it") {
  // Five `once` started together on a fresh state_db: SQLite may answer BUSY at once, without waiting
  // out the busy timeout (the switch to WAL while another connection holds the write lock).
  for (int round = 0; round < 40; ++round) {
    TempDir dir;
    const auto errors = open_together(dir.path() / "jobs.sqlite3", 8);
    INFO("round " << round << ": " << (errors.empty() ? std::string() : errors.front()));
    REQUIRE(errors.empty());
  }
}

TEST_CASE("opening waits for a writer that holds the lock when the journal switches to WAL") {
  // The opener's schema commit hands the write lock to the writer, which holds it just as the
  // opener switches the new file to WAL: SQLite refuses that switch at once instead of waiting.
  for (int round = 0; round < 30; ++round) {
    TempDir dir;
    const auto file = dir.path() / "jobs.sqlite3";
    const BusyWriter writer(file);
    std::string error;
    try {
      (void)SqliteJobStore::open(file);
    } catch (const std::exception& e) {
      error = e.what();
    }
    INFO("round " << round);
    REQUIRE(error == "");
  }
}
