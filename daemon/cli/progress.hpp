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
  std::optional<TimePoint> download_started;  // nullopt: bytes_received unknown
  TimePoint started{};                  // when `once` began
  TimePoint now{};
};

// "job 12 · waiting for the file · 7 polls · next in 23s · 1m 5s" or
// "job 12 · downloading · 43 MiB · 21 MiB/s · 1m 7s".
std::string describe_progress(const ProgressSnapshot& snapshot);

}  // namespace apsis::cli
