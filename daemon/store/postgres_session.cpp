#include "store/postgres_session.hpp"

#include <algorithm>

#include "pg/error.hpp"
#include "pg/run_to_completion.hpp"

namespace apsis::store {
namespace {

constexpr Milliseconds kFirstConnectBackoff{250};
constexpr Milliseconds kMaxConnectBackoff{5000};

// run_to_completion hands its result through a std::future, which needs a default-constructible type.
boost::asio::awaitable<std::optional<pg::Connection>> connect(pg::ConnectionSettings settings,
                                                               Milliseconds timeout) {
  co_return co_await pg::Connection::connect(std::move(settings), timeout);
}

}  // namespace

PostgresSession::PostgresSession(pg::ConnectionSettings settings, Milliseconds connect_timeout,
                                 Milliseconds statement_timeout, bool read_only)
    : settings_(std::move(settings)),
      connect_timeout_(connect_timeout),
      statement_timeout_(statement_timeout),
      read_only_(read_only) {}

pg::Connection& PostgresSession::connection() {
  if (connection_ && !connection_->ok()) connection_.reset();  // given up after a timeout or failure
  if (!connection_) {
    const auto now = std::chrono::steady_clock::now();
    if (next_connect_ && now < *next_connect_)
      throw pg::Error("not connecting again for " +
                          std::to_string(std::chrono::ceil<Milliseconds>(*next_connect_ - now).count()) +
                          " ms after a failed connect",
                      "", /*connection_lost=*/true);
    try {
      auto connected = pg::run_to_completion(io_, connect(settings_, connect_timeout_));
      if (read_only_)
        pg::run_to_completion(io_, connected->query("SET default_transaction_read_only = on", {}, statement_timeout_));
      connection_ = std::move(connected);
      next_connect_.reset();
      connect_backoff_ = Milliseconds(0);
    } catch (const pg::Error&) {
      connect_backoff_ = std::clamp(connect_backoff_ * 2, kFirstConnectBackoff, kMaxConnectBackoff);
      next_connect_ = std::chrono::steady_clock::now() + connect_backoff_;
      throw;
    }
  }
  return *connection_;
}

// A lost connection takes its transaction with it; the next statement starts on a new one.
template <typename Run>
decltype(auto) PostgresSession::guarded(Run&& run) {
  try {
    return run();
  } catch (const pg::Error& e) {
    if (e.connection_lost() || !connection_ || !connection_->ok()) {
      connection_.reset();
      in_transaction_ = false;
    }
    throw;
  }
}

pg::Result PostgresSession::query(std::string_view sql, const SqlParams& params) {
  return guarded([&] { return pg::run_to_completion(io_, connection().query(sql, params, statement_timeout_)); });
}

void PostgresSession::execute(std::string_view sql) {
  guarded([&] { pg::run_to_completion(io_, connection().execute(sql, statement_timeout_)); });
}

void PostgresSession::begin() {
  query("BEGIN");
  in_transaction_ = true;
}

void PostgresSession::commit() {
  query("COMMIT");
  in_transaction_ = false;
}

void PostgresSession::abandon_transaction() noexcept {
  if (!in_transaction_) return;
  in_transaction_ = false;
  try {
    query("ROLLBACK");
  } catch (...) {
    connection_.reset();  // in an unknown state: the server rolls back when the connection closes
  }
}

}  // namespace apsis::store
