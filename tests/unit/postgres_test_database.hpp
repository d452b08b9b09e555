// A fresh empty database on the test cluster (tests/pg/test_cluster.hpp) per test case, and plain SQL
// on it from the side, as an operator's psql would.
#pragma once

#include <atomic>
#include <optional>
#include <string>

#include "pg/connection.hpp"
#include "pg/run_to_completion.hpp"
#include "pg/settings.hpp"
#include "test_cluster.hpp"

namespace apsis::testing {

class PostgresTestDatabase {
 public:
  PostgresTestDatabase() : url_(TestCluster::shared().create_database(next_name())) {}

  const std::string& url() const { return url_; }
  pg::ConnectionSettings settings() const {
    return pg::parse_database_url(url_, [](const std::string&) -> std::optional<std::string> { return std::nullopt; });
  }

  // Runs one statement on a connection of its own; returns the first column of the first row ("" if none).
  std::string sql(const std::string& statement) const {
    boost::asio::io_context io;
    return pg::run_to_completion(io, run(settings(), statement));
  }

 private:
  static std::string next_name() {
    static std::atomic<int> counter{0};
    return "t_" + std::to_string(++counter);
  }
  static boost::asio::awaitable<std::string> run(pg::ConnectionSettings settings, std::string statement) {
    auto connection = co_await pg::Connection::connect(std::move(settings), std::chrono::seconds(10));
    auto result = co_await connection.query(statement, {}, std::chrono::seconds(10));
    co_return result.rows() > 0 && result.columns() > 0 ? std::string(result.text(0, 0)) : std::string();
  }

  std::string url_;
};

}  // namespace apsis::testing
