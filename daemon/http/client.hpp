// An HTTP/1.1 client over Boost.Beast for one trust configuration: plain TCP (loopback only, checked
// by the config) or TLS that verifies the chain and host name (SNI). Keeps idle keep-alive
// connections per origin, shared by everyone holding the client (every account on one API host).
// Every network step has a deadline. Single-threaded: use from one strand.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/system_error.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "http/url.hpp"
#include "util/time.hpp"

namespace apsis::http {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;

struct Request {
  beast_http::verb method{beast_http::verb::get};
  Url url;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond Host and User-Agent
  std::string body;
  std::optional<Milliseconds> timeout;  // per network step; else the client's default
};

class BodyReader;

struct Response {
  unsigned status{0};
  beast_http::fields headers;
  std::string body;  // collected (capped at 1 MiB), unless `reader` holds it unread
  std::uint64_t body_bytes{0};  // collected bytes, before the cap
  // The body's end is framed (Content-Length or chunked). False when only the connection closing
  // ends it: a cut there looks exactly like the end.
  bool end_framed{true};
  // A 200 asked for with ReadBody::stream_if_ok: its body, unread, on the connection that carries it.
  std::unique_ptr<BodyReader> reader;
};

// What send() does with the answer's body.
enum class ReadBody {
  collect,       // read every body into Response::body
  stream_if_ok,  // a 200's body stays unread in Response::reader; other bodies are collected
};

struct ConnectionPool;
class Connection;

// A response body read piece by piece: what a download drains (the seam a unit test scripts).
class BodySource {
 public:
  virtual ~BodySource() = default;
  // The next piece of the body, valid until the next call; an empty span at the end of the body.
  virtual asio::awaitable<std::span<const char>> read_some() = 0;
  // The body's end is framed (Content-Length, chunked): a cut cannot pass for the end.
  virtual bool end_framed() const = 0;
};

// A 200 answer's body, read piece by piece, so a multi-gigabyte file never sits in memory. Owns the
// connection: read to its end, the connection goes back to the idle pool (when the server keeps it
// alive); destroyed before that, the connection is closed, never reused. Every read has the
// request's per-step deadline.
class BodyReader final : public BodySource {
 public:
  ~BodyReader() override;
  BodyReader(const BodyReader&) = delete;
  BodyReader& operator=(const BodyReader&) = delete;

  // The next piece of the body, valid until the next call; an empty span at the end of the body.
  // Throws NetworkError naming the failed step ("reading response body: ..."): a cut body is
  // beast::http::error::partial_message (or a truncated TLS stream), cancellation operation_aborted.
  asio::awaitable<std::span<const char>> read_some() override;

  bool end_framed() const override { return end_framed_; }
  bool done() const { return done_; }
  std::uint64_t bytes_read() const { return bytes_read_; }

  // Keeps `resource` (e.g. a caller's connection slot) until the body ends or the reader goes.
  void hold_until_done(std::shared_ptr<void> resource) { held_ = std::move(resource); }

 private:
  friend class Client;
  struct Parser;
  BodyReader(std::shared_ptr<ConnectionPool> pool, std::string origin, std::unique_ptr<Connection> connection,
             std::unique_ptr<Parser> parser, Milliseconds timeout, bool end_framed);
  void finish();

  std::shared_ptr<ConnectionPool> pool_;
  std::string origin_;
  std::unique_ptr<Connection> connection_;
  std::unique_ptr<Parser> parser_;
  Milliseconds timeout_;
  std::unique_ptr<char[]> chunk_;
  std::size_t chunk_size_;
  bool end_framed_;
  bool done_{false};
  boost::system::error_code failure_;  // the read failed: every later read throws it again
  std::uint64_t bytes_read_{0};
  std::shared_ptr<void> held_;
};

class Client {
 public:
  struct Options {
    std::optional<std::filesystem::path> ca_file;  // else the system CA store
    Milliseconds timeout{std::chrono::seconds(60)};  // per step, unless the request says otherwise
    std::string user_agent{"apsis-exportd"};
    // Open connections per origin, idle ones included; 0 = unlimited. Shared by every account on
    // the origin, each of which caps its own requests in flight (account max_connections) below it.
    int max_connections_per_origin{kDefaultMaxConnectionsPerOrigin};
  };
  // Bounds the descriptors one API host can take (systemd's default soft limit is 1024, shared with
  // the downloads' files, SQLite and the admin endpoint) and the connections the host sees from us.
  static constexpr int kDefaultMaxConnectionsPerOrigin = 256;

  struct Stats {
    std::uint64_t opened{0};  // connections opened
    std::uint64_t reused{0};  // requests sent on an idle keep-alive connection
  };

  // Throws if the CA file cannot be read.
  Client(asio::any_io_executor executor, Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends the request and reads the answer's head; the body is collected or, for a 200 with
  // ReadBody::stream_if_ok, left to Response::reader. Interim 1xx answers (100 Continue) are skipped.
  // Throws NetworkError on network errors, a cut collected body included
  // (beast::http::error::partial_message), with the failed step named in what().
  // Only a GET is sent on a reused keep-alive connection and sent again once if that connection
  // turns out closed: any other request goes on a fresh connection and is never sent twice.
  asio::awaitable<Response> send(const Request& request, ReadBody read_body = ReadBody::collect);

  const asio::any_io_executor& executor() const { return executor_; }
  const Options& options() const { return options_; }
  Stats stats() const;
  std::size_t idle(const std::string& origin) const;  // idle keep-alive connections to `origin`

 private:
  asio::any_io_executor executor_;
  Options options_;
  std::shared_ptr<ConnectionPool> pool_;  // shared with body readers, which may outlive the client
};

// The clients of one process, one per trust configuration, so every account on an API host shares
// its idle connections and its TLS context. Single-threaded.
class ClientPool {
 public:
  ClientPool(asio::any_io_executor executor, Client::Options defaults = {});

  // The client for `ca_file` (the system store when empty), made on first use; lives while someone
  // holds it. A CA file replaced since (another modification time) gets a fresh client, so a reload
  // picks up a renewed bundle. Throws if the CA file cannot be read.
  std::shared_ptr<Client> client_for(const std::optional<std::filesystem::path>& ca_file);

 private:
  asio::any_io_executor executor_;
  Client::Options defaults_;
  std::map<std::string, std::weak_ptr<Client>> clients_;
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
