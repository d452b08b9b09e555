// A small HTTP/1.1 server for the admin endpoint (/metrics, /healthz, /jobs) on the daemon's event
// loop: GET and HEAD of a fixed set of paths, each answered by a handler called on the loop thread.
//
// Built for a hostile or clumsy client as much as for Prometheus: requests carry no body, headers
// are capped, an idle or slow connection is closed after a deadline, and connections beyond a cap
// are closed at once, so the admin port can never hold the daemon's memory or descriptors hostage.
// Not thread-safe: construct, start and stop it on the executor's thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "admin/auth_service.hpp"

namespace apsis::admin {

struct AdminResponse {
  unsigned status = 200;
  std::string content_type;  // empty: text/plain; charset=utf-8
  std::string body;
};

// Answers one GET or HEAD of its path. An exception becomes a 500 with its text.
using AdminHandler = std::function<AdminResponse()>;

struct AdminServerOptions {
  // Accept, connection and handler failures, except the ordinary ones (peer closed, idle
  // timeout, shutdown), as "connection from 127.0.0.1:40112: reading request: bad method": the
  // caller adds that it is the admin endpoint. Never called after stop().
  std::function<void(std::string)> on_error{};
  std::size_t max_connections = 32;  // more are closed as soon as they are accepted
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(10);  // to read each request, and to send its answer
  std::uint32_t max_header_bytes = 8 * 1024;
  // Asks every request for credentials when it has users (401, 429 or 503 otherwise); null or
  // without users: every request is answered.
  std::shared_ptr<AuthService> auth{};
  // HTTPS with this context; null: plain HTTP. set_tls() replaces it for new connections.
  std::shared_ptr<boost::asio::ssl::context> tls{};
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);  // a slow client holds no slot longer
};

class AdminServer {
 public:
  using Options = AdminServerOptions;

  // Binds and listens now, so a taken port fails the start-up: std::system_error naming the
  // address. Serves nothing until start(). Port 0 picks a free port (see local_endpoint()).
  AdminServer(boost::asio::any_io_executor executor, boost::asio::ip::tcp::endpoint endpoint,
              std::map<std::string, AdminHandler> routes, Options options = {});
  ~AdminServer();  // stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  void start();  // starts accepting on the executor; once
  // Closes the listening socket and every open connection; in-flight work ends as the loop runs
  // on, and no handler or on_error is called from then on. Idempotent; the server may be
  // destroyed right after it.
  void stop();

  boost::asio::ip::tcp::endpoint local_endpoint() const { return local_endpoint_; }
  // A new certificate (a reload): connections accepted from now on use it; open ones keep theirs.
  void set_tls(std::shared_ptr<boost::asio::ssl::context> tls);

 private:
  class State;
  std::shared_ptr<State> state_;  // shared with the coroutines, which may outlive this object
  boost::asio::ip::tcp::endpoint local_endpoint_;
};

}  // namespace apsis::admin
