#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "admin/admin_server.hpp"
#include "admin/listen_address.hpp"
#include "admin/tls_context.hpp"
#include "temp_dir.hpp"
#include "test_certificate.hpp"

using namespace apsis::admin;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::use_awaitable;
using namespace std::chrono_literals;

namespace {

constexpr auto kTuple = asio::as_tuple(use_awaitable);
const tcp::endpoint kAnyLocalPort{asio::ip::address_v4::loopback(), 0};

std::string endpoint_text(const tcp::endpoint& endpoint) {
  return endpoint.address().to_string() + " " + std::to_string(endpoint.port());
}

std::string parse_error(std::string_view text) {
  std::string error;
  CHECK_FALSE(parse_listen_address(text, &error));
  return error;
}

// The client side of one connection, as plain Beast.
class Client {
 public:
  explicit Client(asio::any_io_executor executor) : stream_(std::move(executor)) {}

  asio::awaitable<void> connect(tcp::endpoint endpoint) { co_await stream_.async_connect(endpoint, use_awaitable); }

  asio::awaitable<http::response<http::string_body>> request(http::verb method, std::string target) {
    http::request<http::empty_body> request{method, target, 11};
    request.set(http::field::host, "127.0.0.1");
    co_await http::async_write(stream_, request, use_awaitable);
    co_return co_await response(method == http::verb::head);
  }

  asio::awaitable<void> send(std::string bytes) {
    co_await asio::async_write(stream_, asio::buffer(bytes), use_awaitable);
  }

  asio::awaitable<http::response<http::string_body>> raw(std::string bytes) {
    co_await send(std::move(bytes));
    co_return co_await response(false);
  }

  asio::awaitable<http::response<http::string_body>> response(bool head) {
    http::response_parser<http::string_body> parser;
    parser.skip(head);
    co_await http::async_read(stream_, buffer_, parser, use_awaitable);
    co_return parser.release();
  }

  // How the server ends the connection: end_of_stream when it closes it.
  asio::awaitable<boost::system::error_code> closed() {
    http::response_parser<http::string_body> parser;
    auto [ec, n] = co_await http::async_read(stream_, buffer_, parser, kTuple);
    co_return boost::system::error_code(ec);
  }

 private:
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

struct Fixture {
  explicit Fixture(AdminServerOptions options = {}) : server(make_server(std::move(options))) {}

  AdminServer make_server(AdminServerOptions options) {
    options.on_error = [this](std::string message) { errors.push_back(std::move(message)); };
    std::map<std::string, AdminHandler> routes{
        {"/metrics", [this] { return scrape(); }},
        {"/healthz", [] { return AdminResponse{200, "", "ok\n"}; }},
        {"/boom", []() -> AdminResponse { throw std::runtime_error("database is locked"); }},
        {"/odd", [] { return AdminResponse{42, "", ""}; }},
        {"/stop", [this] { server.stop(); return AdminResponse{200, "", "stopping\n"}; }},
    };
    return AdminServer(io.get_executor(), kAnyLocalPort, std::move(routes), std::move(options));
  }

  AdminResponse scrape() { return {200, "text/plain; version=0.0.4", "apsis_up " + std::to_string(++scrapes) + "\n"}; }

  // Runs the client coroutine, stops the server, and checks that the loop then runs dry.
  void run(std::function<asio::awaitable<void>()> client) {
    server.start();
    bool finished = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await client();
          server.stop();
          finished = true;
        },
        [](std::exception_ptr error) {
          if (error) std::rethrow_exception(error);
        });
    io.run_for(10s);
    CHECK(finished);
    CHECK(io.stopped());  // nothing of the server is left running
  }

  asio::awaitable<void> sleep(std::chrono::milliseconds duration) {
    asio::steady_timer timer(io, duration);
    co_await timer.async_wait(use_awaitable);
  }

  asio::io_context io;
  std::vector<std::string> errors;
  int scrapes = 0;
  AdminServer server;
};

}  // namespace

