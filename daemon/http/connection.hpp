// Inside http/: one open connection, and the pool of them behind a Client. Not for use elsewhere.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "http/client.hpp"
#include "util/async_semaphore.hpp"

namespace apsis::http {

using ResponseParser = beast_http::response_parser<beast_http::buffer_body>;

// One open connection to one origin, plain or TLS. Each step throws NetworkError naming it.
class Connection {
 public:
  using Plain = boost::beast::tcp_stream;
  using Tls = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  Connection(asio::any_io_executor ex, asio::ssl::context* tls);

  AsyncSemaphore::Permit permit;  // this connection's place under its origin's cap

  asio::awaitable<void> open(const Url& url, Milliseconds timeout);
  // Returns how many bytes went out, even on failure (then in *failure): the caller must know
  // whether any of the request may have reached the server.
  asio::awaitable<std::size_t> write(beast_http::request<beast_http::string_body>& request, Milliseconds timeout,
                                     boost::system::error_code& failure);
  asio::awaitable<void> read_header(ResponseParser& parser, Milliseconds timeout);
  // Fills the parser's current body buffer, as far as the bytes at hand go. Returns the error
  // instead of throwing it: the bytes that came before it are in the buffer all the same.
  asio::awaitable<boost::system::error_code> read_body(ResponseParser& parser, Milliseconds timeout);

 private:
  boost::beast::tcp_stream& socket();
  boost::system::error_code why_socket_cannot_open(const asio::ip::tcp& protocol);

  std::variant<Plain, Tls> stream_;
  boost::beast::flat_buffer buffer_;
};

// The connections of one origin: a cap on the open ones and the idle keep-alive ones.
struct OriginConnections {
  explicit OriginConnections(std::size_t cap) : slots(cap) {}
  AsyncSemaphore slots;
  std::vector<std::unique_ptr<Connection>> idle;  // the newest last; destroyed before `slots`
};

// Everything a Client's connections need, shared with the body readers that hold one.
struct ConnectionPool {
  ConnectionPool(asio::any_io_executor executor, const Client::Options& options);

  // An idle connection when `may_reuse` allows one (then `reused`), else a fresh one once the
  // origin has room.
  asio::awaitable<std::unique_ptr<Connection>> acquire(const Url& url, bool may_reuse, bool& reused,
                                                       Milliseconds timeout);
  // A connection the server keeps alive, its exchange complete.
  void release(const std::string& origin, std::unique_ptr<Connection> connection);
  OriginConnections& origin(const std::string& name);

  asio::any_io_executor executor;
  std::unique_ptr<asio::ssl::context> tls;  // declared before the connections, so it outlives them
  std::size_t per_origin;
  Client::Stats stats;
  std::map<std::string, std::unique_ptr<OriginConnections>> origins;  // one per API host: never pruned
};

}  // namespace apsis::http
