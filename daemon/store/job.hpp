// A job: one run of one export for one scheduled slot, as recorded in the job table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/time.hpp"

namespace apsis::store {

// pending → submitted → downloading → succeeded | failed | expired; skipped: the slot came while the
// export's previous job was still running (overlap: skip) and was recorded, not run.
enum class JobState { pending, submitted, downloading, succeeded, failed, expired, skipped };

std::string_view to_string(JobState);
std::optional<JobState> parse_job_state(std::string_view);
inline bool is_final(JobState s) {
  return s == JobState::succeeded || s == JobState::failed || s == JobState::expired || s == JobState::skipped;
}

struct Job {
  std::int64_t id{0};
  std::string export_name;
  TimePoint scheduled_for{};
  JobState state{JobState::pending};
  std::string definition_json;  // the definition the job runs with, without secrets
  TimePoint created_at{};
  int submit_attempts{0};
  std::optional<TimePoint> submitted_at;
  std::optional<std::string> poll_url;
  std::optional<std::string> poll_url_field;  // config::PollUrlField's name: how to read poll answers
  std::optional<TimePoint> poll_expires_at;
  int polls{0};
  std::optional<int> last_http_status;
  std::optional<TimePoint> next_poll_at;
  int download_attempts{0};
  int resubmits{0};
  int polls_503_in_a_row{0};
  std::optional<std::string> previous_poll_url;  // the URL given up on at the last resubmit
  std::optional<std::string> resubmit_reason;    // ... and why
  std::optional<TimePoint> window_start;         // event exports with window: start_at/end_at asked for
  std::optional<TimePoint> window_end;
  std::optional<std::string> content_type;
  std::optional<std::string> content_encoding;
  std::optional<TimePoint> finished_at;
  std::optional<std::string> error;
  std::optional<std::string> output_path;
  std::optional<std::int64_t> bytes;
  std::optional<std::string> sha256;
  std::optional<std::string> manifest_path;
  std::optional<std::string> hook_result;  // the on_success command's outcome; the job stays succeeded
  std::optional<TimePoint> file_removed_at;  // retention deleted the published file
};

}  // namespace apsis::store
