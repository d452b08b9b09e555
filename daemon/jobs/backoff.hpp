// Exponential back-off with full jitter. Pure: the random source is passed in, so tests can pin it.
#pragma once

#include <random>

#include "config/config.hpp"
#include "util/time.hpp"

namespace apsis::jobs {

using Random = std::mt19937_64;

// min(max_delay, initial_delay * multiplier^attempt); attempt counts from 0.
Milliseconds backoff_ceiling(const config::BackoffPolicy& policy, int attempt);

// Uniform in [0, ceiling]: "full jitter", so thousands of jobs submitted together spread their polls
// instead of hitting the API in waves.
Milliseconds full_jitter(Milliseconds ceiling, Random& random);

inline Milliseconds backoff_delay(const config::BackoffPolicy& policy, int attempt, Random& random) {
  return full_jitter(backoff_ceiling(policy, attempt), random);
}

// When to poll next: after the jittered delay, but never past the URL's expiry, so the last poll
// happens while the URL is still valid.
TimePoint next_poll_time(TimePoint now, Milliseconds delay, TimePoint poll_expires_at);

}  // namespace apsis::jobs
