// `once` on a terminal: one line, redrawn in place, saying where the job stands.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "store/job.hpp"
#include "util/time.hpp"

namespace apsis::cli {

struct ProgressSnapshot {
  store::Job job;                       // the row as the job holds it now
  std::uint64_t bytes_received{0};      // of the download under way
  std::optional<TimePoint> download_started;
  TimePoint started{};                  // when `once` began
  TimePoint now{};
};

// "job 12 · polling · 7 polls · next in 23s · 1m05s" or "job 12 · downloading · 12.3 MB · 45.1 MB/s · 1m05s".
std::string describe_progress(const ProgressSnapshot& snapshot);

// "812 B", "12.3 kB", "45.1 MB", "1.20 GB" (decimal units, like the rates).
std::string human_bytes(double bytes);
// "850ms", "23s", "1m05s", "2h03m".
std::string human_duration(Milliseconds duration);

}  // namespace apsis::cli
