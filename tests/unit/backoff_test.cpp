#include <doctest/doctest.h>

#include "util/backoff.hpp"

using namespace apsis;
using namespace std::chrono_literals;

TEST_CASE("backoff ceiling grows by the multiplier and stops at the cap") {
  const BackoffPolicy policy{10s, 2.0, 5min};
  CHECK(backoff_ceiling(policy, 0) == 10s);
  CHECK(backoff_ceiling(policy, 1) == 20s);
  CHECK(backoff_ceiling(policy, 2) == 40s);
  CHECK(backoff_ceiling(policy, 4) == 160s);
  CHECK(backoff_ceiling(policy, 5) == 5min);  // 320 s capped at 300 s
  CHECK(backoff_ceiling(policy, 60) == 5min);
  CHECK(backoff_ceiling(policy, 5000) == 5min);  // pow overflows to inf; still the cap
}

TEST_CASE("a multiplier of 1 keeps a constant ceiling") {
  const BackoffPolicy policy{3s, 1.0, 1min};
  for (int attempt = 0; attempt < 20; ++attempt) CHECK(backoff_ceiling(policy, attempt) == 3s);
}

TEST_CASE("full jitter stays within [0, ceiling] and actually spreads") {
  Random random(42);
  Milliseconds smallest = 1h, largest = 0ms;
  for (int i = 0; i < 10000; ++i) {
    const auto delay = full_jitter(10s, random);
    REQUIRE(delay >= 0ms);
    REQUIRE(delay <= 10s);
    smallest = std::min(smallest, delay);
    largest = std::max(largest, delay);
  }
  CHECK(smallest < 500ms);
  CHECK(largest > 9500ms);
  CHECK(full_jitter(0ms, random) == 0ms);
}

TEST_CASE("the same seed gives the same delays: back-off is reproducible in tests") {
  const BackoffPolicy policy{1s, 2.0, 1min};
  Random a(7), b(7);
  for (int attempt = 0; attempt < 10; ++attempt)
    CHECK(backoff_delay(policy, attempt, a) == backoff_delay(policy, attempt, b));
}

TEST_CASE("the next poll never lands after the poll URL expires") {
  const TimePoint submitted = Clock::from_time_t(1'800'000'000);
  const TimePoint expires = submitted + 24h;
  CHECK(next_poll_time(submitted, 10s, expires) == submitted + 10s);
  CHECK(next_poll_time(expires - 1min, 5min, expires) == expires);
  CHECK(next_poll_time(expires + 1s, 5min, expires) == expires);
}

TEST_CASE("a day of polling at the default policy stays bounded and reaches the cap") {
  // 10 s initial, x2, 5 min cap: the ceilings sum past 24 h after a bounded number of polls.
  const BackoffPolicy policy{10s, 2.0, 5min};
  Milliseconds total{0};
  int polls = 0;
  while (total < 24h) total += backoff_ceiling(policy, polls++);
  CHECK(polls == 5 + (24h - (10s + 20s + 40s + 80s + 160s)) / 5min + 1);
}
