#include "admin/admin_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <list>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace apsis::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Request = http::request<http::empty_body>;
using Response = http::response<http::string_body>;
using Routes = std::map<std::string, AdminHandler>;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// Out of descriptors, accept fails at once until a connection closes: retry, but do not spin.
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

std::string describe(const tcp::endpoint& endpoint) {
  std::ostringstream out;
  out << endpoint;  // 127.0.0.1:9464, [::1]:9464
  return out.str();
}

Response text_response(http::status status, std::string body) {
  Response response{status, 11};
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.body() = std::move(body);
  return response;
}

std::string known_paths(const Routes& routes) {
  std::string paths;
  for (const auto& [path, handler] : routes) paths += (paths.empty() ? "" : " ") + path;
  return paths;
}

Response call_handler(const AdminHandler& handler, std::string& failure) {
  try {
    AdminResponse answer = handler();
    if (answer.status < 200 || answer.status > 599)
      throw std::logic_error("handler answered with invalid status " + std::to_string(answer.status));
    Response response{static_cast<http::status>(answer.status), 11};
    response.set(http::field::content_type,
                 answer.content_type.empty() ? "text/plain; charset=utf-8" : answer.content_type);
    response.body() = std::move(answer.body);
    return response;
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "unknown exception";
  }
  return text_response(http::status::internal_server_error, "internal error: " + failure + "\n");
}

// The request's answer: the whole of the server's policy, and no I/O. A failing handler's
// reason lands in `failure`.
Response answer(const Routes& routes, const Request& request, std::string& failure) {
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    auto response = text_response(http::status::method_not_allowed, "method not allowed: use GET or HEAD\n");
    response.set(http::field::allow, "GET, HEAD");
    return response;
  }
  const std::string_view target = request.target();
  const auto route = routes.find(std::string(target.substr(0, target.find('?'))));
  if (route == routes.end())
    return text_response(http::status::not_found, "not found; known paths: " + known_paths(routes) + "\n");
  return call_handler(route->second, failure);
}

// Headers every answer carries. A HEAD answer keeps the GET's Content-Length and drops the body.
void finish(Response& response, unsigned version, bool keep_alive, bool head) {
  response.version(version);
  response.keep_alive(keep_alive);
  response.set(http::field::cache_control, "no-store");
  response.prepare_payload();
  if (head) response.body().clear();
}

// The answer to a request that could not be read, if it deserves one: the client broke a limit
// or the protocol. Closed connections and timeouts get none.
std::optional<Response> refusal(const error_code& ec) {
  const bool parse_error = ec.category() == http::make_error_code(http::error::bad_target).category();
  if (!parse_error || ec == http::error::end_of_stream || ec == http::error::partial_message) return std::nullopt;
  if (ec == http::error::header_limit)
    return text_response(http::status::request_header_fields_too_large, "request header too large\n");
  if (ec == http::error::body_limit || ec == http::error::unexpected_body)
    return text_response(http::status::payload_too_large, "requests to this server carry no body\n");
  return text_response(http::status::bad_request, "bad request: " + ec.message() + "\n");
}

// A TLS client that closes without close_notify (most do) ends the stream truncated.
bool is_ordinary_end(const error_code& ec, bool got_some) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted ||
         ec == asio::ssl::error::stream_truncated ||
         (ec == beast::error::timeout && !got_some);  // an idle keep-alive connection
}

// The answer to a request the authentication refused.
Response auth_refusal(AuthVerdict verdict) {
  switch (verdict) {
    case AuthVerdict::throttled: {
      auto response = text_response(http::status::too_many_requests,
                                    "too many failed logins from this address; try again later\n");
      response.set(http::field::retry_after, "60");
      return response;
    }
    case AuthVerdict::busy: {
      auto response = text_response(http::status::service_unavailable, "too many logins being checked; retry\n");
      response.set(http::field::retry_after, "1");
      return response;
    }
    default: {
      auto response = text_response(http::status::unauthorized, "authentication required\n");
      response.set(http::field::www_authenticate, "Basic realm=\"apsis-exportd\", charset=\"UTF-8\"");
      return response;
    }
  }
}

}  // namespace

class AdminServer::State : public std::enable_shared_from_this<State> {
 public:
  State(asio::any_io_executor executor, Routes routes, Options options)
      : acceptor_(executor), retry_timer_(executor), routes_(std::move(routes)), options_(std::move(options)) {}

