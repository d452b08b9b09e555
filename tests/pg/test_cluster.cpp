#include "test_cluster.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace apsis::testing {
namespace {

constexpr const char* owner = "postgres";  // the system user Debian's postgresql package creates

std::string quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

std::string tail(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

}  // namespace

TestCluster& TestCluster::shared() {
  static TestCluster cluster;  // destroyed at exit: the server does not outlive the test binary
  return cluster;
}

TestCluster::TestCluster(std::filesystem::path bin_dir) : bin_dir_(std::move(bin_dir)) {
  if (!std::filesystem::exists(bin_dir_ / "initdb"))
    throw std::runtime_error("PostgreSQL 15 is not installed: " + (bin_dir_ / "initdb").string() +
                             " is missing (.ci/install-deps installs postgresql-15)");
  std::string pattern = (std::filesystem::temp_directory_path() / "apsis-pg-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary directory for PostgreSQL");
  directory_ = pattern;
  // initdb refuses to run as root; as root (CI) the cluster belongs to the postgres user.
  if (::geteuid() == 0) run("chown " + std::string(owner) + " " + quoted(directory_), "chown");
  run(as_owner(quoted(bin_dir_ / "initdb") + " -D " + quoted(directory_ / "data") +
               " -U postgres -A trust -E UTF8 --locale=C --no-sync"),
      "initdb");
  start();
  create_database("apsis");
}

TestCluster::~TestCluster() {
  if (running_) std::system((as_owner(quoted(bin_dir_ / "pg_ctl") + " -D " + quoted(directory_ / "data") +
                                      " -m immediate stop") + " >/dev/null 2>&1")
                                .c_str());
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

std::string TestCluster::as_owner(const std::string& command) const {
  return ::geteuid() == 0 ? "runuser -u " + std::string(owner) + " -- " + command : command;
}

// The command's output goes to a log file in the cluster directory; a failure quotes its end.
void TestCluster::run(const std::string& command, std::string_view what) const {
  const auto log = directory_ / "commands.log";
  const int status = std::system((command + " >>" + quoted(log) + " 2>&1").c_str());
  if (status != 0)
    throw std::runtime_error("test cluster: " + std::string(what) + " failed (" + command + "):\n" + tail(log) +
                             "\nserver log:\n" + tail(directory_ / "server.log"));
}

void TestCluster::start() {
  // Only the Unix socket in our directory (no TCP port to collide with), fsync off (-F): the data
  // is thrown away anyway.
  run(as_owner(quoted(bin_dir_ / "pg_ctl") + " -D " + quoted(directory_ / "data") + " -l " +
               quoted(directory_ / "server.log") + " -w -t 60 -o \"-k " + quoted(directory_) +
               " -c listen_addresses='' -F -c max_connections=200\" start"),
      "pg_ctl start");
  running_ = true;
}

void TestCluster::stop() {
  run(as_owner(quoted(bin_dir_ / "pg_ctl") + " -D " + quoted(directory_ / "data") + " -w -m immediate stop"),
      "pg_ctl stop");
  running_ = false;
}

std::string TestCluster::url(std::string_view database) const {
  return "postgresql:///" + std::string(database) + "?host=" + directory_.string() + "&user=postgres";
}

std::string TestCluster::create_database(std::string_view name) {
  run(as_owner(quoted(bin_dir_ / "createdb") + " -h " + quoted(directory_) + " -U postgres " + std::string(name)),
      "createdb");
  return url(name);
}

}  // namespace apsis::testing
