// What the daemon measures about itself while it runs. Owned by the daemon, written by jobs on the
// one event-loop thread, so plain counters suffice.
#pragma once

#include <cstdint>

#include "metrics/histogram.hpp"

namespace apsis::metrics {

struct Metrics {
  // How late each back-off timer woke its job against the poll time recorded in the row: the cost
  // of many timers on one loop, and the figure benchmarks report.
  MillisecondHistogram poll_timer_lateness;
  // Row updates by running jobs: the job table's write load, which benchmarks report per job-hour.
  std::uint64_t job_row_writes{0};
};

}  // namespace apsis::metrics
