// A fixed-bucket latency histogram: constant memory however many samples, cheap enough to record on
// every poll, and precise to a millisecond below four seconds (enough for timer lateness).
#pragma once

#include <array>
#include <cstdint>

#include "util/time.hpp"

namespace apsis::metrics {

class MillisecondHistogram {
 public:
  static constexpr std::size_t kBuckets = 4096;  // [0,1) ms … [4094,4095) ms, then one overflow bucket

  void record(Milliseconds value);

  std::uint64_t count() const { return count_; }
  Milliseconds sum() const { return sum_; }
  // Samples of at most `bound`: a cumulative bucket of a Prometheus histogram.
  std::uint64_t count_at_most(Milliseconds bound) const;
  Milliseconds max() const { return max_; }
  // The upper bound of the bucket holding the q-quantile (0 < q ≤ 1); values past the last bucket
  // report the largest value seen.
  Milliseconds quantile(double q) const;

 private:
  std::array<std::uint32_t, kBuckets + 1> buckets_{};
  std::uint64_t count_{0};
  Milliseconds sum_{0};
  Milliseconds max_{0};
};

}  // namespace apsis::metrics
