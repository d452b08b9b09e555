// One call kind's share of an account's API budget: at most `count` requests in any sliding window
// of `window`, slowed down after the API answers 429. Pure bookkeeping over injected times, so the
// rules are tested without a clock; account_budget.hpp puts waiting coroutines in front of it.
//
// The rules, as the README states them:
// - A request counts in the window from the moment it is sent until `window` after its answer
//   came back. APSIS One counts a request when it arrives, which is somewhere between the two, so
//   counting to the answer never lets two requests that APSIS sees in one window exceed the count.
// - A 429 halves the pace (the count, and once the count is down to one, the window stretches),
//   at most once per window, down to a tenth. Each full minute without a 429 wins back a tenth.
#pragma once

#include <chrono>
#include <deque>
#include <optional>

namespace apsis::budget {

using SteadyTime = std::chrono::steady_clock::time_point;
using Milliseconds = std::chrono::milliseconds;

struct Limit {
  int count{1};
  Milliseconds window{std::chrono::seconds(1)};
  friend bool operator==(const Limit&, const Limit&) = default;
};

class CallWindow {
 public:
  static constexpr double kSlowest = 0.1;
  static constexpr double kRecoveryPerQuietMinute = 0.1;

  explicit CallWindow(Limit limit) : limit_(limit) {}

  // The limit in force at `now`, after any slowdown.
  Limit effective(SteadyTime now) const;
  double pace(SteadyTime now) const;  // 1 = the configured budget, 0.1 = a tenth of it

  // When the next request may be sent: `now` or later, or nullopt while it has to wait for a
  // request in flight to be answered first.
  std::optional<SteadyTime> allowed_at(SteadyTime now) const;

  void sent();                   // a request is on its way
  void answered(SteadyTime now);  // ... and its answer is in (or it failed)
  void withdrawn();               // ... or it was never sent after all: it does not count
  void throttled(SteadyTime now);  // APSIS One answered 429

  int in_flight() const { return in_flight_; }
  // A new configured limit (a reload); the requests already counted stay counted.
  void set_limit(Limit limit) { limit_ = limit; }
  const Limit& limit() const { return limit_; }

 private:
  Limit limit_;
  std::deque<SteadyTime> answered_;  // answer times still inside some window, oldest first
  int in_flight_{0};
  double pace_at_change_{1.0};
  std::optional<SteadyTime> changed_at_;    // the last 429 that slowed the pace
};

}  // namespace apsis::budget
