// What the daemon measures about itself while it runs. Owned by the daemon, written by jobs and API
// clients on the one event-loop thread, so plain counters suffice. /metrics renders them
// (service/admin_metrics), the daemon logs a summary when it stops, benchmarks read that summary.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "metrics/histogram.hpp"

namespace apsis::metrics {

// Which APSIS One request an HTTP answer belongs to.
enum class Request { token, submit, poll };
std::string_view to_string(Request);

struct Metrics {
  // How late each back-off timer woke its job against the poll time recorded in the row: the cost
  // of many timers on one loop, and the figure benchmarks report.
  MillisecondHistogram poll_timer_lateness;
  // Row updates by running jobs: the job table's write load, which benchmarks report per job-hour.
  std::uint64_t job_row_writes{0};

  std::uint64_t submissions{0};  // export POSTs sent, retries included
  std::uint64_t polls{0};        // GETs on poll URLs
  std::map<std::pair<Request, unsigned>, std::uint64_t> http_responses;  // by request and status code
  std::uint64_t token_renewals{0};  // tokens fetched from the token endpoint
  std::uint64_t bytes_downloaded{0};
  std::uint64_t downloads{0};        // files published
  double download_seconds{0};        // first body byte to published, summed over downloads
  std::map<std::string, std::uint64_t> hook_runs;  // on_success commands by outcome: ok, failed, timeout
  std::uint64_t files_removed{0};   // by retention (keep:)

  void count_response(Request request, unsigned status) { ++http_responses[{request, status}]; }
};

}  // namespace apsis::metrics
