#include "service/once_lock.hpp"

#include <doctest/doctest.h>

#include "temp_dir.hpp"

using apsis::service::OnceLock;

// flock locks belong to an open file, so a second open in this process sees the first as another owner.
TEST_CASE("once_lock: a job's owner is alive while its lock is held, gone after, none once removed") {
  TempDir dir;
  const auto db = dir.path() / "jobs.sqlite3";
  CHECK(OnceLock::owner(db, 7) == OnceLock::Owner::none);
  CHECK_FALSE(OnceLock::take_abandoned(db, 7).has_value());
  {
    auto lock = OnceLock::create(db, 7);
    CHECK(std::filesystem::exists(dir.path() / "jobs.sqlite3.once-7.lock"));
    CHECK(OnceLock::owner(db, 7) == OnceLock::Owner::alive);
    CHECK_FALSE(OnceLock::take_abandoned(db, 7).has_value());
    CHECK(OnceLock::owner(db, 8) == OnceLock::Owner::none);
  }  // the process "dies": the lock goes, the file stays
  CHECK(OnceLock::owner(db, 7) == OnceLock::Owner::gone);
  auto taken = OnceLock::take_abandoned(db, 7);
  REQUIRE(taken.has_value());
  CHECK(OnceLock::owner(db, 7) == OnceLock::Owner::alive);
  taken->remove();
  CHECK(OnceLock::owner(db, 7) == OnceLock::Owner::none);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "jobs.sqlite3.once-7.lock"));
}
