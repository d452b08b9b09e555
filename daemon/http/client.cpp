#include "http/client.hpp"

#include "http/deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <memory>
#include <variant>
#include <vector>

namespace apsis::http {
namespace {

namespace beast = boost::beast;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr std::size_t kMaxCollectedBody = 1 << 20;  // error/JSON answers; files stream instead
constexpr int kMaxInterimAnswers = 8;                // 1xx answers skipped before the real one
constexpr auto kTuple = asio::as_tuple(use_awaitable);

std::string host_header(const Url& url) {
  const bool default_port = (url.is_tls() && url.port == "443") || (!url.is_tls() && url.port == "80");
  const bool v6 = url.host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + url.host + "]" : url.host;
  return default_port ? host : host + ":" + url.port;
}

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

}  // namespace

// One open connection to one origin, plain or TLS.
class Connection {
 public:
  using Plain = beast::tcp_stream;
  using Tls = beast::ssl_stream<beast::tcp_stream>;

  Connection(asio::any_io_executor ex, asio::ssl::context* tls)
      : stream_(tls ? std::variant<Plain, Tls>(std::in_place_type<Tls>, ex, *tls)
                    : std::variant<Plain, Tls>(std::in_place_type<Plain>, ex)) {}

  AsyncSemaphore::Permit permit;  // this connection's place under max_connections

  beast::tcp_stream& socket() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, stream_);
  }

  asio::awaitable<void> open(const Url& url, Milliseconds timeout) {
    const auto endpoints = co_await resolve(socket().get_executor(), url, timeout);
    socket().expires_after(timeout);
    auto [connect_ec, endpoint] = co_await socket().async_connect(endpoints, kTuple);
    if (connect_ec == asio::error::operation_aborted && !socket().socket().is_open() && !endpoints.empty())
      connect_ec = why_socket_cannot_open(endpoints.begin()->endpoint().protocol());
    throw_on(connect_ec, "connecting to " + url.origin());
    if (auto* tls = std::get_if<Tls>(&stream_)) co_await handshake(*tls, url, timeout);
  }

  // Returns how many bytes went out, even on failure (then in *failure): the caller must know
  // whether any of the request may have reached the server.
  asio::awaitable<std::size_t> write(beast_http::request<beast_http::string_body>& request, Milliseconds timeout,
                                     error_code& failure) {
    socket().expires_after(timeout);
    auto [ec, n] = co_await std::visit(
        [&](auto& s) { return beast_http::async_write(s, request, kTuple); }, stream_);
    failure = ec;
    co_return n;
  }

  asio::awaitable<void> read_header(beast_http::response_parser<beast_http::buffer_body>& parser,
                                    Milliseconds timeout) {
    socket().expires_after(timeout);
    auto [ec, n] = co_await std::visit(
        [&](auto& s) { return beast_http::async_read_header(s, buffer_, parser, kTuple); }, stream_);
    throw_on(ec, "reading response header");
  }

  // Fills the parser's current body buffer; returns how many body bytes arrived.
  asio::awaitable<void> read_body(beast_http::response_parser<beast_http::buffer_body>& parser, Milliseconds timeout) {
    socket().expires_after(timeout);
    auto [ec, n] = co_await std::visit(
        [&](auto& s) { return beast_http::async_read(s, buffer_, parser, kTuple); }, stream_);
    if (ec == beast_http::error::need_buffer) co_return;
    throw_on(ec, "reading response body");
  }

 private:
  static asio::awaitable<void> handshake(Tls& tls, const Url& url, Milliseconds timeout) {
    // SNI carries host names only (RFC 6066); the certificate is checked against the host either way.
    if (!is_ip_literal(url.host) && !SSL_set_tlsext_host_name(tls.native_handle(), url.host.c_str()))
      throw NetworkError(error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()),
                         "setting TLS server name");
    tls.set_verify_callback(asio::ssl::host_name_verification(url.host));
    beast::get_lowest_layer(tls).expires_after(timeout);
    auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kTuple);
    throw_on(ec, "TLS handshake with " + url.origin());
  }

  // Asio's range connect reports a socket it could not even open (EMFILE, ENOBUFS) as "aborted",
  // which reads like our own shutdown; open one here to learn the real, retryable reason. If that
  // one opens, the shortage has just passed, and it was almost surely of file descriptors.
  error_code why_socket_cannot_open(const tcp& protocol) {
    error_code ec;
    socket().socket().open(protocol, ec);
    if (ec) return ec;
    socket().socket().close(ec);
    return asio::error::no_descriptors;
  }

  std::variant<Plain, Tls> stream_;
  beast::flat_buffer buffer_;
};

