#include "pg/connection.hpp"

#include "pg/connect_parameters.hpp"
#include "pg/error.hpp"
#include "pg/socket_wait.hpp"

#include <boost/asio/this_coro.hpp>

#include <libpq-fe.h>

#include <array>

namespace apsis::pg {
namespace {

namespace asio = boost::asio;

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string field(const PGresult* result, int code) {
  const char* value = PQresultErrorField(result, code);
  return value ? value : "";
}

// The server's words: the primary message and, when there is one, its detail ("Key (id)=(1) already exists.").
std::string server_message(const PGresult* result) {
  std::string message = field(result, PG_DIAG_MESSAGE_PRIMARY);
  if (message.empty()) message = trimmed(PQresultErrorMessage(result));
  const std::string detail = field(result, PG_DIAG_MESSAGE_DETAIL);
  return detail.empty() ? message : message + " (" + detail + ")";
}

bool is_failure(ExecStatusType status) {
  return status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY;
}

asio::awaitable<Deadline> start_deadline(std::chrono::milliseconds limit) {
  Deadline deadline{asio::steady_timer(co_await asio::this_coro::executor), limit};
  deadline.timer.expires_after(limit);
  co_return deadline;
}

// libpq prints server notices (NOTICE, WARNING) to stderr by default: in the daemon that is the
// journal, unformatted. They are not errors (an error arrives as a result and is thrown), so they go.
void ignore_notice(void*, const char*) {}

}  // namespace

// Marks the connection broken unless the operation reached its end: an exception or the coroutine's
// destruction (cancellation) in between leaves libpq mid-protocol, where no next query may start.
class Connection::InFlight {
 public:
  explicit InFlight(Connection& connection) : connection_(connection) {}
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ~InFlight() {
    if (!finished_) connection_.broken_ = true;
  }
  void finished() { finished_ = true; }

 private:
  Connection& connection_;
  bool finished_ = false;
};

asio::awaitable<Connection> Connection::connect(ConnectionSettings settings, std::chrono::milliseconds timeout) {
  auto deadline = co_await start_deadline(timeout);
  auto parameters = co_await prepare_connect(settings);
  Connection connection(PQconnectStartParams(parameters.keywords(), parameters.values(), 0));
  co_await connection.finish_connect(deadline);
  co_return connection;
}

asio::awaitable<void> Connection::finish_connect(Deadline& deadline) {
  if (!connection_) throw Error("cannot connect to the database: libpq is out of memory", "", true);
  InFlight in_flight(*this);
  PQsetNoticeProcessor(connection_, ignore_notice, nullptr);
  if (PQstatus(connection_) == CONNECTION_BAD)
    throw Error("cannot connect to the database: " + libpq_message(), "", true);
  // libpq's protocol: before the first PQconnectPoll, behave as if it had asked for writability.
  auto status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED)
      throw Error("cannot connect to the database: " + libpq_message(), "", true);
    const auto want = status == PGRES_POLLING_READING ? Want::read : Want::write;
    if (co_await wait_socket(PQsocket(connection_), want, deadline) == Ready::timed_out)
      throw Error("cannot connect to the database: no answer within " + std::to_string(deadline.limit.count()) + " ms",
                  "", true, true);
    status = PQconnectPoll(connection_);
  }
  // Sending must not block either: a large query waits for the socket in flush() instead.
  if (PQsetnonblocking(connection_, 1) != 0)
    throw Error("cannot switch the database connection to non-blocking: " + libpq_message(), "", true);
  in_flight.finished();
}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (connection_) PQfinish(connection_);
    connection_ = std::exchange(other.connection_, nullptr);
    broken_ = std::exchange(other.broken_, true);
  }
  return *this;
}

Connection::~Connection() {
  if (connection_) PQfinish(connection_);
}

bool Connection::ok() const { return connection_ && !broken_ && PQstatus(connection_) == CONNECTION_OK; }

int Connection::backend_pid() const { return connection_ ? PQbackendPID(connection_) : 0; }

std::string Connection::libpq_message() const {
  return connection_ ? trimmed(PQerrorMessage(connection_)) : "no connection";
}

void Connection::check_usable() const {
  if (!ok()) throw Error("the database connection is broken (an earlier operation failed or was interrupted)", "", true);
}

void Connection::fail_sending() {
  broken_ = PQstatus(connection_) != CONNECTION_OK;
  throw Error("cannot send the query to the database: " + libpq_message(), "", broken_);
}