TEST_CASE("listen addresses: IP literals and localhost, never DNS") {
  CHECK(endpoint_text(*parse_listen_address("127.0.0.1:9464")) == "127.0.0.1 9464");
  CHECK(endpoint_text(*parse_listen_address("[::1]:9464")) == "::1 9464");
  CHECK(endpoint_text(*parse_listen_address("localhost:9464")) == "127.0.0.1 9464");
  CHECK(endpoint_text(*parse_listen_address("LocalHost:1")) == "127.0.0.1 1");
  CHECK(endpoint_text(*parse_listen_address("0.0.0.0:9464")) == "0.0.0.0 9464");
  CHECK(endpoint_text(*parse_listen_address("[::]:65535")) == ":: 65535");
  CHECK(endpoint_text(*parse_listen_address("10.1.2.3:80")) == "10.1.2.3 80");
  CHECK(endpoint_text(*parse_listen_address("127.0.0.1:0")) == "127.0.0.1 0");
  CHECK(endpoint_text(*parse_listen_address("[::ffff:127.0.0.1]:9464")) == "::ffff:127.0.0.1 9464");
}

TEST_CASE("bad listen addresses say what is wrong and what form is expected") {
  const std::string form = "expected HOST:PORT, like 127.0.0.1:9464";
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", "empty address"},
      {"127.0.0.1", "missing port"},
      {"127.0.0.1:", "missing port"},
      {"[::1]", "missing port"},
      {"[::1]:", "missing port"},
      {":9464", "missing host"},
      {"[]:9464", "missing host"},
      {"127.0.0.1:65536", "port '65536' is not a number from 0 to 65535 (0: any free port)"},
      {"127.0.0.1:99999999999999999999", "port '99999999999999999999' is not"},
      {"127.0.0.1:http", "port 'http' is not"},
      {"127.0.0.1:-1", "port '-1' is not"},
      {"127.0.0.1:+80", "port '+80' is not"},
      {"127.0.0.1:80 ", "port '80 ' is not"},
      {"example.com:9464", "host 'example.com' is not an IP address: use an IP address"},
      {"127.1:9464", "host '127.1' is not an IP address"},
      {"256.0.0.1:9464", "host '256.0.0.1' is not an IP address"},
      {" 127.0.0.1:9464", "host ' 127.0.0.1' is not an IP address"},
      {"::1:9464", "IPv6 address '::1' must be in brackets"},
      {"[::1:9464", "missing ']'"},
      {"[127.0.0.1]:9464", "'127.0.0.1' in brackets is not an IPv6 address"},
      {"[::1]9464", "unexpected '9464' after the IPv6 address"},
      {"http://127.0.0.1:9464", "host 'http://127.0.0.1' is not an IP address"},
  };
  for (const auto& [text, problem] : cases) {
    CAPTURE(text);
    const std::string error = parse_error(text);
    CHECK(error.find(problem) != std::string::npos);
    CHECK(error.find(form) != std::string::npos);
  }
  CHECK_FALSE(parse_listen_address("junk"));  // the error text is optional
}

TEST_CASE("loopback endpoints") {
  const auto loopback = [](std::string_view text) { return is_loopback(*parse_listen_address(text)); };
  CHECK(loopback("127.0.0.1:1"));
  CHECK(loopback("127.255.0.9:1"));
  CHECK(loopback("localhost:1"));
  CHECK(loopback("[::1]:1"));
  CHECK(loopback("[::ffff:127.0.0.1]:1"));
  CHECK_FALSE(loopback("0.0.0.0:1"));
  CHECK_FALSE(loopback("[::]:1"));
  CHECK_FALSE(loopback("10.0.0.1:1"));
  CHECK_FALSE(loopback("128.0.0.1:1"));
  CHECK_FALSE(loopback("[::2]:1"));
  CHECK_FALSE(loopback("[::ffff:10.0.0.1]:1"));
}