namespace {

beast_http::request<beast_http::string_body> build_request(const Request& request, const std::string& user_agent) {
  beast_http::request<beast_http::string_body> out{request.method, request.url.target, 11};
  out.set(beast_http::field::host, host_header(request.url));
  out.set(beast_http::field::user_agent, user_agent);
  for (const auto& [name, value] : request.headers) out.set(name, value);
  out.body() = request.body;
  out.prepare_payload();
  out.keep_alive(true);
  return out;
}

// Big reads for files (fewer syscalls), small ones for JSON and error answers.
std::size_t read_chunk_size(bool streamed, boost::optional<std::uint64_t> content_length) {
  const std::uint64_t cap = streamed ? 256 * 1024 : 16 * 1024;
  return static_cast<std::size_t>(content_length ? std::clamp<std::uint64_t>(*content_length, 1024, cap) : cap);
}

struct Exchange {
  Response response;
  bool keep_alive{false};
  bool request_written{false};  // some bytes of the request went out
  bool header_received{false};
};

using Parser = beast_http::response_parser<beast_http::buffer_body>;

// Reads the final answer's header, skipping interim 1xx answers (RFC 9110 15.2): a 100 Continue
// is not the answer. 101 is final (no upgrade is ever asked for, so it ends up an unknown status).
asio::awaitable<void> read_final_header(Connection& connection, std::optional<Parser>& parser, Milliseconds timeout) {
  for (int interim = 0;; ++interim) {
    parser.emplace();
    parser->body_limit(boost::none);  // files are unbounded; collected bodies are capped below
    co_await connection.read_header(*parser, timeout);
    const unsigned status = parser->get().result_int();
    if (status < 100 || status >= 200 || status == 101) co_return;
    if (interim == kMaxInterimAnswers)
      throw NetworkError(beast_http::error::bad_status, "reading response header (only interim 1xx answers)");
  }
}

asio::awaitable<void> exchange(Connection& connection, const Request& request, BodyTarget* target,
                               const Client::Options& options, Exchange& result) {
  auto message = build_request(request, options.user_agent);
  error_code write_failure;
  result.request_written = co_await connection.write(message, options.timeout, write_failure) > 0;
  throw_on(write_failure, "sending request");

  std::optional<Parser> head;
  co_await read_final_header(connection, head, options.timeout);
  Parser& parser = *head;
  result.header_received = true;

  Response& response = result.response;
  response.status = parser.get().result_int();
  response.headers = static_cast<const beast_http::fields&>(parser.get());
  response.streamed = target != nullptr && response.status == 200;
  response.end_framed = parser.content_length().has_value() || parser.chunked();
  if (response.streamed) target->begin(response);

  // Sized to the body when its length is known: thousands of small answers and files in flight
  // must not each hold a big buffer. Not zero-filled: the socket overwrites it anyway.
  const std::size_t chunk_size = read_chunk_size(response.streamed, parser.content_length());
  const auto chunk = std::make_unique_for_overwrite<char[]>(chunk_size);
  while (!parser.is_done()) {
    parser.get().body().data = chunk.get();
    parser.get().body().size = chunk_size;
    co_await connection.read_body(parser, options.timeout);
    const std::size_t got = chunk_size - parser.get().body().size;
    response.body_bytes += got;
    if (response.streamed)
      co_await target->data(std::span<const char>(chunk.get(), got));
    else if (response.body.size() < kMaxCollectedBody)
      response.body.append(chunk.get(), std::min(got, kMaxCollectedBody - response.body.size()));
  }
  result.keep_alive = parser.keep_alive();
}

}  // namespace

Client::Client(asio::any_io_executor executor, Options options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      connections_(static_cast<std::size_t>(std::max(0, options_.max_connections))) {
  tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  tls_->set_verify_mode(asio::ssl::verify_peer);
  tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  if (options_.ca_file)
    tls_->load_verify_file(options_.ca_file->string());
  else
    tls_->set_default_verify_paths();
}

Client::~Client() = default;

asio::awaitable<std::unique_ptr<Connection>> Client::acquire(const Url& url, bool may_reuse, bool& reused) {
  auto& pool = idle_[url.origin()];
  if (!pool.empty()) {
    auto connection = std::move(pool.back());
    pool.pop_back();
    if (may_reuse) {
      reused = true;
      co_return connection;
    }
    // Closed here, which also frees its place under max_connections for the fresh one.
  }
  reused = false;
  auto permit = co_await connections_.acquire();
  auto connection = std::make_unique<Connection>(executor_, url.is_tls() ? tls_.get() : nullptr);
  connection->permit = std::move(permit);
  co_await connection->open(url, options_.timeout);
  co_return connection;
}

void Client::release(const Url& url, std::unique_ptr<Connection> connection) {
  // Someone waits for a connection slot: closing this one hands it over (waiters open their own,
  // possibly to another origin); otherwise keep it for reuse.
  if (connections_.waiting() > 0) return;
  idle_[url.origin()].push_back(std::move(connection));
}

asio::awaitable<Response> Client::send(const Request& request, BodyTarget* target) {
  // A POST that was written whole may have arrived and been acted on (APSIS creates an export per
  // submit), however the connection ends: it never goes on a reused connection, where a server's
  // idle close would tempt a second try.
  const bool idempotent = request.method == beast_http::verb::get || request.method == beast_http::verb::head;
  for (;;) {
    bool reused = false;
    auto connection = co_await acquire(request.url, idempotent, reused);
    Exchange result;
    try {
      co_await exchange(*connection, request, target, options_, result);
    } catch (const NetworkError& error) {
      // The server may have closed an idle keep-alive connection just before we used it: that
      // says nothing about the request, so a GET is tried once more on a fresh connection.
      if (reused && !result.header_received && !is_cancellation(error.code())) continue;
      if (result.request_written) throw error.after_sending();
      throw;
    }
    if (result.keep_alive) release(request.url, std::move(connection));
    co_return std::move(result.response);
  }
}

bool is_cancellation(const error_code& ec) { return ec == asio::error::operation_aborted; }

bool is_transient_network_error(const error_code& ec) {
  // Certificate and protocol failures will not heal by retrying; a TLS stream cut short
  // (stream_truncated, its own category) is an ordinary cut connection.
  return ec.category() != asio::error::get_ssl_category();
}

}  // namespace apsis::http
