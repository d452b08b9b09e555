// The HTTP client against a scripted server on 127.0.0.1: streamed bodies, cut bodies, collected
// error answers, and what happens to the connection after each.
#include <doctest/doctest.h>

#include <boost/beast/http/error.hpp>

#include "http/client.hpp"
#include "loopback_server.hpp"

using namespace apsis;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using test::answer;
using test::LoopbackServer;

namespace {

// 600 KiB of a recognisable pattern: several reads of the client's largest chunk.
std::string big_body() {
  std::string body(600 * 1024, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  return body;
}

http::Request get(const LoopbackServer& server, const std::string& target) {
  http::Request request;
  request.url = *http::parse_url(server.base_url() + target);
  request.timeout = 5s;
  return request;
}

asio::awaitable<std::string> drain(http::BodyReader& reader) {
  std::string all;
  for (;;) {
    const auto piece = co_await reader.read_some();
    if (piece.empty()) co_return all;
    all.append(piece.data(), piece.size());
  }
}

LoopbackServer::Script file_or_ok(const std::string& file) {
  return [file](const LoopbackServer::Request& request) {
    if (request.target() == "/file") return answer(200, file, "Content-Type: text/csv\r\n");
    return answer(200, "ok");
  };
}

}  // namespace

TEST_CASE("a streamed 200 body, drained to its end, leaves its connection to the next request") {
  asio::io_context io;
  const auto file = big_body();
  LoopbackServer server(io, file_or_ok(file));
  http::Client client(io.get_executor(), {});
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    auto response = co_await client.send(get(server, "/file"), http::ReadBody::stream_if_ok);
    CHECK(response.status == 200);
    REQUIRE(response.reader);
    CHECK(response.body.empty());
    CHECK(response.headers["Content-Type"] == "text/csv");
    CHECK(client.idle(server.origin()) == 0);  // the reader holds it
    const auto body = co_await drain(*response.reader);
    CHECK(body == file);
    CHECK(response.reader->done());
    CHECK(response.reader->end_framed());
    CHECK(response.reader->bytes_read() == file.size());
    const auto after_end = co_await response.reader->read_some();
    CHECK(after_end.empty());  // the end stays the end
    CHECK(client.idle(server.origin()) == 1);
    const auto again = co_await client.send(get(server, "/again"));
    CHECK(again.body == "ok");
  });
  CHECK(server.connections() == 1);
  CHECK(client.stats().opened == 1);
  CHECK(client.stats().reused == 1);
}

TEST_CASE("a reader dropped before the end of its body closes the connection: it is never reused") {
  asio::io_context io;
  LoopbackServer server(io, file_or_ok(big_body()));
  http::Client client(io.get_executor(), {});
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    auto response = co_await client.send(get(server, "/file"), http::ReadBody::stream_if_ok);
    REQUIRE(response.reader);
    const auto first = co_await response.reader->read_some();
    CHECK_FALSE(first.empty());
    CHECK_FALSE(response.reader->done());
    response.reader.reset();
    CHECK(client.idle(server.origin()) == 0);
    const auto again = co_await client.send(get(server, "/again"));
    CHECK(again.body == "ok");
  });
  CHECK(server.connections() == 2);
  CHECK(client.stats().reused == 0);
}

TEST_CASE("a body cut short fails the read as a partial message naming the step") {
  asio::io_context io;
  LoopbackServer server(io, [](const LoopbackServer::Request&) {
    return test::Answer{"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten..", true};
  });
  http::Client client(io.get_executor(), {});
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    auto response = co_await client.send(get(server, "/file"), http::ReadBody::stream_if_ok);
    REQUIRE(response.reader);
    std::string got;
    std::optional<boost::system::error_code> failure;
    std::string what;
    try {
      got = co_await drain(*response.reader);
    } catch (const http::NetworkError& e) {
      failure = e.code();
      what = e.what();
    }
    REQUIRE(failure);
    CHECK(*failure == boost::beast::http::error::partial_message);
    CHECK(http::is_transient_network_error(*failure));
    CHECK(what.starts_with("reading response body: "));
    CHECK(response.reader->bytes_read() == 10);
    CHECK(client.idle(server.origin()) == 0);
  });
}

