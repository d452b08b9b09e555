// Exponential back-off with full jitter. Pure: the random source is passed in, so tests can pin it.
#pragma once

#include <chrono>
#include <random>

#include "util/time.hpp"

namespace apsis {

using Random = std::mt19937_64;

// Exponential back-off with full jitter: delay n is uniform in [0, min(max_delay, initial * multiplier^n)].
// Part of the configuration (BackoffPolicy names it there), but defined here so the back-off
// arithmetic sits below the config module.
struct BackoffPolicy {
  Milliseconds initial_delay{std::chrono::seconds(10)};
  double multiplier{2.0};
  Milliseconds max_delay{std::chrono::minutes(5)};
};

// min(max_delay, initial_delay * multiplier^attempt); attempt counts from 0.
Milliseconds backoff_ceiling(const BackoffPolicy& policy, int attempt);

// Uniform in [0, ceiling]: "full jitter", so thousands of jobs submitted together spread their polls
// instead of hitting the API in waves.
Milliseconds full_jitter(Milliseconds ceiling, Random& random);

inline Milliseconds backoff_delay(const BackoffPolicy& policy, int attempt, Random& random) {
  return full_jitter(backoff_ceiling(policy, attempt), random);
}

// When to poll next: after the jittered delay, but never past the URL's expiry, so the last poll
// happens while the URL is still valid.
TimePoint next_poll_time(TimePoint now, Milliseconds delay, TimePoint poll_expires_at);

}  // namespace apsis
