// How long JobStore calls took: every call blocks the event loop, so the longest one is the longest
// the loop waited on SQLite. Microsecond buckets (metrics/histogram.hpp counts whole milliseconds,
// and most SQLite calls take less than one). Plain counters: the store is single-threaded.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace apsis::store {

class CallTimes {
 public:
  using Duration = std::chrono::nanoseconds;
  // Bucket upper bounds: from a cached read to a write that waited out the busy timeout.
  static constexpr std::array<std::chrono::microseconds, 12> kBounds{
      std::chrono::microseconds(100),    std::chrono::microseconds(250),    std::chrono::microseconds(500),
      std::chrono::microseconds(1000),   std::chrono::microseconds(2500),   std::chrono::microseconds(5000),
      std::chrono::microseconds(10000),  std::chrono::microseconds(25000),  std::chrono::microseconds(50000),
      std::chrono::microseconds(100000), std::chrono::microseconds(250000), std::chrono::microseconds(1000000)};

  void record(Duration took) {
    ++calls_;
    total_ += took;
    if (took > max_) max_ = took;
    for (std::size_t i = 0; i < kBounds.size(); ++i)
      if (took <= kBounds[i]) ++at_most_[i];
  }

  std::uint64_t calls() const { return calls_; }
  Duration max() const { return max_; }
  Duration total() const { return total_; }
  // Calls that took at most kBounds[i]: a cumulative bucket of a Prometheus histogram.
  std::uint64_t count_at_most(std::size_t i) const { return at_most_[i]; }

 private:
  std::uint64_t calls_{0};
  Duration max_{0};
  Duration total_{0};
  std::array<std::uint64_t, kBounds.size()> at_most_{};
};

}  // namespace apsis::store