TEST_CASE("one keep-alive connection: GET, query, 404, 405, HEAD, a failing handler, then GET again") {
  Fixture f;
  CHECK(f.server.local_endpoint().port() != 0);
  f.run([&]() -> asio::awaitable<void> {
    Client client(f.io.get_executor());
    co_await client.connect(f.server.local_endpoint());

    auto metrics = co_await client.request(http::verb::get, "/metrics");
    CHECK(metrics.result_int() == 200);
    CHECK(metrics.body() == "apsis_up 1\n");
    CHECK(metrics[http::field::content_type] == "text/plain; version=0.0.4");
    CHECK(metrics[http::field::content_length] == "11");
    CHECK(metrics[http::field::cache_control] == "no-store");
    CHECK(metrics.keep_alive());

    CHECK((co_await client.request(http::verb::get, "/metrics?name[]=x&y")).body() == "apsis_up 2\n");
    auto health = co_await client.request(http::verb::get, "/healthz");
    CHECK(health[http::field::content_type] == "text/plain; charset=utf-8");

    auto missing = co_await client.request(http::verb::get, "/nope");
    CHECK(missing.result_int() == 404);
    CHECK(missing.body() == "not found; known paths: /boom /healthz /metrics /odd /stop\n");
    CHECK(missing[http::field::cache_control] == "no-store");

    auto post = co_await client.request(http::verb::post, "/metrics");
    CHECK(post.result_int() == 405);
    CHECK(post[http::field::allow] == "GET, HEAD");

    auto head = co_await client.request(http::verb::head, "/metrics");
    CHECK(head.result_int() == 200);
    CHECK(head[http::field::content_length] == "11");  // the GET's length, without the body
    CHECK(head.body().empty());

    auto boom = co_await client.request(http::verb::get, "/boom");
    CHECK(boom.result_int() == 500);
    CHECK(boom.body() == "internal error: database is locked\n");
    auto odd = co_await client.request(http::verb::get, "/odd");
    CHECK(odd.result_int() == 500);
    CHECK(odd.body().find("invalid status 42") != std::string::npos);

    CHECK((co_await client.request(http::verb::get, "/metrics")).body() == "apsis_up 4\n");
  });
  REQUIRE(f.errors.size() == 2);
  CHECK(f.errors[0] == "handler for /boom failed: database is locked");
  CHECK(f.errors[1].find("handler for /odd failed: handler answered with invalid status 42") != std::string::npos);
}

