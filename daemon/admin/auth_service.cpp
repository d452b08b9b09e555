#include "admin/auth_service.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/crypto.h>

#include <chrono>

#include "admin/bcrypt.hpp"

namespace apsis::admin {

namespace asio = boost::asio;

AuthService::AuthService(AuthGate::Users users, AuthLimits limits, Now now, OnThrottle on_throttle)
    : gate_(std::move(users), limits),
      now_(now ? std::move(now) : Now([] { return std::chrono::steady_clock::now(); })),
      on_throttle_(std::move(on_throttle)),
      pool_(limits.max_concurrent_checks) {}

AuthService::~AuthService() { pool_.join(); }

asio::awaitable<AuthVerdict> AuthService::check(std::optional<std::string> authorization, std::string client) {
  auto attempt = gate_.begin(authorization, client, now_());
  if (authorization) OPENSSL_cleanse(authorization->data(), authorization->size());
  if (attempt.verdict != AuthVerdict::verify) co_return attempt.verdict;
  bool matched = false;
  // The references stay valid: this frame waits for the check.
  co_await asio::co_spawn(
      pool_.get_executor(),
      [&matched, &attempt]() -> asio::awaitable<void> {
        matched = bcrypt_matches(attempt.password, attempt.hash);
        co_return;
      },
      asio::use_awaitable);
  OPENSSL_cleanse(attempt.password.data(), attempt.password.size());
  const auto now = now_();
  const auto verdict = gate_.finish(attempt, client, matched, now);
  // Checked only when not throttled, so throttled now means it began with this failure.
  if (verdict == AuthVerdict::unauthorized && on_throttle_ && gate_.throttled(client, now)) {
    const auto window = std::chrono::duration_cast<std::chrono::seconds>(gate_.limits().failure_window).count();
    on_throttle_(std::to_string(gate_.limits().max_failures) + " wrong passwords from " + client + " within " +
                 std::to_string(window) + " s: its new logins get 429 for the rest of that time");
  }
  co_return verdict;
}

}  // namespace apsis::admin
