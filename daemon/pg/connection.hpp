// One PostgreSQL session driven on the Asio loop: libpq's non-blocking API with its socket watched by
// the reactor, so the loop never blocks on the database (one stated exception: cancelling a query
// that ran past its deadline). Not thread-safe: one coroutine at a time uses a connection.
#pragma once

#include "pg/error.hpp"
#include "pg/result.hpp"
#include "pg/settings.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pg_conn;  // libpq's PGconn; its header stays private to this folder.

namespace apsis::pg {

struct Deadline;

// A query parameter in text format; nullopt is SQL NULL.
using Parameters = std::vector<std::optional<std::string>>;

class Connection {
 public:
  // Resolves host names with Asio (libpq would block the loop in getaddrinfo) and connects within
  // `timeout`. Resolution counts against it but cannot be cut short (getaddrinfo runs on Asio's
  // resolver thread, bounded by resolv.conf's own timeouts). Reads settings.password_file here, so a rotated
  // secret applies at the next connect. Throws Error (connection_lost) naming what failed.
  static boost::asio::awaitable<Connection> connect(ConnectionSettings settings, std::chrono::milliseconds timeout);

  // No connection: ok() is false. (co_spawn of a coroutine returning a Connection needs one.)
  Connection() = default;
  Connection(Connection&& other) noexcept
      : connection_(std::exchange(other.connection_, nullptr)), broken_(std::exchange(other.broken_, true)) {}
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // One statement with $1, $2... parameters, all in text format. Throws Error: the server's SQLSTATE
  // and message (the connection stays usable), or connection_lost (it does not). Past `timeout` the
  // query is cancelled on the server and the connection given up (Error::timed_out). A cancelled
  // coroutine leaves the connection given up too: it never serves a second query mid-answer.
  boost::asio::awaitable<Result> query(std::string_view sql, Parameters parameters, std::chrono::milliseconds timeout);

  // A script of several statements without parameters (a migration); stops at the first error,
  // which it throws like query().
  boost::asio::awaitable<void> execute(std::string_view sql, std::chrono::milliseconds timeout);

  // Usable for the next query: connected, and no failure or interruption since.
  bool ok() const;
  // The server process serving this session (pg_stat_activity.pid), for logs.
  int backend_pid() const;

 private:
  class InFlight;
  explicit Connection(pg_conn* connection) : connection_(connection) {}

  boost::asio::awaitable<void> finish_connect(Deadline& deadline);
  boost::asio::awaitable<void> flush(Deadline& deadline);
  // The last statement's rows, or the first statement's error (the server's; the connection is fine).
  struct Outcome {
    Result result;
    std::optional<Error> failure;
  };
  boost::asio::awaitable<Outcome> collect(Deadline& deadline);
  void check_usable() const;
  [[noreturn]] void fail_sending();
  [[noreturn]] void give_up_after_timeout(const Deadline& deadline);
  std::string libpq_message() const;

  pg_conn* connection_ = nullptr;
  bool broken_ = false;
};

}  // namespace apsis::pg
