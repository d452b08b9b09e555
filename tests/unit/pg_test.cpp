// daemon/pg: settings parsed without a server; the connection against a real throw-away PostgreSQL 15
// (tests/pg/test_cluster.hpp), faults included: timeouts, a dead socket, a killed backend, an outage.
#include <doctest/doctest.h>

#include "pg/connect_parameters.hpp"
#include "pg/connection.hpp"
#include "pg/error.hpp"
#include "pg/run_to_completion.hpp"
#include "pg/settings.hpp"
#include "temp_dir.hpp"
#include "test_cluster.hpp"
#include "util/errors.hpp"
#include "util/sleep.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <chrono>
#include <cstdio>
#include <map>

using namespace apsis::pg;
using apsis::testing::TestCluster;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

EnvLookup env_of(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    const auto found = values.find(name);
    if (found == values.end()) return std::nullopt;
    return found->second;
  };
}

template <typename T>
T run(asio::awaitable<T> work) {
  asio::io_context io;
  return run_to_completion(io, std::move(work));
}

ConnectionSettings cluster_settings() { return parse_database_url(TestCluster::shared().url(), env_of({})); }

Connection connect_to_cluster() { return run(Connection::connect(cluster_settings(), 5s)); }

Result query(Connection& connection, std::string_view sql, Parameters parameters = {}) {
  return run(connection.query(sql, std::move(parameters), 5s));
}

Error error_of(Connection& connection, std::string_view sql, std::chrono::milliseconds timeout = 5s) {
  try {
    run(connection.query(sql, {}, timeout));
  } catch (const Error& error) {
    return error;
  }
  FAIL("the query did not fail: " << sql);
  throw std::logic_error("unreachable");
}

// Each query doubles a number of its own and counts the right answers.
asio::awaitable<void> doubling_queries(ConnectionSettings settings, int first, int count, int& correct) {
  auto connection = co_await Connection::connect(std::move(settings), 10s);
  for (int value = first; value < first + count; ++value) {
    // Built outside the co_await: GCC 12 miscompiles an initializer list inside one ("array used as initializer").
    Parameters parameters{std::to_string(value)};
    const auto result = co_await connection.query("SELECT $1::int * 2, pg_sleep(0.001)", std::move(parameters), 10s);
    if (result.int64(0, 0) == value * 2) ++correct;
  }
}

}  // namespace

TEST_CASE("pg settings: ${NAME} expands from the environment, $$ is a dollar") {
  const auto settings =
      parse_database_url("postgresql://app@${DB_HOST}:5432/jobs?application_name=a$$b", env_of({{"DB_HOST", "db.internal"}}));
  CHECK(settings.conninfo == "postgresql://app@db.internal:5432/jobs?application_name=a$b");
  CHECK_FALSE(settings.password_file);
}