asio::awaitable<Result> Connection::query(std::string_view sql, Parameters parameters,
                                          std::chrono::milliseconds timeout) {
  check_usable();
  InFlight in_flight(*this);
  std::vector<const char*> values;
  for (const auto& parameter : parameters) values.push_back(parameter ? parameter->c_str() : nullptr);
  const std::string statement(sql);  // libpq wants a terminated string
  if (!PQsendQueryParams(connection_, statement.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                         nullptr, nullptr, 0))
    fail_sending();
  auto deadline = co_await start_deadline(timeout);
  co_await flush(deadline);
  auto [result, failure] = co_await collect(deadline);
  in_flight.finished();  // a server error ends the exchange too: the connection stays usable
  if (failure) throw *failure;
  co_return std::move(result);
}

asio::awaitable<void> Connection::execute(std::string_view sql, std::chrono::milliseconds timeout) {
  check_usable();
  InFlight in_flight(*this);
  const std::string script(sql);
  if (!PQsendQuery(connection_, script.c_str())) fail_sending();
  auto deadline = co_await start_deadline(timeout);
  co_await flush(deadline);
  const auto outcome = co_await collect(deadline);
  in_flight.finished();
  if (outcome.failure) throw *outcome.failure;
}

// libpq's rule for a non-blocking send: while PQflush has data left, wait for either direction and
// read what came (the server may be answering while we still send) before flushing again.
asio::awaitable<void> Connection::flush(Deadline& deadline) {
  for (;;) {
    const int pending = PQflush(connection_);
    if (pending == 0) co_return;
    if (pending < 0) fail_sending();
    if (co_await wait_socket(PQsocket(connection_), Want::read_or_write, deadline) == Ready::timed_out)
      give_up_after_timeout(deadline);
    if (!PQconsumeInput(connection_)) fail_sending();
  }
}

// Reads every result of the statement(s) until libpq says there are no more: only then is the
// connection ready for the next query. An error result is thrown after that, so a failed statement
// (a unique violation) leaves a usable connection. Only a lost connection or the deadline throw here.
asio::awaitable<Connection::Outcome> Connection::collect(Deadline& deadline) {
  Result last;
  std::optional<Error> failure;
  for (;;) {
    while (PQisBusy(connection_)) {
      if (co_await wait_socket(PQsocket(connection_), Want::read, deadline) == Ready::timed_out)
        give_up_after_timeout(deadline);
      if (!PQconsumeInput(connection_)) break;  // the connection failed: PQgetResult reports it
    }
    Result next(PQgetResult(connection_));
    if (!next.get()) break;
    const auto status = PQresultStatus(next.get());
    if (status == PGRES_COPY_OUT || status == PGRES_COPY_IN || status == PGRES_COPY_BOTH)
      throw Error("COPY is not supported on this connection", "", true);
    if (!is_failure(status)) {
      last = std::move(next);
    } else if (!failure) {
      const bool lost = PQstatus(connection_) != CONNECTION_OK;
      failure.emplace(server_message(next.get()), field(next.get(), PG_DIAG_SQLSTATE), lost);
    }
    if (PQstatus(connection_) != CONNECTION_OK) break;
  }
  if (PQstatus(connection_) != CONNECTION_OK) {
    broken_ = true;
    throw failure ? *failure : Error("the database connection was lost: " + libpq_message(), "", true);
  }
  if (failure && failure->connection_lost()) {
    broken_ = true;
    throw *failure;
  }
  co_return Outcome{std::move(last), std::move(failure)};
}

// Asks the server to stop the statement, then gives the connection up rather than waiting for the
// server to answer the cancel: the caller's deadline has passed. PQcancel blocks while it opens a
// second connection to the server and sends the request (PostgreSQL 15's libpq has no asynchronous
// cancel; 17's PQcancelStart would make this non-blocking): one round trip on a Unix socket or to a
// reachable server, but up to the TCP connect timeout for one that vanished.
void Connection::give_up_after_timeout(const Deadline& deadline) {
  broken_ = true;
  std::string outcome = "cancelled";
  if (PGcancel* cancel = PQgetCancel(connection_)) {
    std::array<char, 256> error{};
    if (!PQcancel(cancel, error.data(), static_cast<int>(error.size())))
      outcome = std::string("cancel failed: ") + error.data();
    PQfreeCancel(cancel);
  }
  throw Error("the database did not answer within " + std::to_string(deadline.limit.count()) + " ms (" +
                  trimmed(outcome) + ")",
              "", true, true);
}

}  // namespace apsis::pg
