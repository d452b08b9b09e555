// Who may read the admin endpoint: HTTP basic authentication against bcrypt hashes, with the two
// guards that keep a guessing client from costing the daemon anything but its own time.
//
// The decision only, no I/O and no bcrypt: AuthGate says whether a request passes, is refused, or
// needs its password checked against a hash (AuthVerdict::verify), and hears the check's result
// through finish(). The caller runs the check off the event loop (auth_service.hpp). Time is passed
// in, so tests drive the windows with a virtual clock. Not thread-safe: one thread (the loop) owns it.
//
// - A successful check is remembered for cache_ttl under a SHA-256 of user, password and hash, so a
//   scraper every 15 s pays bcrypt once per cache_ttl; the password itself is never stored.
// - A client address with max_failures wrong passwords inside failure_window gets `throttled`
//   without a check until the window ends; already proven credentials still pass from it.
// - At most max_concurrent_checks checks run at once (`busy` beyond that), whoever sends them.
// - Every decision is counted (AuthCounts) for /metrics, so an operator sees someone guessing.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace apsis::admin {

struct BasicCredentials {
  std::string user;
  std::string password;
};

// The user and password of an "Authorization: Basic <base64(user:password)>" header value (the
// scheme case-insensitive, as RFC 7617 says); nullopt for any other scheme or a malformed value.
std::optional<BasicCredentials> parse_basic_authorization(std::string_view header);

struct AuthLimits {
  std::size_t max_failures = 10;  // wrong passwords per client address within failure_window
  std::chrono::seconds failure_window{60};
  std::size_t max_clients_tracked = 4096;  // addresses with recent failures remembered
  std::size_t max_concurrent_checks = 2;
  std::chrono::seconds cache_ttl{300};
  std::size_t max_cached = 1024;
};

enum class AuthVerdict {
  allowed,       // no users configured, or credentials proven recently
  unauthorized,  // no or malformed credentials: 401
  throttled,     // this address failed too often lately: 429
  busy,          // too many checks running: 503
  verify,        // run bcrypt_matches(password, hash), then finish()
};

using Sha256 = std::array<unsigned char, 32>;

// How the gate answered requests while users were configured, for /metrics. An unknown user counts
// as `wrong`, like a wrong password: as in the answer's timing, the counts do not tell which user
// names exist. Requests let in because no users are configured are not counted.
struct AuthCounts {
  std::uint64_t ok = 0;         // password checked, and right
  std::uint64_t cached = 0;     // credentials proven within cache_ttl: let in without a check
  std::uint64_t wrong = 0;      // password checked, and wrong (or the user unknown)
  std::uint64_t malformed = 0;  // an Authorization header that is not Basic user:password; a failure
  std::uint64_t missing = 0;    // no Authorization header: a client's first try, not a failure
  std::uint64_t throttled = 0;  // 429 without a check
  std::uint64_t busy = 0;       // 503: too many checks running
};

struct AuthAttempt {
  AuthVerdict verdict = AuthVerdict::unauthorized;
  // For verify only:
  std::string user;
  std::string password;
  std::string hash;
  Sha256 key{};
  bool known_user = false;  // an unknown user is checked against a decoy hash and never matches
};

class AuthGate {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Users = std::map<std::string, std::string>;  // user name -> bcrypt hash

  explicit AuthGate(Users users = {}, AuthLimits limits = {});

  bool enabled() const { return !users_.empty(); }
  // `authorization` is the header's value, if the request had one; `client` the peer's address.
  AuthAttempt begin(std::optional<std::string_view> authorization, const std::string& client, TimePoint now);
  // After a `verify`: whether the password matched. Returns the final verdict (allowed or unauthorized).
  AuthVerdict finish(const AuthAttempt& attempt, const std::string& client, bool matched, TimePoint now);
  // A reload: new users, and every cached success forgotten. Checks under way still finish().
  void set_users(Users users);

  // Whether `client` is refused as `throttled` now (for a log line when it starts).
  bool throttled(const std::string& client, TimePoint now) const;
  const AuthLimits& limits() const { return limits_; }

  std::size_t cached() const { return cache_.size(); }
  std::size_t checks_running() const { return running_; }
  const AuthCounts& counts() const { return counts_; }
  // Addresses refused as `throttled` now. Walks the failure table (at most max_clients_tracked).
  std::size_t throttled_addresses(TimePoint now) const;

 private:
  struct Failures {
    std::size_t count = 0;
    TimePoint since{};
  };
  bool refuses(const Failures& failures, TimePoint now) const;  // within the window and over the limit
  bool is_throttled(const std::string& client, TimePoint now);
  void remember_success(const Sha256& key, TimePoint now);
  void count_failure(const std::string& client, TimePoint now);

  Users users_;
  AuthLimits limits_;
  std::map<Sha256, TimePoint> cache_;  // key -> expiry
  std::map<std::string, Failures> failures_;
  std::size_t running_ = 0;
  AuthCounts counts_;
};

}  // namespace apsis::admin
