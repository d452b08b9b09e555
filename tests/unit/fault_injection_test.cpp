// The countdown fault hook (sanitizer build only): the N-th operation over all points fails once, the
// way the real one would, and the log names the point.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "sink/staged_file.hpp"
#include "store/sqlite.hpp"
#include "temp_dir.hpp"
#include "util/fault_injection.hpp"

#ifdef APSIS_FAULT_INJECTION

using namespace apsis;

namespace {

// Disarms the hook at scope exit, so no other test sees an injected failure.
struct Armed {
  explicit Armed(long fail_at, const std::filesystem::path& log = {}) { fault::arm(fail_at, log.native()); }
  ~Armed() { fault::arm(0); }
};

}  // namespace

TEST_CASE("the countdown fails exactly the N-th call, over all points, once") {
  TempDir dir;
  const auto log = dir.path() / "fired";
  Armed armed(3, log);
  CHECK_FALSE(fault::inject("write"));
  CHECK_FALSE(fault::inject("fsync"));
  CHECK(fault::inject("rename", "/out/a.csv"));
  CHECK_FALSE(fault::inject("rename"));
  CHECK_FALSE(fault::inject("write"));
  CHECK(fault::operations() == 5);
  CHECK(read_file(log) == "rename\t/out/a.csv\n");
}

TEST_CASE("disarmed, the hook counts and never fires") {
  Armed armed(0);
  for (int i = 0; i < 100; ++i) CHECK_FALSE(fault::inject("write"));
  CHECK(fault::operations() == 100);
}

TEST_CASE("an injected fsync fails the publish with EIO and leaves no file under any name") {
  TempDir dir;
  sink::StagedFile file(dir.path() / "a.csv");
  file.write(std::string("h\n1\n"));
  // Armed after the write: counting starts again, and the fsync is the first operation.
  Armed armed(1);
  try {
    file.publish();
    FAIL("publish succeeded");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EIO);
    CHECK(std::string(e.what()).find("cannot fsync") != std::string::npos);
  }
  CHECK(std::filesystem::is_empty(dir.path()));
}

TEST_CASE("a failed fsync of the directory removes the file just moved into place") {
  TempDir dir;
  sink::StagedFile file(dir.path() / "a.csv");
  file.write(std::string("h\n1\n"));
  Armed armed(3);  // fsync, rename, fsync of the directory
  try {
    file.publish();
    FAIL("publish succeeded");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EIO);
    CHECK(std::string(e.what()).find("cannot fsync directory") != std::string::npos);
  }
  CHECK(std::filesystem::is_empty(dir.path()));
}

TEST_CASE("an injected SQLite step is SQLITE_IOERR and changes nothing; read-only statements are not counted") {
  TempDir dir;
  store::Database db(dir.path() / "t.sqlite3");
  db.exec("CREATE TABLE t (x INTEGER)");
  Armed armed(2);
  auto select = db.prepare("SELECT count(*) FROM t");
  CHECK(select.step());  // not counted
  auto insert = db.prepare("INSERT INTO t VALUES (1)");
  insert.run();  // the first counted operation
  insert.reset();
  try {
    insert.run();
    FAIL("the second insert succeeded");
  } catch (const store::SqliteError& e) {
    CHECK(e.code() == SQLITE_IOERR_WRITE);
  }
  select.reset();
  CHECK(select.step());
  CHECK(select.column_int(0) == 1);
}

#endif
