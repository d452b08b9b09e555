// PostgresJobStore's connection: connected on demand, each statement run to its end on a private
// io_context, transactions tracked so a failed call can roll back. Private to store/.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>
#include <string_view>

#include "pg/connection.hpp"
#include "store/postgres_job_store.hpp"

namespace apsis::store {

class PostgresSession {
 public:
  // `read_only`: every connection, also one made again after a loss, refuses writes.
  PostgresSession(pg::ConnectionSettings settings, Milliseconds connect_timeout, Milliseconds statement_timeout,
                  bool read_only);

  // Throws pg::Error; after one that lost the connection the next statement connects again.
  pg::Result query(std::string_view sql, const SqlParams& params = {});
  // A script of several statements (a migration), no parameters.
  void execute(std::string_view sql);

  void begin();
  void commit();
  // Ends a transaction a failed call left open; a connection that cannot do that is dropped.
  void abandon_transaction() noexcept;
  bool in_transaction() const { return in_transaction_; }

 private:
  pg::Connection& connection();
  template <typename Run>
  decltype(auto) guarded(Run&& run);

  boost::asio::io_context io_;
  pg::ConnectionSettings settings_;
  Milliseconds connect_timeout_;
  Milliseconds statement_timeout_;
  bool read_only_;
  std::optional<pg::Connection> connection_;
  bool in_transaction_{false};
  // After a failed connect, calls fail at once until this time (doubling back-off up to 5 s): with the
  // database away, a call costs nothing instead of a connect timeout each.
  std::optional<std::chrono::steady_clock::time_point> next_connect_;
  Milliseconds connect_backoff_{0};
};

}  // namespace apsis::store
