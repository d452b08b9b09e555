// A job in memory: the columns of its row that its protocol reads and writes, and nothing else.
// A waiting job is one of these plus an entry in its account's queue, so it is kept small: the
// export's definition is shared by all its jobs, and what only a person reads (errors, previous
// URLs, file details) lives in the table alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "store/job.hpp"
#include "util/time.hpp"

namespace apsis::jobs {

struct JobRow {
  std::int64_t id{0};
  TimePoint scheduled_for{};
  TimePoint created_at{};
  store::JobState state{store::JobState::pending};
  config::PollUrlField poll_url_field{config::PollUrlField::file_download_url};
  std::int32_t last_http_status{0};  // 0: none yet
  std::int32_t submit_attempts{0};
  std::int32_t polls{0};
  std::int32_t download_attempts{0};
  std::int32_t resubmits{0};
  std::int32_t polls_503_in_a_row{0};
  std::string poll_url;  // empty until submitted
  std::optional<TimePoint> submitted_at;
  std::optional<TimePoint> poll_expires_at;
  std::optional<TimePoint> next_poll_at;
  std::optional<TimePoint> window_start;  // event exports with window: the start_at/end_at asked for
  std::optional<TimePoint> window_end;
};

// The in-memory part of a row read from the table. Rows from before poll_url_field was recorded
// hold a file_download_url.
JobRow to_job_row(const store::Job& job);

}  // namespace apsis::jobs
