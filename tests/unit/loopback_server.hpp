// Test helper: a scripted HTTP/1.1 server on 127.0.0.1 for the unit tests of http/ and apsis/. Each
// request is answered by the script with raw bytes, so a test can send anything, a cut body
// included. Runs on the test's own event loop; records which connection carried which request.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace test {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;
using tcp = asio::ip::tcp;

struct Answer {
  std::string bytes;   // written as they are
  bool close{false};   // the server closes the connection after writing them
};

// A complete answer with a Content-Length body.
inline Answer answer(unsigned status, const std::string& body, const std::string& headers = "") {
  return {"HTTP/1.1 " + std::to_string(status) + " Status\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n" + headers + "\r\n" + body};
}

struct Seen {
  int connection;  // 1 = the first connection accepted
  std::string method;
  std::string target;
  std::string authorization;
};

class LoopbackServer {
 public:
  using Request = beast_http::request<beast_http::string_body>;
  using Script = std::function<Answer(const Request&)>;

  LoopbackServer(asio::io_context& io, Script script)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), script_(std::move(script)) {
    asio::co_spawn(io, accept(), [](std::exception_ptr) {});
  }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  std::string origin() const { return base_url(); }
  int connections() const { return accepted_; }
  const std::vector<Seen>& seen() const { return seen_; }

  // Closes the listener and every connection, so the event loop can end.
  void stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& socket : sockets_) socket->close(ec);
  }

 private:
  asio::awaitable<void> accept() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(acceptor_.get_executor());
      auto [ec] = co_await acceptor_.async_accept(*socket, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      sockets_.push_back(socket);
      asio::co_spawn(acceptor_.get_executor(), serve(socket, ++accepted_), [](std::exception_ptr) {});
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<tcp::socket> socket, int connection) {
    boost::beast::flat_buffer buffer;
    for (;;) {
      Request request;
      auto [read_ec, n] =
          co_await beast_http::async_read(*socket, buffer, request, asio::as_tuple(asio::use_awaitable));
      if (read_ec) co_return;
      seen_.push_back({connection, std::string(request.method_string()), std::string(request.target()),
                       std::string(request[beast_http::field::authorization])});
      const auto reply = script_(request);
      auto [write_ec, written] =
          co_await asio::async_write(*socket, asio::buffer(reply.bytes), asio::as_tuple(asio::use_awaitable));
      if (write_ec || reply.close) {
        boost::system::error_code ec;
        socket->shutdown(tcp::socket::shutdown_both, ec);
        socket->close(ec);
        co_return;
      }
    }
  }

  tcp::acceptor acceptor_;
  Script script_;
  int accepted_{0};
  std::vector<Seen> seen_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
};

// Runs `body` (a coroutine) on `io` to its end with the server, then stops the server; rethrows what
// the body threw. A watchdog ends a hung test after ten seconds with a failure, not a hang.
template <typename Body>
void run_with(asio::io_context& io, LoopbackServer& server, Body body) {
  std::exception_ptr failure;
  bool finished = false;
  asio::steady_timer watchdog(io, std::chrono::seconds(10));
  watchdog.async_wait([&](boost::system::error_code ec) {
    if (!ec) io.stop();
  });
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr error) {
    failure = error;
    finished = true;
    watchdog.cancel();
    server.stop();
  });
  io.run();
  if (!finished) throw std::runtime_error("the test's coroutine did not finish within ten seconds");
  if (failure) std::rethrow_exception(failure);
}

}  // namespace test
