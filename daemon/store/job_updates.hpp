// The narrow updates of a job row: each names what changed and writes only those columns, so two
// writers of one row (a job and another job's retention, say) never clobber each other's columns.
// Plain values; JobStore::record_* writes each one in one UPDATE.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "store/job.hpp"
#include "util/time.hpp"

namespace apsis::store {

// An export request is about to be sent (submit_attempts counts it), with the event window asked for.
struct SubmitAttempt {
  int submit_attempts{0};
  std::optional<TimePoint> window_start, window_end;
};

// APSIS One accepted the export: state → submitted, polls_503_in_a_row → 0.
struct SubmittedColumns {
  TimePoint submitted_at{};
  std::string poll_url;
  std::string poll_url_field;
  TimePoint poll_expires_at{};
  int last_http_status{0};
  TimePoint next_poll_at{};
};

// A poll answered "still in progress" (or asked to wait): written in batches, one transaction each.
struct PollProgress {
  std::int64_t id{0};
  JobState state{JobState::submitted};
  int polls{0};
  std::optional<TimePoint> next_poll_at;
  std::optional<int> last_http_status;
  int polls_503_in_a_row{0};
  int download_attempts{0};
};

// The file is ready and its body is about to be read: state → downloading.
struct DownloadStarted {
  int download_attempts{0};
  int last_http_status{0};
  std::optional<std::string> content_type, content_encoding;
  int polls{0};  // the 200 counts as a poll, and ends any run of 503s
};

// The poll URL is given up on and a new export requested for the same slot: state → pending; the
// old URL's columns (poll_url, poll_url_field, poll_expires_at, next_poll_at) cleared,
// polls_503_in_a_row zeroed, as jobs/resubmit_rules' prepare_resubmit does to a whole row.
struct Resubmitting {
  int resubmits{0};
  std::string previous_poll_url;
  std::string resubmit_reason;
  std::string error;
  int polls{0};  // the answer that gave up on the URL counts
};

// The file is in place under its final name: state → succeeded, error and next_poll_at NULL.
struct PublishedColumns {
  std::string output_path;
  std::int64_t bytes{0};
  std::string sha256;
  std::optional<std::string> manifest_path;
  TimePoint finished_at{};
  int last_http_status{0};
};

// Any other final state (failed, expired, skipped; succeeded goes through PublishedColumns):
// next_poll_at NULL.
struct FinishedColumns {
  JobState state{JobState::failed};
  TimePoint finished_at{};
  std::optional<std::string> error;
  std::optional<int> last_http_status;
  // The job's counters as it ended (the answer that ended it counts); empty: left as they are.
  std::optional<int> polls;
  std::optional<int> polls_503_in_a_row;
  // A file the job published before it failed (its manifest could not be written, or the row saying
  // "succeeded" could not): the row must still name what is on disk. Empty: left as they are.
  std::optional<std::string> output_path;
  std::optional<std::int64_t> bytes;
  std::optional<std::string> sha256;
  std::optional<std::string> manifest_path;
};

}  // namespace apsis::store
