#include "metrics/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace apsis::metrics {

void MillisecondHistogram::record(Milliseconds value) {
  const auto ms = std::max<std::int64_t>(0, value.count());
  ++buckets_[static_cast<std::size_t>(std::min<std::int64_t>(ms, kBuckets))];
  ++count_;
  sum_ += Milliseconds(ms);
  max_ = std::max(max_, Milliseconds(ms));
}

std::uint64_t MillisecondHistogram::count_at_most(Milliseconds bound) const {
  if (bound.count() < 0) return 0;
  if (bound >= max_) return count_;
  std::uint64_t seen = 0;
  const auto last = std::min<std::int64_t>(bound.count(), kBuckets - 1);
  for (std::int64_t i = 0; i <= last; ++i) seen += buckets_[static_cast<std::size_t>(i)];
  return seen;
}

Milliseconds MillisecondHistogram::quantile(double q) const {
  if (count_ == 0) return Milliseconds(0);
  const auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= std::max<std::uint64_t>(rank, 1)) return Milliseconds(static_cast<std::int64_t>(i) + 1);
  }
  return max_;
}

}  // namespace apsis::metrics