TEST_CASE("answers other than 200 are collected even when a stream was asked for; the connection is reused") {
  asio::io_context io;
  LoopbackServer server(io, [](const LoopbackServer::Request&) { return answer(404, "not ready"); });
  http::Client client(io.get_executor(), {});
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    auto response = co_await client.send(get(server, "/file"), http::ReadBody::stream_if_ok);
    CHECK(response.status == 404);
    CHECK_FALSE(response.reader);
    CHECK(response.body == "not ready");
    CHECK(response.body_bytes == 9);
    CHECK(client.idle(server.origin()) == 1);
    response = co_await client.send(get(server, "/file"), http::ReadBody::stream_if_ok);
    CHECK(response.status == 404);
  });
  CHECK(server.connections() == 1);
}

TEST_CASE("a 200 asked for without streaming is collected") {
  asio::io_context io;
  LoopbackServer server(io, [](const LoopbackServer::Request&) { return answer(200, "{\"a\":1}"); });
  http::Client client(io.get_executor(), {});
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    const auto response = co_await client.send(get(server, "/token"));
    CHECK(response.status == 200);
    CHECK_FALSE(response.reader);
    CHECK(response.body == "{\"a\":1}");
  });
}

TEST_CASE("a body ended only by the connection closing is read whole but reported unframed, and not pooled") {
  asio::io_context io;
  LoopbackServer server(io, [](const LoopbackServer::Request&) {
    return test::Answer{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", true};
  });
  http::Client client(io.get_executor(), {});
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    auto response = co_await client.send(get(server, "/file"), http::ReadBody::stream_if_ok);
    REQUIRE(response.reader);
    CHECK_FALSE(response.reader->end_framed());
    const auto body = co_await drain(*response.reader);
    CHECK(body == "all of it");
    CHECK(client.idle(server.origin()) == 0);
  });
}

TEST_CASE("a POST goes on a fresh connection and leaves the idle ones to GETs") {
  asio::io_context io;
  LoopbackServer server(io, [](const LoopbackServer::Request&) { return answer(200, "{}"); });
  http::Client client(io.get_executor(), {});
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    co_await client.send(get(server, "/poll"));
    auto post = get(server, "/submit");
    post.method = http::beast_http::verb::post;
    co_await client.send(post);
    CHECK(client.idle(server.origin()) == 2);
    co_await client.send(get(server, "/poll"));
  });
  REQUIRE(server.seen().size() == 3);
  CHECK(server.seen()[0].connection == 1);
  CHECK(server.seen()[1].connection == 2);
  CHECK(client.stats().reused == 1);
}

TEST_CASE("the origin's connection cap makes a request wait until a body is drained") {
  asio::io_context io;
  const auto file = big_body();
  LoopbackServer server(io, file_or_ok(file));
  http::Client::Options options;
  options.max_connections_per_origin = 1;
  http::Client client(io.get_executor(), options);
  std::vector<std::string> order;
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    auto response = co_await client.send(get(server, "/file"), http::ReadBody::stream_if_ok);
    REQUIRE(response.reader);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await client.send(get(server, "/again"));
          order.push_back("second request answered");
        },
        [](std::exception_ptr) {});
    co_await drain(*response.reader);
    order.push_back("body drained");
    asio::steady_timer settle(io, 200ms);
    co_await settle.async_wait(asio::use_awaitable);
  });
  CHECK(order == std::vector<std::string>{"body drained", "second request answered"});
  // The drained connection's slot went to the waiting request, which opened its own.
  CHECK(server.connections() == 2);
}

TEST_CASE("one client per CA configuration: accounts on one trust configuration share it") {
  asio::io_context io;
  http::ClientPool pool(io.get_executor());
  const auto a = pool.client_for(std::nullopt);
  const auto b = pool.client_for(std::nullopt);
  CHECK(a == b);
  CHECK(a->options().max_connections_per_origin == http::Client::kDefaultMaxConnectionsPerOrigin);
}