TEST_CASE("pg settings: an unset variable is an error naming it, never quoting the URI") {
  CHECK_THROWS_WITH_AS(parse_database_url("postgresql://app:${DB_PASSWORD}@db/jobs", env_of({})),
                       doctest::Contains("environment variable DB_PASSWORD is not set"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_database_url("postgresql://app@db/jobs${", env_of({})), doctest::Contains("unterminated"),
                       std::invalid_argument);
}

TEST_CASE("pg settings: password_file leaves the URI and keeps the other parameters") {
  const auto settings = parse_database_url(
      "postgres://app@db/jobs?sslmode=require&password_file=/run/secrets/db%20pw&connect_timeout=5", env_of({}));
  CHECK(settings.conninfo == "postgres://app@db/jobs?sslmode=require&connect_timeout=5");
  REQUIRE(settings.password_file);
  CHECK(*settings.password_file == "/run/secrets/db pw");
  CHECK(parse_database_url("postgresql://db/jobs?password_file=/p", env_of({})).conninfo == "postgresql://db/jobs");
  CHECK_THROWS_AS(parse_database_url("postgresql://db/jobs?password_file=", env_of({})), std::invalid_argument);
}

TEST_CASE("pg settings: libpq's complaint about the URI is reported") {
  CHECK_THROWS_WITH_AS(parse_database_url("postgresql://db/jobs?no_such_option=1", env_of({})),
                       doctest::Contains("libpq rejects the URI: invalid URI query parameter: \"no_such_option\""),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_database_url("/var/lib/apsis/jobs.sqlite3", env_of({})),
                       doctest::Contains("postgresql://"), std::invalid_argument);
}

TEST_CASE("pg settings: redacted hides passwords in userinfo and parameters") {
  CHECK(redacted({"postgresql://app:s3cr@t@db:5432/jobs?password=other&sslmode=require", {}}) ==
        "postgresql://app:***@db:5432/jobs?password=***&sslmode=require");
  CHECK(redacted({"postgresql://app@db/jobs", {}}) == "postgresql://app@db/jobs");
  CHECK(redacted({"postgresql://app:pa?ss@db/jobs", {}}) == "postgresql://app:***@db/jobs");
  CHECK(redacted({"postgresql:///jobs?host=/tmp/x&user=postgres", {}}) == "postgresql:///jobs?host=/tmp/x&user=postgres");
}

TEST_CASE("pg settings: the password file's first line is the password") {
  TempDir dir;
  write_file(dir.path() / "pw", "s3cret\nignored\n");
  CHECK(read_password_file(dir.path() / "pw") == "s3cret");
  CHECK_THROWS_WITH(read_password_file(dir.path() / "missing"), doctest::Contains("missing"));
}

TEST_CASE("pg connect parameters: every resolved address gets its own host entry and port") {
  const auto lists = expand_hosts({{"db", {"10.0.0.1", "10.0.0.2"}}, {"/run/pg", {}}}, "5432,6432");
  CHECK(lists.host == "db,db,/run/pg");
  CHECK(lists.hostaddr == "10.0.0.1,10.0.0.2,");
  CHECK(lists.port == "5432,5432,6432");
  CHECK(expand_hosts({{"db", {"::1"}}}, "5433").port == "5433");
}

TEST_CASE("pg connect parameters: host names are resolved before libpq sees them, socket paths are not") {
  const auto tcp = run(prepare_connect(parse_database_url("postgresql://localhost:6543/jobs", env_of({}))));
  const auto addresses = split_list(tcp.get("hostaddr").value_or(""));
  REQUIRE_FALSE(addresses.empty());
  for (const auto& address : addresses) CHECK((address == "127.0.0.1" || address == "::1"));
  CHECK(split_list(*tcp.get("host")) == std::vector<std::string>(addresses.size(), "localhost"));
  CHECK(tcp.get("port") == "6543");
  CHECK(tcp.get("fallback_application_name") == "apsis-exportd");

  const auto socket = run(prepare_connect(parse_database_url("postgresql:///jobs?host=/run/postgresql", env_of({}))));
  CHECK(socket.get("host") == "/run/postgresql");
  CHECK_FALSE(socket.get("hostaddr"));
}

TEST_CASE("pg error: what is transient") {
  CHECK(is_transient(Error("x", "40001", false)));
  CHECK(is_transient(Error("x", "40P01", false)));
  CHECK(is_transient(Error("x", "55P03", false)));
  CHECK(Error("x", "57P01", false).connection_lost());
  CHECK(Error("x", "08006", false).connection_lost());
  CHECK(is_transient(Error("x", "", true)));
  CHECK_FALSE(is_transient(Error("x", "23505", false)));
  CHECK_FALSE(Error("x", "42P01", false).connection_lost());
}

TEST_CASE("pg run_to_completion returns the value and rethrows the exception") {
  asio::io_context io;
  CHECK(run_to_completion(io, []() -> asio::awaitable<int> { co_return 7; }()) == 7);
  CHECK_THROWS_WITH(run_to_completion(io, []() -> asio::awaitable<void> {
                      co_await apsis::sleep_for(apsis::Milliseconds(1));
                      throw std::runtime_error("boom");
                    }()),
                    "boom");
}

TEST_CASE("pg query: parameters, NULLs, integers and affected rows") {
  auto connection = connect_to_cluster();
  REQUIRE(connection.ok());
  const auto result = query(connection, "SELECT $1::int + 1 AS n, $2::text AS missing, 'x' AS t", {"41", std::nullopt});
  REQUIRE(result.rows() == 1);
  CHECK(result.columns() == 3);
  CHECK(result.int64(0, result.column("n")) == 42);
  CHECK(result.is_null(0, 1));
  CHECK_FALSE(result.optional_text(0, 1));
  CHECK_FALSE(result.optional_int64(0, 1));
  CHECK(result.text(0, 2) == "x");
  CHECK_THROWS_AS(result.int64(0, 2), std::invalid_argument);
  CHECK_THROWS_AS((void)result.text(1, 0), std::out_of_range);

  query(connection, "CREATE TEMP TABLE t (id bigint PRIMARY KEY, name text)");
  CHECK(query(connection, "INSERT INTO t VALUES (1, 'a'), (2, NULL), (3, $1)", {"it's \"quoted\""}).affected() == 3);
  CHECK(query(connection, "SELECT name FROM t WHERE id = 3").text(0, 0) == "it's \"quoted\"");
}

TEST_CASE("pg query: a server error carries its SQLSTATE and leaves the connection usable") {
  auto connection = connect_to_cluster();
  const auto missing = error_of(connection, "SELECT * FROM no_such_table");
  CHECK(missing.sqlstate() == "42P01");
  CHECK(std::string(missing.what()).find("no_such_table") != std::string::npos);
  CHECK_FALSE(missing.connection_lost());
  CHECK(connection.ok());

  query(connection, "CREATE TEMP TABLE u (id int PRIMARY KEY)");
  query(connection, "INSERT INTO u VALUES (1)");
  const auto duplicate = error_of(connection, "INSERT INTO u VALUES (1)");
  CHECK(duplicate.sqlstate() == "23505");
  CHECK(std::string(duplicate.what()).find("Key (id)=(1) already exists") != std::string::npos);
  CHECK_FALSE(is_transient(duplicate));
  CHECK(query(connection, "SELECT count(*) FROM u").int64(0, 0) == 1);
}

TEST_CASE("pg execute: a multi-statement script runs whole or not at all") {
  auto connection = connect_to_cluster();
  run(connection.execute("CREATE TEMP TABLE m (id int); INSERT INTO m VALUES (1); INSERT INTO m VALUES (2);", 5s));
  CHECK(query(connection, "SELECT count(*) FROM m").int64(0, 0) == 2);
  // One simple-query message is one implicit transaction: the failing third statement undoes the second.
  try {
    run(connection.execute("INSERT INTO m VALUES (3); SELECT 1/0; INSERT INTO m VALUES (4);", 5s));
    FAIL("the script did not fail");
  } catch (const Error& error) {
    CHECK(error.sqlstate() == "22012");
  }
  CHECK(connection.ok());
  CHECK(query(connection, "SELECT count(*) FROM m").int64(0, 0) == 2);
}

TEST_CASE("pg query: past its deadline a query is cancelled on the server and the connection given up") {
  auto connection = connect_to_cluster();
  const int pid = connection.backend_pid();
  const auto error = error_of(connection, "SELECT pg_sleep(10)", 200ms);
  CHECK(error.timed_out());
  CHECK(error.connection_lost());
  CHECK(std::string(error.what()).find("within 200 ms (cancelled)") != std::string::npos);
  CHECK_FALSE(connection.ok());
  CHECK_THROWS_AS(query(connection, "SELECT 1"), Error);
  // The cancel reached the server: the backend leaves pg_sleep (give it up to 5 s to notice).
  auto observer = connect_to_cluster();
  std::int64_t sleeping = 1;
  for (int attempt = 0; attempt < 50 && sleeping > 0; ++attempt) {
    sleeping = query(observer, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                     {std::to_string(pid)})
                   .int64(0, 0);
    if (sleeping > 0) run(apsis::sleep_for(apsis::Milliseconds(100)));
  }
  CHECK(sleeping == 0);
}

TEST_CASE("pg query: a cancelled coroutine leaves the connection given up and destructible") {
  using asio::experimental::awaitable_operators::operator||;
  auto connection = connect_to_cluster();
  const auto winner = run([&]() -> asio::awaitable<std::size_t> {
    const auto which = co_await (connection.query("SELECT pg_sleep(10)", {}, 30s) ||
                                 apsis::sleep_for(apsis::Milliseconds(100)));
    co_return which.index();
  }());
  CHECK(winner == 1);
  CHECK_FALSE(connection.ok());
  CHECK_THROWS_WITH_AS(query(connection, "SELECT 1"), doctest::Contains("broken"), Error);
}

TEST_CASE("pg connect: a socket directory without a server fails at once") {
  TempDir empty;
  const auto settings = parse_database_url("postgresql:///apsis?host=" + empty.path().string(), env_of({}));
  try {
    run(Connection::connect(settings, 2s));
    FAIL("connected to nothing");
  } catch (const Error& error) {
    CHECK(error.connection_lost());
    CHECK(is_transient(error));
    CHECK(std::string(error.what()).find(empty.path().string()) != std::string::npos);
  }
}

TEST_CASE("pg connect: a server that never answers fails at the deadline") {
  TempDir dir;
  asio::io_context io;
  // Accepts connections into its backlog and never speaks: libpq waits for the server's first byte.
  asio::local::stream_protocol::acceptor silent(io, asio::local::stream_protocol::endpoint((dir.path() / ".s.PGSQL.5432").string()));
  const auto settings = parse_database_url("postgresql:///apsis?host=" + dir.path().string(), env_of({}));
  try {
    run_to_completion(io, Connection::connect(settings, 300ms));
    FAIL("connected to a silent socket");
  } catch (const Error& error) {
    CHECK(error.timed_out());
    CHECK(error.connection_lost());
    CHECK(std::string(error.what()).find("no answer within 300 ms") != std::string::npos);
  }
}

TEST_CASE("pg connect: a missing password file is named") {
  auto settings = cluster_settings();
  settings.password_file = "/nonexistent/apsis-db-password";
  CHECK_THROWS_WITH_AS(run(Connection::connect(settings, 5s)), doctest::Contains("/nonexistent/apsis-db-password"), Error);
}

TEST_CASE("pg query: a backend terminated by the server surfaces as connection_lost") {
  auto victim = connect_to_cluster();
  auto admin = connect_to_cluster();
  CHECK(query(admin, "SELECT pg_terminate_backend($1)", {std::to_string(victim.backend_pid())}).text(0, 0) == "t");
  try {
    query(victim, "SELECT 1");
    FAIL("a terminated backend answered");
  } catch (const Error& error) {
    CHECK(error.connection_lost());
    CHECK(is_transient(error));
  }
  CHECK_FALSE(victim.ok());
  CHECK(admin.ok());
}

TEST_CASE("pg query: many connections query in parallel on one io_context") {
  constexpr int connections = 20;
  constexpr int queries_each = 25;
  asio::io_context io;
  const auto settings = cluster_settings();
  int correct = 0;
  std::vector<std::string> failures;
  for (int c = 0; c < connections; ++c)
    asio::co_spawn(io, doubling_queries(settings, c * 1000, queries_each, correct),
        [&](std::exception_ptr failure) {
          if (failure) failures.push_back(apsis::describe(failure));
        });
  const auto start = std::chrono::steady_clock::now();
  io.run();
  const auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  MESSAGE(connections << " connections x " << queries_each << " queries (1 ms server sleep each): " << elapsed.count()
                      << " ms");
  CHECK(failures.empty());
  CHECK(correct == connections * queries_each);
}

TEST_CASE("pg cluster outage: queries fail while the server is down and work after it returns") {
  auto& cluster = TestCluster::shared();
  auto connection = connect_to_cluster();
  cluster.stop();
  const auto during = error_of(connection, "SELECT 1");
  CHECK(during.connection_lost());
  CHECK_THROWS_AS(connect_to_cluster(), Error);
  cluster.start();
  auto again = connect_to_cluster();
  CHECK(query(again, "SELECT 1").int64(0, 0) == 1);
}

TEST_CASE("pg timing: connect and round trip on the Unix socket" * doctest::skip()) {
  using Clock = std::chrono::steady_clock;
  const auto settings = cluster_settings();
  constexpr int connects = 50;
  const auto connect_start = Clock::now();
  for (int i = 0; i < connects; ++i) connect_to_cluster();
  const auto connect_us = std::chrono::duration<double, std::micro>(Clock::now() - connect_start).count() / connects;
  auto connection = connect_to_cluster();
  asio::io_context io;
  constexpr int round_trips = 5000;
  const auto query_start = Clock::now();
  run_to_completion(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < round_trips; ++i) {
      Parameters one{"1"};
      co_await connection.query("SELECT $1::int", std::move(one), 5s);
    }
  }());
  const auto query_us = std::chrono::duration<double, std::micro>(Clock::now() - query_start).count() / round_trips;
  std::printf("pg timing: connect %.0f us (mean of %d), SELECT $1 round trip %.1f us (mean of %d)\n", connect_us,
              connects, query_us, round_trips);
}
