// store/store_writer: a busy database makes a write wait and retry, never fail; progress notes are
// coalesced per job and written in batches.
#include <doctest/doctest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <thread>
#include <boost/system/system_error.hpp>

#include "postgres_test_database.hpp"
#include "store/fence.hpp"
#include "store/postgres_job_store.hpp"
#include "store/sqlite_job_store.hpp"
#include "store/store_writer.hpp"
#include "temp_dir.hpp"

using namespace apsis;
using namespace apsis::store;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

const TimePoint kSlot = *parse_iso8601("2026-11-29T06:30:00.000Z");

struct Fixture {
  TempDir dir;
  std::filesystem::path file{dir.path() / "jobs.sqlite3"};
  SqliteJobStore store{SqliteJobStore::open(file)};
  asio::io_context io;
  std::vector<std::string> reports;
  StoreWriter writer{io.get_executor(), store, 10ms,
                     StoreWriterOptions{.first_retry = 5ms, .max_retry = 40ms, .seed = 1,
                                        .report = [this](std::string_view r) { reports.emplace_back(r); }}};

  std::int64_t new_job(int n = 0) {
    auto job = store.create_asked_for("dupes", kSlot + std::chrono::seconds(n), "{}", kSlot);
    job.state = JobState::submitted;
    store.save(job);
    return job.id;
  }
  // Runs `f` on the loop after `delay`.
  void at(Milliseconds delay, std::function<void()> f) {
    auto timer = std::make_shared<asio::steady_timer>(io, delay);
    timer->async_wait([timer, f = std::move(f)](const boost::system::error_code&) { f(); });
  }
};

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

}  // namespace

TEST_CASE("a write that finds the database locked waits and retries until the lock is released") {
  Fixture f;
  const auto id = f.new_job();
  Database other(f.file);
  other.exec("BEGIN IMMEDIATE");
  bool written = false;
  bool busy_while_locked = false;
  asio::co_spawn(f.io, f.writer.write([&](JobStore& s) { s.record_hook_result(id, "exit 0"); }),
                 [&](std::exception_ptr e) {
                   rethrow(e);
                   written = true;
                 });
  f.at(500ms, [&] {
    busy_while_locked = f.writer.busy() && f.writer.busy_since().has_value();
    other.exec("COMMIT");
  });
  f.io.run();
  CHECK(busy_while_locked);
  CHECK(written);
  CHECK_FALSE(f.writer.busy());
  CHECK_FALSE(f.writer.busy_since());
  CHECK(f.store.find(id)->hook_result == "exit 0");
  REQUIRE(f.reports.size() == 2);  // busy, then writable again: one line each, not one per retry
  CHECK(f.reports[0].find("busy") != std::string::npos);
  CHECK(f.reports[1].find("writable again") != std::string::npos);
}

TEST_CASE("an error other than Busy propagates from write") {
  Fixture f;
  std::exception_ptr error;
  asio::co_spawn(f.io, f.writer.write([&](JobStore& s) { s.record_hook_result(404, "x"); }),
                 [&](std::exception_ptr e) { error = e; });
  f.io.run();
  REQUIRE(error);
  CHECK_THROWS_WITH(std::rethrow_exception(error), doctest::Contains("job 404 is missing"));
  CHECK_FALSE(f.writer.busy());
}

TEST_CASE("a write waiting for the lock ends with operation_aborted when its coroutine is cancelled") {
  Fixture f;
  const auto id = f.new_job();
  Database other(f.file);
  other.exec("BEGIN IMMEDIATE");
  asio::cancellation_signal cancel;
  std::exception_ptr error;
  asio::co_spawn(f.io, f.writer.write([&](JobStore& s) { s.record_hook_result(id, "x"); }),
                 asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) { error = e; }));
  f.at(300ms, [&] { cancel.emit(asio::cancellation_type::terminal); });
  f.io.run();
  other.exec("ROLLBACK");
  REQUIRE(error);
  CHECK_THROWS_AS(std::rethrow_exception(error), boost::system::system_error);
  CHECK_FALSE(f.writer.busy());
  CHECK_FALSE(f.store.find(id)->hook_result);
}

TEST_CASE("queued progress is coalesced per job and written in one batch") {
  Fixture f;
  const auto a = f.new_job(1);
  const auto b = f.new_job(2);
  f.writer.queue_progress({a, JobState::submitted, 1, kSlot + 1min, 404, 0, 0});
  f.writer.queue_progress({a, JobState::submitted, 2, kSlot + 2min, 404, 0, 0});
  f.writer.queue_progress({b, JobState::submitted, 5, kSlot + 5min, 404, 0, 0});
  CHECK(f.writer.queued() == 2);
  const auto calls = f.store.call_times().calls();
  f.io.run();  // the flush timer fires once, writes, and leaves nothing armed: run() returns
  CHECK(f.writer.queued() == 0);
  CHECK(f.store.call_times().calls() == calls + 1);  // one record_progress call for both rows
  CHECK(f.store.find(a)->polls == 2);
  CHECK(f.store.find(a)->next_poll_at == kSlot + 2min);
  CHECK(f.store.find(b)->polls == 5);
}

TEST_CASE("a busy flush keeps its batch for the next turn") {
  Fixture f;
  const auto a = f.new_job();
  Database other(f.file);
  other.exec("BEGIN IMMEDIATE");
  f.writer.queue_progress({a, JobState::submitted, 3, kSlot + 3min, 404, 0, 0});
  bool kept = false;
  f.at(600ms, [&] {
    kept = f.writer.queued() == 1 && f.writer.busy();
    other.exec("COMMIT");
  });
  f.io.run();
  CHECK(kept);
  CHECK(f.writer.queued() == 0);
  CHECK_FALSE(f.writer.busy());
  CHECK(f.store.find(a)->polls == 3);
}

