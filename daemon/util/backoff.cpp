#include "util/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace apsis {

Milliseconds backoff_ceiling(const BackoffPolicy& policy, int attempt) {
  const double initial = static_cast<double>(policy.initial_delay.count());
  const double cap = static_cast<double>(policy.max_delay.count());
  // pow may overflow to inf for large attempts; min() then caps it.
  const double grown = initial * std::pow(policy.multiplier, std::max(attempt, 0));
  return Milliseconds(static_cast<Milliseconds::rep>(std::min(grown, cap)));
}

Milliseconds full_jitter(Milliseconds ceiling, Random& random) {
  if (ceiling.count() <= 0) return Milliseconds(0);
  std::uniform_int_distribution<Milliseconds::rep> pick(0, ceiling.count());
  return Milliseconds(pick(random));
}

TimePoint next_poll_time(TimePoint now, Milliseconds delay, TimePoint poll_expires_at) {
  return std::min(now + delay, poll_expires_at);
}

}  // namespace apsis
