// AuthGate (basic_auth.hpp) on the event loop, with the bcrypt checks on a thread pool of its own:
// a flood of wrong passwords waits for these threads, never for the loop or for the pool the
// daemon's file work uses. Create, call and destroy it on the loop's thread; destruction waits for
// checks under way (each a few tens of milliseconds).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <optional>
#include <string>

#include "admin/basic_auth.hpp"

namespace apsis::admin {

class AuthService {
 public:
  using Now = std::function<AuthGate::TimePoint()>;
  // Told once each time an address starts being throttled, with a sentence for the log.
  using OnThrottle = std::function<void(std::string)>;

  explicit AuthService(AuthGate::Users users, AuthLimits limits = {}, Now now = {}, OnThrottle on_throttle = {});
  ~AuthService();
  AuthService(const AuthService&) = delete;
  AuthService& operator=(const AuthService&) = delete;

  bool enabled() const { return gate_.enabled(); }
  // The verdict for a request with this Authorization header value (if any) from this address:
  // allowed, unauthorized, throttled or busy. Resumes on the caller's executor.
  boost::asio::awaitable<AuthVerdict> check(std::optional<std::string> authorization, std::string client);
  void set_users(AuthGate::Users users) { gate_.set_users(std::move(users)); }
  // For /metrics: the gate's answers so far, and the addresses it throttles now.
  const AuthCounts& counts() const { return gate_.counts(); }
  std::size_t throttled_addresses() const { return gate_.throttled_addresses(now_()); }

 private:
  AuthGate gate_;
  Now now_;
  OnThrottle on_throttle_;
  boost::asio::thread_pool pool_;
};

}  // namespace apsis::admin
