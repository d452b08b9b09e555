// Requests per second with a burst allowance (a token bucket, computed as GCRA: one timestamp, no
// refill timer). Coroutines on one strand call take() before each request.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <chrono>

#include "util/sleep.hpp"

namespace apsis {

class RateLimiter {
 public:
  using SteadyClock = std::chrono::steady_clock;

  // per_second <= 0 means unlimited.
  explicit RateLimiter(double per_second, double burst = 0)
      : interval_(per_second > 0 ? std::chrono::duration_cast<SteadyClock::duration>(
                                       std::chrono::duration<double>(1.0 / per_second))
                                 : SteadyClock::duration::zero()),
        burst_window_(interval_ * static_cast<long>(std::max(0.0, (burst > 0 ? burst : per_second) - 1))) {}

  // How long a request asked for at `now` must wait; records it as sent then. Pure, for tests.
  SteadyClock::duration reserve(SteadyClock::time_point now) {
    if (interval_ == SteadyClock::duration::zero()) return SteadyClock::duration::zero();
    const auto arrival = std::max(theoretical_arrival_, now);
    const auto allowed_at = arrival - burst_window_;
    theoretical_arrival_ = arrival + interval_;
    return allowed_at > now ? allowed_at - now : SteadyClock::duration::zero();
  }

  boost::asio::awaitable<void> take() {
    const auto wait = reserve(SteadyClock::now());
    if (wait > SteadyClock::duration::zero()) co_await sleep_for(std::chrono::ceil<Milliseconds>(wait));
  }

 private:
  SteadyClock::duration interval_;
  SteadyClock::duration burst_window_;
  SteadyClock::time_point theoretical_arrival_{};
};

}  // namespace apsis