  void listen(const tcp::endpoint& endpoint);
  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  void start();
  void stop();
  void set_tls(std::shared_ptr<asio::ssl::context> tls) { tls_ = std::move(tls); }

 private:
  // One accepted connection's entry in open_, where stop() finds it; removed when its coroutine
  // ends. Holds the state alive for the coroutine.
  class OpenConnection {
   public:
    OpenConnection(std::shared_ptr<State> state, tcp::socket socket)
        : state_(std::move(state)), where_(state_->open_.emplace(state_->open_.end(), std::move(socket))) {}
    OpenConnection(OpenConnection&& other) noexcept
        : state_(std::move(other.state_)), where_(other.where_) {}
    OpenConnection& operator=(OpenConnection&&) = delete;
    ~OpenConnection() {
      if (state_) state_->open_.erase(where_);
    }
    State& state() const { return *state_; }
    beast::tcp_stream& stream() const { return *where_; }

   private:
    std::shared_ptr<State> state_;
    std::list<beast::tcp_stream>::iterator where_;
  };

  asio::awaitable<void> accept_loop();
  static asio::awaitable<void> serve(OpenConnection connection);
  template <typename Stream>
  asio::awaitable<void> serve_all(Stream& stream, beast::tcp_stream& tcp, const tcp::endpoint& remote);
  template <typename Stream>
  asio::awaitable<bool> serve_one(Stream& stream, beast::tcp_stream& tcp, beast::flat_buffer& buffer,
                                  const tcp::endpoint& remote, const std::string& peer);
  template <typename Stream>
  asio::awaitable<bool> send(Stream& stream, beast::tcp_stream& tcp, Response& response, const std::string& peer);
  void report(const std::string& message) const;
  std::function<void(std::exception_ptr)> report_escape(std::string what);

  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  const Routes routes_;
  const Options options_;
  std::shared_ptr<asio::ssl::context> tls_{options_.tls};
  std::list<beast::tcp_stream> open_;
  bool started_{false};
  bool stopped_{false};
  // Reported once each time they begin, not for every connection: a full descriptor table or a
  // flood of clients must not flood the log too.
  bool accept_failing_{false};
  bool refusing_{false};  // at the connection cap
};

void AdminServer::State::listen(const tcp::endpoint& endpoint) {
  error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);  // restart during TIME_WAIT
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::system_error(ec, "admin endpoint cannot listen on " + describe(endpoint));
}

void AdminServer::State::start() {
  if (started_ || stopped_) return;
  started_ = true;
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), report_escape("stopped accepting connections"));
}

void AdminServer::State::stop() {
  stopped_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  retry_timer_.cancel();
  for (auto& stream : open_) stream.close();
}

void AdminServer::State::report(const std::string& message) const {
  if (!stopped_ && options_.on_error) options_.on_error(message);
}

// co_spawn's completion handler: an exception that escaped a coroutine. Its copy of the state keeps
// the state alive while the coroutine runs.
std::function<void(std::exception_ptr)> AdminServer::State::report_escape(std::string what) {
  return [self = shared_from_this(), what = std::move(what)](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      self->report(what + ": " + e.what());
    } catch (...) {
      self->report(what + ": unknown exception");
    }
  };
}

asio::awaitable<void> AdminServer::State::accept_loop() {
  while (!stopped_) {
    auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
    if (stopped_) co_return;
    if (ec) {
      if (!accept_failing_) report("cannot accept connections: " + ec.message() + "; retrying");
      accept_failing_ = true;
      retry_timer_.expires_after(kAcceptRetryDelay);
      co_await retry_timer_.async_wait(kTuple);
      continue;
    }
    accept_failing_ = false;
    if (open_.size() >= options_.max_connections) {
      if (!refusing_) report(std::to_string(open_.size()) + " connections open; closing new ones until one ends");
      refusing_ = true;
      continue;  // the socket closes here
    }
    refusing_ = false;
    asio::co_spawn(acceptor_.get_executor(), serve(OpenConnection(shared_from_this(), std::move(socket))),
                   report_escape("connection failed"));
  }
}