TEST_CASE("pipelined requests are answered in order; HTTP/1.0 and Connection: close end the connection") {
  Fixture f;
  f.run([&]() -> asio::awaitable<void> {
    Client pipelined(f.io.get_executor());
    co_await pipelined.connect(f.server.local_endpoint());
    auto first = co_await pipelined.raw(
        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(first.body() == "apsis_up 1\n");
    CHECK((co_await pipelined.response(true))[http::field::content_length] == "3");
    auto last = co_await pipelined.response(false);
    CHECK(last.body() == "ok\n");
    CHECK_FALSE(last.keep_alive());
    CHECK(co_await pipelined.closed() == http::error::end_of_stream);

    Client old(f.io.get_executor());
    co_await old.connect(f.server.local_endpoint());
    auto answer = co_await old.raw("GET /healthz HTTP/1.0\r\n\r\n");
    CHECK(answer.version() == 10);
    CHECK(answer.body() == "ok\n");
    CHECK(co_await old.closed() == http::error::end_of_stream);
  });
  CHECK(f.errors.empty());
}

TEST_CASE("requests with a body, huge headers or bad syntax are refused, and the connection closed") {
  Fixture f;
  f.run([&]() -> asio::awaitable<void> {
    const std::pair<std::string, unsigned> cases[] = {
        {"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 413},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(9000, 'a') + "\r\n\r\n", 431},
        {"HELLO\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n", 400},
    };
    for (const auto& [bytes, status] : cases) {
      CAPTURE(status);
      Client client(f.io.get_executor());
      co_await client.connect(f.server.local_endpoint());
      auto answer = co_await client.raw(bytes);
      CHECK(answer.result_int() == status);
      CHECK_FALSE(answer.keep_alive());
      CHECK(co_await client.closed() != boost::system::error_code{});
    }
    Client client(f.io.get_executor());  // and the server still serves
    co_await client.connect(f.server.local_endpoint());
    CHECK((co_await client.request(http::verb::get, "/healthz")).result_int() == 200);
  });
  CHECK(f.errors.size() == 5);  // each bad request is reported
  CHECK(f.scrapes == 0);
}

TEST_CASE("an idle connection is closed quietly at the deadline, a stalled request with a report") {
  Fixture f({.idle_timeout = 100ms});
  f.run([&]() -> asio::awaitable<void> {
    Client idle(f.io.get_executor());
    co_await idle.connect(f.server.local_endpoint());
    CHECK((co_await idle.request(http::verb::get, "/healthz")).result_int() == 200);
    const auto start = std::chrono::steady_clock::now();
    CHECK(co_await idle.closed() == http::error::end_of_stream);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK(f.errors.empty());

    Client stalled(f.io.get_executor());
    co_await stalled.connect(f.server.local_endpoint());
    co_await stalled.send("GET /metr");
    CHECK(co_await stalled.closed() != boost::system::error_code{});
  });
  REQUIRE(f.errors.size() == 1);
  CHECK(f.errors[0].find("timeout") != std::string::npos);
}

TEST_CASE("connections beyond the cap are closed at once, and served again once one ends") {
  Fixture f({.max_connections = 2});
  f.run([&]() -> asio::awaitable<void> {
    std::vector<std::unique_ptr<Client>> open;
    for (int i = 0; i < 2; ++i) {
      open.push_back(std::make_unique<Client>(f.io.get_executor()));
      co_await open.back()->connect(f.server.local_endpoint());
      CHECK((co_await open.back()->request(http::verb::get, "/healthz")).result_int() == 200);
    }
    for (int i = 0; i < 2; ++i) {
      Client refused(f.io.get_executor());
      co_await refused.connect(f.server.local_endpoint());
      CHECK(co_await refused.closed() != boost::system::error_code{});
    }
    open.pop_back();
    co_await f.sleep(50ms);  // the server notices the close
    Client later(f.io.get_executor());
    co_await later.connect(f.server.local_endpoint());
    CHECK((co_await later.request(http::verb::get, "/healthz")).result_int() == 200);
  });
  REQUIRE(f.errors.size() == 1);  // once per time the cap is reached, not per connection
  CHECK(f.errors[0] == "2 connections open; closing new ones until one ends");
}

TEST_CASE("stop() ends open and half-read connections at once, twice is harmless, nothing is reported") {
  Fixture f;
  auto idle = std::make_unique<Client>(f.io.get_executor());
  auto half = std::make_unique<Client>(f.io.get_executor());
  f.run([&]() -> asio::awaitable<void> {
    co_await idle->connect(f.server.local_endpoint());
    CHECK((co_await idle->request(http::verb::get, "/metrics")).result_int() == 200);
    co_await half->connect(f.server.local_endpoint());
    co_await half->send("GET /metrics HTTP/1.1\r\n");
    co_await f.sleep(20ms);
    f.server.stop();
    CHECK(co_await idle->closed() != boost::system::error_code{});
    CHECK(co_await half->closed() != boost::system::error_code{});
  });
  f.server.stop();
  CHECK(f.errors.empty());
  CHECK(f.scrapes == 1);
}

TEST_CASE("a handler may stop the server: its request gets no answer") {
  Fixture f;
  f.run([&]() -> asio::awaitable<void> {
    Client client(f.io.get_executor());
    co_await client.connect(f.server.local_endpoint());
    co_await client.send("GET /stop HTTP/1.1\r\n\r\n");
    CHECK(co_await client.closed() != boost::system::error_code{});
  });
  CHECK(f.errors.empty());
}

TEST_CASE("a server may be destroyed right after stop(), with its coroutines still to unwind") {
  asio::io_context io;
  const std::map<std::string, AdminHandler> routes{{"/healthz", [] { return AdminResponse{200, "", "ok"}; }}};
  auto server = std::make_unique<AdminServer>(io.get_executor(), kAnyLocalPort, routes);
  server->start();
  const auto endpoint = server->local_endpoint();
  Client client(io.get_executor());
  bool connected = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await client.connect(endpoint);
        CHECK((co_await client.request(http::verb::get, "/healthz")).body() == "ok");
        connected = true;
        server.reset();  // stops and releases it while its connection coroutine waits to read
        CHECK(co_await client.closed() != boost::system::error_code{});
      },
      [](std::exception_ptr error) {
        if (error) std::rethrow_exception(error);
      });
  io.run_for(10s);
  CHECK(connected);
  CHECK(io.stopped());
}

