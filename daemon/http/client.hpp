// An HTTP/1.1 client over Boost.Beast for one trust configuration: plain TCP (loopback only, checked
// by the config) or TLS that verifies the chain and host name (SNI). Keeps idle keep-alive
// connections per origin. Every network step has a deadline. Single-threaded: use from one strand.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/system_error.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "http/url.hpp"
#include "util/async_semaphore.hpp"
#include "util/time.hpp"

namespace apsis::http {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;

struct Request {
  beast_http::verb method{beast_http::verb::get};
  Url url;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond Host and User-Agent
  std::string body;
};

struct Response {
  unsigned status{0};
  beast_http::fields headers;
  std::string body;       // collected unless streamed to a BodyTarget
  bool streamed{false};   // the body went to the BodyTarget
  std::uint64_t body_bytes{0};
  // The body's end was framed (Content-Length or chunked). False when only the connection closing
  // ended it: a cut there looks exactly like the end.
  bool end_framed{true};
};

// Receives a 200 answer's body as it arrives, so a multi-gigabyte file never sits in memory.
struct BodyTarget {
  // Called once the 200 header is in, before any body byte; may throw to refuse the body.
  std::function<void(const Response& head)> begin;
  // Awaited before the next read: the target copies the bytes (the buffer is reused) and may make
  // the download wait while it catches up, so memory stays flat however fast the network is.
  std::function<asio::awaitable<void>(std::span<const char> bytes)> data;
};

class Connection;

class Client {
 public:
  struct Options {
    std::optional<std::filesystem::path> ca_file;  // else the system CA store
    Milliseconds timeout{std::chrono::seconds(60)};  // per step: connect, handshake, write, each read
    std::string user_agent{"apsis-exportd"};
    int max_connections{0};             // open connections, idle ones included; 0 = unlimited
  };

  Client(asio::any_io_executor executor, Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends the request and reads the answer. With a target, a 200 answer's body streams to it.
  // Interim 1xx answers (100 Continue) are skipped. Throws NetworkError on network errors, a cut body
  // included (beast::http::error::partial_message), with the failed step named in what().
  // Only a GET is sent on a reused keep-alive connection and sent again once if that connection
  // turns out closed: any other request goes on a fresh connection and is never sent twice.
  asio::awaitable<Response> send(const Request& request, BodyTarget* target = nullptr);

  const asio::any_io_executor& executor() const { return executor_; }

 private:
  asio::awaitable<std::unique_ptr<Connection>> acquire(const Url& url, bool may_reuse, bool& reused);
  void release(const Url& url, std::unique_ptr<Connection> connection);

  asio::any_io_executor executor_;
  Options options_;
  std::unique_ptr<asio::ssl::context> tls_;
  AsyncSemaphore connections_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
};

// A failed network step. what() reads "STEP: REASON" — no source locations — because it ends up
// in the job row and the log, for people.
class NetworkError : public boost::system::system_error {
 public:
  NetworkError(const boost::system::error_code& code, const std::string& step)
      : boost::system::system_error(code), text_(step + ": " + code.message()) {}
  const char* what() const noexcept override { return text_.c_str(); }

  // Some of the request's bytes were written before the failure: the server may have received it
  // (and, for a POST, acted on it). Sending it again could do the thing twice.
  bool request_may_have_arrived() const { return request_may_have_arrived_; }
  NetworkError after_sending() const {
    auto copy = *this;
    copy.request_may_have_arrived_ = true;
    return copy;
  }

 private:
  std::string text_;
  bool request_may_have_arrived_{false};
};

// True for errors worth retrying: refused, reset, timed out, cut bodies, DNS hiccups.
bool is_transient_network_error(const boost::system::error_code& ec);

// Shutdown cancels operations with operation_aborted: that must end the job's coroutine, never
// count as a network failure to retry or record.
bool is_cancellation(const boost::system::error_code& ec);

}  // namespace apsis::http