asio::awaitable<void> AdminServer::State::serve(OpenConnection connection) {
  State& state = connection.state();
  beast::tcp_stream& stream = connection.stream();
  error_code ec;
  const auto remote = stream.socket().remote_endpoint(ec);
  const auto tls = state.tls_;
  if (!tls) {
    co_await state.serve_all(stream, stream, remote);
    if (!state.stopped_) stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    co_return;
  }
  asio::ssl::stream<beast::tcp_stream&> secure(stream, *tls);
  stream.expires_after(state.options_.handshake_timeout);
  // A failed handshake (plain HTTP, a port scanner, an old TLS version) is the client's problem and
  // not logged: a scan would flood the journal.
  auto [handshake_error] = co_await secure.async_handshake(asio::ssl::stream_base::server, kTuple);
  if (handshake_error || state.stopped_) co_return;
  co_await state.serve_all(secure, stream, remote);
  if (state.stopped_) co_return;
  stream.expires_after(state.options_.idle_timeout);
  co_await secure.async_shutdown(kTuple);  // the peer may not answer: its error is of no use
}

template <typename Stream>
asio::awaitable<void> AdminServer::State::serve_all(Stream& stream, beast::tcp_stream& tcp,
                                                    const tcp::endpoint& remote) {
  const std::string peer = describe(remote);
  beast::flat_buffer buffer;  // outlives one request: a pipelined next one may already be in it
  bool keep_open = !stopped_;
  while (keep_open) keep_open = co_await serve_one(stream, tcp, buffer, remote, peer);
}

// Reads one request and answers it; false when the connection is to close.
template <typename Stream>
asio::awaitable<bool> AdminServer::State::serve_one(Stream& stream, beast::tcp_stream& tcp,
                                                    beast::flat_buffer& buffer, const tcp::endpoint& remote,
                                                    const std::string& peer) {
  http::request_parser<http::empty_body> parser;
  parser.header_limit(options_.max_header_bytes);
  parser.body_limit(0);
  tcp.expires_after(options_.idle_timeout);
  auto [read_error, n] = co_await http::async_read(stream, buffer, parser, kTuple);
  if (stopped_) co_return false;
  if (read_error) {
    auto response = refusal(read_error);
    if (!is_ordinary_end(read_error, parser.got_some()))
      report("connection from " + peer + ": reading request: " + read_error.message());
    if (response) {
      finish(*response, 11, false, false);
      co_await send(stream, tcp, *response, peer);
    }
    co_return false;
  }
  const Request& request = parser.get();
  const bool head = request.method() == http::verb::head;
  if (options_.auth && options_.auth->enabled()) {
    std::optional<std::string> authorization;
    if (const auto field = request.find(http::field::authorization); field != request.end())
      authorization = std::string(field->value());
    // Even the paths' names are only for those who may read them.
    const auto verdict = co_await options_.auth->check(std::move(authorization), remote.address().to_string());
    if (stopped_) co_return false;
    if (verdict != AuthVerdict::allowed) {
      auto response = auth_refusal(verdict);
      finish(response, request.version(), request.keep_alive(), head);
      const bool sent = co_await send(stream, tcp, response, peer);
      co_return sent && response.keep_alive();
    }
  }
  std::string failure;
  auto response = answer(routes_, request, failure);
  if (!failure.empty()) report("handler for " + std::string(request.target()) + " failed: " + failure);
  if (stopped_) co_return false;  // the handler stopped the server
  finish(response, request.version(), request.keep_alive(), head);
  const bool sent = co_await send(stream, tcp, response, peer);
  co_return sent && response.keep_alive();
}

template <typename Stream>
asio::awaitable<bool> AdminServer::State::send(Stream& stream, beast::tcp_stream& tcp, Response& response,
                                               const std::string& peer) {
  tcp.expires_after(options_.idle_timeout);
  auto [ec, n] = co_await http::async_write(stream, response, kTuple);
  if (ec && !stopped_ && ec != asio::error::operation_aborted)
    report("connection from " + peer + ": sending response: " + ec.message());
  co_return !ec;
}

AdminServer::AdminServer(asio::any_io_executor executor, tcp::endpoint endpoint, Routes routes, Options options) {
  for (const auto& [path, handler] : routes)
    if (!path.starts_with('/') || !handler) throw std::invalid_argument("admin route '" + path + "' is invalid");
  state_ = std::make_shared<State>(std::move(executor), std::move(routes), std::move(options));
  state_->listen(endpoint);
  local_endpoint_ = state_->local_endpoint();
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() { state_->start(); }

void AdminServer::stop() { state_->stop(); }

void AdminServer::set_tls(std::shared_ptr<asio::ssl::context> tls) { state_->set_tls(std::move(tls)); }

}  // namespace apsis::admin
