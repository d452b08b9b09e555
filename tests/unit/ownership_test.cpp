#include "store/ownership.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include "temp_dir.hpp"

using namespace apsis;
using namespace apsis::store;

namespace {
const TimePoint kStart = *parse_iso8601("2026-11-29T06:30:00.000Z");
}

// flock locks belong to an open file description, so a second acquire in this process stands for a
// second `run`.
TEST_CASE("ownership: one service per state database; the second is told who holds it") {
  TempDir dir;
  const auto db = dir.path() / "state" / "jobs.sqlite3";
  CHECK_FALSE(service_owner(db).has_value());
  CHECK_FALSE(std::filesystem::exists(dir.path() / "state" / "jobs.sqlite3.lock"));  // looking creates nothing
  {
    auto held = acquire_service_ownership(db, kStart);
    CHECK(held.lock_file() == dir.path() / "state" / "jobs.sqlite3.lock");
    const auto owner = service_owner(db);
    REQUIRE(owner.has_value());
    CHECK(owner->pid == ::getpid());
    CHECK(owner->started == "2026-11-29T06:30:00.000Z");
    try {
      acquire_service_ownership(db, kStart);
      FAIL("a second service acquired a held database");
    } catch (const ServiceRunning& e) {
      CHECK(e.lock_file() == held.lock_file());
      CHECK(e.holder().pid == ::getpid());
      const std::string message = e.what();
      CHECK(message.find(held.lock_file().string()) != std::string::npos);
      CHECK(message.find("pid " + std::to_string(::getpid())) != std::string::npos);
    }
    // Moving keeps it held.
    auto moved = std::move(held);
    CHECK(service_owner(db).has_value());
  }
  // Released with its owner: the file stays, nobody holds it.
  CHECK(std::filesystem::exists(dir.path() / "state" / "jobs.sqlite3.lock"));
  CHECK_FALSE(service_owner(db).has_value());
  auto next = acquire_service_ownership(db, kStart + std::chrono::hours(1));
  CHECK(service_owner(db)->started == "2026-11-29T07:30:00.000Z");
}

TEST_CASE("ownership: looking never keeps the lock") {
  TempDir dir;
  const auto db = dir.path() / "jobs.sqlite3";
  { auto first = acquire_service_ownership(db, kStart); }
  for (int i = 0; i < 3; ++i) CHECK_FALSE(service_owner(db).has_value());
  CHECK_NOTHROW(acquire_service_ownership(db, kStart));
}
