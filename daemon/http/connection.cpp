#include "http/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "http/deadline.hpp"

namespace apsis::http {
namespace {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

void throw_on(const error_code& ec, const std::string& step) {
  if (ec) throw NetworkError(ec, step);
}

asio::awaitable<tcp::resolver::results_type> resolve(const asio::any_io_executor& ex, const Url& url,
                                                     Milliseconds timeout) {
  // The resolver lives until its handler runs, however long after our deadline that is.
  auto resolver = std::make_shared<tcp::resolver>(ex);
  co_return co_await await_within<tcp::resolver::results_type>(timeout, "resolving " + url.host, [&](auto done) {
    resolver->async_resolve(url.host, url.port,
                            [resolver, done](error_code ec, tcp::resolver::results_type endpoints) {
                              done(ec, std::move(endpoints));
                            });
  });
}

asio::awaitable<void> handshake(Connection::Tls& tls, const Url& url, Milliseconds timeout) {
  // SNI carries host names only (RFC 6066); the certificate is checked against the host either way.
  if (!is_ip_literal(url.host) && !SSL_set_tlsext_host_name(tls.native_handle(), url.host.c_str()))
    throw NetworkError(error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()),
                       "setting TLS server name");
  tls.set_verify_callback(asio::ssl::host_name_verification(url.host));
  beast::get_lowest_layer(tls).expires_after(timeout);
  auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kTuple);
  throw_on(ec, "TLS handshake with " + url.origin());
}

std::unique_ptr<asio::ssl::context> tls_context(const std::optional<std::filesystem::path>& ca_file) {
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  tls->set_verify_mode(asio::ssl::verify_peer);
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  if (ca_file)
    tls->load_verify_file(ca_file->string());
  else
    tls->set_default_verify_paths();
  return tls;
}

}  // namespace

Connection::Connection(asio::any_io_executor ex, asio::ssl::context* tls)
    : stream_(tls ? std::variant<Plain, Tls>(std::in_place_type<Tls>, ex, *tls)
                  : std::variant<Plain, Tls>(std::in_place_type<Plain>, ex)) {}

beast::tcp_stream& Connection::socket() {
  return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, stream_);
}

asio::awaitable<void> Connection::open(const Url& url, Milliseconds timeout) {
  const auto endpoints = co_await resolve(socket().get_executor(), url, timeout);
  socket().expires_after(timeout);
  auto [connect_ec, endpoint] = co_await socket().async_connect(endpoints, kTuple);
  if (connect_ec == asio::error::operation_aborted && !socket().socket().is_open() && !endpoints.empty())
    connect_ec = why_socket_cannot_open(endpoints.begin()->endpoint().protocol());
  throw_on(connect_ec, "connecting to " + url.origin());
  if (auto* tls = std::get_if<Tls>(&stream_)) co_await handshake(*tls, url, timeout);
}

asio::awaitable<std::size_t> Connection::write(beast_http::request<beast_http::string_body>& request,
                                               Milliseconds timeout, error_code& failure) {
  socket().expires_after(timeout);
  auto [ec, n] =
      co_await std::visit([&](auto& s) { return beast_http::async_write(s, request, kTuple); }, stream_);
  failure = ec;
  co_return n;
}

asio::awaitable<void> Connection::read_header(ResponseParser& parser, Milliseconds timeout) {
  socket().expires_after(timeout);
  auto [ec, n] = co_await std::visit(
      [&](auto& s) { return beast_http::async_read_header(s, buffer_, parser, kTuple); }, stream_);
  throw_on(ec, "reading response header");
}

asio::awaitable<error_code> Connection::read_body(ResponseParser& parser, Milliseconds timeout) {
  socket().expires_after(timeout);
  auto [ec, n] =
      co_await std::visit([&](auto& s) { return beast_http::async_read(s, buffer_, parser, kTuple); }, stream_);
  co_return ec == beast_http::error::need_buffer ? error_code() : ec;
}

// Asio's range connect reports a socket it could not even open (EMFILE, ENOBUFS) as "aborted",
// which reads like our own shutdown; open one here to learn the real, retryable reason. If that
// one opens, the shortage has just passed, and it was almost surely of file descriptors.
error_code Connection::why_socket_cannot_open(const tcp& protocol) {
  error_code ec;
  socket().socket().open(protocol, ec);
  if (ec) return ec;
  socket().socket().close(ec);
  return asio::error::no_descriptors;
}

ConnectionPool::ConnectionPool(asio::any_io_executor loop, const Client::Options& options)
    : executor(std::move(loop)),
      tls(tls_context(options.ca_file)),
      per_origin(static_cast<std::size_t>(std::max(0, options.max_connections_per_origin))) {}

OriginConnections& ConnectionPool::origin(const std::string& name) {
  auto& entry = origins[name];
  if (!entry) entry = std::make_unique<OriginConnections>(per_origin);
  return *entry;
}

asio::awaitable<std::unique_ptr<Connection>> ConnectionPool::acquire(const Url& url, bool may_reuse, bool& reused,
                                                                     Milliseconds timeout) {
  auto& pool = origin(url.origin());
  reused = false;
  if (!pool.idle.empty() && may_reuse) {
    auto connection = std::move(pool.idle.back());
    pool.idle.pop_back();
    reused = true;
    ++stats.reused;
    co_return connection;
  }
  // A request that must not reuse one leaves the idle ones alone (other accounts' polls reuse
  // them), unless the origin is full: then the oldest idle one makes room.
  if (!pool.idle.empty() && per_origin != 0 && pool.slots.in_use() >= per_origin)
    pool.idle.erase(pool.idle.begin());
  auto permit = co_await pool.slots.acquire();
  auto connection = std::make_unique<Connection>(executor, url.is_tls() ? tls.get() : nullptr);
  connection->permit = std::move(permit);
  ++stats.opened;
  co_await connection->open(url, timeout);
  co_return connection;
}

void ConnectionPool::release(const std::string& name, std::unique_ptr<Connection> connection) {
  auto& pool = origin(name);
  // Someone waits for a slot on this origin: closing this one hands its slot over.
  if (pool.slots.waiting() > 0) return;
  pool.idle.push_back(std::move(connection));
}

}  // namespace apsis::http
