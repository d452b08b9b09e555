// A throw-away PostgreSQL 15 cluster for tests: initdb in a temporary directory, the server listening
// only on a Unix socket there, fsync off. Started once per test binary on first use (initdb costs
// about two seconds) and removed at exit. Missing PostgreSQL is a test failure, not a skip: CI
// installs postgresql-15.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace apsis::testing {

class TestCluster {
 public:
  // The process's cluster, started on the first call. Throws std::runtime_error with the reason
  // (PostgreSQL not installed, initdb or pg_ctl failing with their output).
  static TestCluster& shared();

  explicit TestCluster(std::filesystem::path bin_dir = "/usr/lib/postgresql/15/bin");
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;
  ~TestCluster();  // pg_ctl stop -m immediate, then removes the directory

  // postgresql:///<database>?host=<socket dir>&user=postgres
  std::string url(std::string_view database = "apsis") const;
  // A new empty database (CREATE DATABASE via createdb), so a test starts from nothing.
  std::string create_database(std::string_view name);
  const std::filesystem::path& socket_dir() const { return directory_; }

  // A database outage: stop kills the server (immediate mode, like a crash), start brings it back.
  void stop();
  void start();
  bool running() const { return running_; }

 private:
  void run(const std::string& command, std::string_view what) const;
  std::string as_owner(const std::string& command) const;

  std::filesystem::path bin_dir_;
  std::filesystem::path directory_;
  bool running_ = false;
};

}  // namespace apsis::testing