TEST_CASE("a write lands after the progress queued before it: a late note never undoes it") {
  Fixture f;
  const auto a = f.new_job();
  f.writer.queue_progress({a, JobState::submitted, 4, kSlot + 4min, 404, 0, 0});
  asio::co_spawn(f.io, f.writer.write([&](JobStore& s) {
    s.record_finished(a, {JobState::failed, kSlot + 5min, "gave up", std::nullopt, std::nullopt, std::nullopt, {}, {}, {}, {}});
  }), [](std::exception_ptr e) { rethrow(e); });
  f.io.run();
  const auto row = *f.store.find(a);
  CHECK(row.state == JobState::failed);
  CHECK(row.polls == 4);
  CHECK_FALSE(row.next_poll_at);
  CHECK(f.writer.queued() == 0);
}

TEST_CASE("flush writes the queued batch now, and stop leaves an idle loop free to end") {
  Fixture f;
  const auto a = f.new_job();
  f.writer.queue_progress({a, JobState::submitted, 6, kSlot + 6min, 404, 0, 0});
  f.writer.stop();
  f.io.run();  // the stopped flush timer holds nothing
  CHECK(f.writer.queued() == 1);
  f.io.restart();
  asio::co_spawn(f.io, f.writer.flush(), [](std::exception_ptr e) { rethrow(e); });
  f.io.run();
  CHECK(f.writer.queued() == 0);
  CHECK(f.store.find(a)->polls == 6);
}

TEST_CASE("with a database executor, store calls run on its thread and answers come back to the loop") {
  TempDir dir;
  SqliteJobStore store{SqliteJobStore::open(dir.path() / "jobs.sqlite3")};
  const auto job = store.create_asked_for("dupes", kSlot, R"({"account":"main"})", kSlot);
  asio::io_context io;
  asio::thread_pool database(1);
  StoreWriter writer{io.get_executor(), store, 10ms, StoreWriterOptions{.report = {}, .database = database.get_executor()}};
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id write_thread;
  std::thread::id resumed_thread;
  std::optional<Job> found;
  auto steps = [&]() -> asio::awaitable<void> {
    std::function<void(JobStore&)> write = [&](JobStore& s) {
      write_thread = std::this_thread::get_id();
      s.record_hook_result(job.id, "exit 0");
    };
    co_await writer.write(std::move(write));
    std::function<std::optional<Job>(JobStore&)> read = [&](JobStore& s) { return s.find(job.id); };
    found = co_await writer.call(std::move(read));
    resumed_thread = std::this_thread::get_id();
  };
  asio::co_spawn(io, steps(), rethrow);
  io.run();
  database.join();
  CHECK(write_thread != loop_thread);
  CHECK(resumed_thread == loop_thread);
  REQUIRE(found.has_value());
  CHECK(found->hook_result == "exit 0");
}

TEST_CASE("a busy batch keeps its notes, and a note queued while it was written is the newer one") {
  Fixture f;
  const auto id = f.new_job();
  Database other(f.file);
  other.exec("BEGIN IMMEDIATE");
  f.writer.queue_progress({id, JobState::submitted, 5, kSlot + 5s, 404, 0, 0});
  f.at(60ms, [&] { f.writer.queue_progress({id, JobState::submitted, 6, kSlot + 6s, 404, 0, 0}); });
  f.at(200ms, [&] { other.exec("COMMIT"); });
  f.io.run();
  const auto row = f.store.find(id);
  CHECK(row->polls == 6);
  CHECK(f.writer.queued() == 0);
}

TEST_CASE("postgres: the queued notes of an account handed over are dropped, and the other writes go on") {
  apsis::testing::PostgresTestDatabase db;
  auto book = std::make_shared<LeaseBook>();
  auto unfenced = PostgresJobStore::open(db.settings());
  const auto released = unfenced->create("a", kSlot, R"({"account":"acme"})", kSlot).id;
  const auto kept = unfenced->create("b", kSlot, R"({"account":"beta"})", kSlot).id;
  db.sql("INSERT INTO leases (account, owner, epoch, expires_at, acquired_at) VALUES "
         "('beta', 'me', 1, now() + interval '1 minute', now())");
  auto store = PostgresJobStore::open(db.settings(), {.leases = book});
  book->hold("beta", {"me", 1});
  asio::io_context io;
  std::vector<std::string> reports;
  StoreWriter writer{io.get_executor(), *store, 10s,
                     StoreWriterOptions{.first_retry = 5ms, .max_retry = 40ms, .seed = 1,
                                        .report = [&](std::string_view r) { reports.emplace_back(r); }}};
  // A note of an account this instance no longer holds (released on a rebalance) is still queued.
  writer.queue_progress({released, JobState::submitted, 5, kSlot + 5s, 404, 0, 0});
  bool written = false;
  auto step = [&]() -> asio::awaitable<void> {
    std::function<void(JobStore&)> write = [&](JobStore& s) { s.record_hook_result(kept, "exit 0"); };
    co_await writer.write(std::move(write));
    written = true;
  };
  asio::co_spawn(io, step(), rethrow);
  io.run_for(3s);
  CHECK(written);
  CHECK(unfenced->find(kept)->hook_result == "exit 0");
  CHECK(unfenced->find(released)->polls == 0);  // never written by an instance without the lease
  CHECK(writer.queued() == 0);
}