TEST_CASE("a taken port fails at construction, naming the address") {
  asio::io_context io;
  AdminServer first(io.get_executor(), kAnyLocalPort, {});
  const auto taken = first.local_endpoint();
  try {
    AdminServer second(io.get_executor(), taken, {});
    FAIL("bound a taken port");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::address_in_use);
    CHECK(std::string(e.what()) ==
          "admin endpoint cannot listen on 127.0.0.1:" + std::to_string(taken.port()) + ": Address already in use");
  }
  CHECK_THROWS_AS(AdminServer(io.get_executor(), {}, {{"metrics", [] { return AdminResponse{}; }}}),
                  std::invalid_argument);
}

namespace {

// "s3cret" at bcrypt cost 4; base64("alice:s3cret") and base64("alice:wrong").
const AuthGate::Users kUsers{{"alice", "$2b$04$ZX5JRp1RlXrPcwtVmf2ZW.YnPMvwnarFtlXJROYJxhBRqPirxfv9y"}};

std::string get_with(const std::string& authorization) {
  return "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         (authorization.empty() ? std::string() : "Authorization: " + authorization + "\r\n") + "\r\n";
}

}  // namespace

TEST_CASE("with users, a request is answered only with a right password; 401s keep the connection") {
  AdminServerOptions options;
  options.auth = std::make_shared<AuthService>(kUsers);
  Fixture f(std::move(options));
  f.run([&]() -> asio::awaitable<void> {
    Client client(f.io.get_executor());
    co_await client.connect(f.server.local_endpoint());
    auto missing = co_await client.raw(get_with(""));
    CHECK(missing.result_int() == 401);
    CHECK(missing[http::field::www_authenticate] == "Basic realm=\"apsis-exportd\", charset=\"UTF-8\"");
    CHECK(missing.body().find("/metrics") == std::string::npos);
    auto wrong = co_await client.raw(get_with("Basic YWxpY2U6d3Jvbmc="));
    CHECK(wrong.result_int() == 401);
    auto right = co_await client.raw(get_with("Basic YWxpY2U6czNjcmV0"));
    CHECK(right.result_int() == 200);
    CHECK(right.body() == "apsis_up 1\n");
    auto head = co_await client.request(http::verb::head, "/nothing");
    CHECK(head.result_int() == 401);  // before routing: no 404 tells what exists
  });
  CHECK(f.scrapes == 1);
  CHECK(f.errors.empty());
}

TEST_CASE("with TLS, plain HTTP gets no answer and a client that never starts the handshake is cut off") {
  TempDir dir;
  write_file(dir.path() / "cert.pem", std::string(test_pem::kCertificate));
  write_file(dir.path() / "key.pem", std::string(test_pem::kKey));
  write_file(dir.path() / "other.pem", std::string(test_pem::kOtherKey));
  const auto other = "key_file " + (dir.path() / "other.pem").string();
  CHECK_THROWS_WITH_AS(make_tls_server_context({dir.path() / "cert.pem", dir.path() / "other.pem"}),
                       doctest::Contains(other.c_str()), std::runtime_error);
  CHECK_THROWS_AS(make_tls_server_context({dir.path() / "missing.pem", dir.path() / "key.pem"}), std::runtime_error);
  AdminServerOptions options;
  options.tls = make_tls_server_context({dir.path() / "cert.pem", dir.path() / "key.pem"});
  options.handshake_timeout = 100ms;
  Fixture f(std::move(options));
  f.run([&]() -> asio::awaitable<void> {
    Client plain(f.io.get_executor());
    co_await plain.connect(f.server.local_endpoint());
    co_await plain.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(co_await plain.closed() != boost::system::error_code{});
    Client silent(f.io.get_executor());
    co_await silent.connect(f.server.local_endpoint());
    CHECK(co_await silent.closed() != boost::system::error_code{});  // ends: the handshake deadline passed
  });
  CHECK(f.scrapes == 0);
  CHECK(f.errors.empty());  // failed handshakes are not logged
}
