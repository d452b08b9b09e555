// What a job does next: a pure function of its row, what just happened, its policy and the time.
//
//   pending ──submit──▶ submitted ──poll: 404/202──▶ submitted (poll again after the back-off)
//                           │  503 × N in a row, 410, URL's day over ──▶ resubmit (pending) | failed | expired
//                           └─200──▶ downloading ──published──▶ succeeded
//                                        └ body cut / not the whole file ──▶ downloading (poll again)
//
// The steps that do the I/O (job_steps.hpp) feed each outcome in here and carry out the decision:
// write the named part of the row, then submit, hand the job back to its account's queue to be
// polled, download, or finish. Table-tested in tests/unit/decide_test.cpp.
#pragma once

#include <optional>
#include <string>
#include <variant>

#include "apsis/protocol.hpp"
#include "config/config.hpp"
#include "util/backoff.hpp"
#include "jobs/job_row.hpp"

namespace apsis::jobs {

// The rules a job runs by: its export's, and the daemon's retry policy.
struct JobPolicy {
  config::PollingPolicy polling{};
  config::RetryPolicy retry{};
  int max_resubmits{1};
  config::OnExpired on_expired{config::OnExpired::resubmit};
  config::OnFailedExport on_failed_export{config::OnFailedExport::resubmit};
};
JobPolicy job_policy(const config::ExportDefinition& definition, const config::RetryPolicy& retry);

// What just happened.
namespace event {
struct Resumed {};   // created, or read back from the table at start: the row alone says where it stands
struct PollTurn {};  // the account's budget gives the job its poll now
struct SubmitAccepted {
  std::string poll_url;
  config::PollUrlField field{config::PollUrlField::file_download_url};
  unsigned status{0};
};
struct ApiFailed {  // a submit or a poll failed for good (apsis_one::ApiFailure): refused, retries ran out, an unusable URL
  std::string reason;
  std::optional<unsigned> status;
};
struct PollAnswered {
  apsis_one::Verdict verdict{apsis_one::Verdict::transient};
  unsigned status{0};  // 0: no answer (network trouble)
  std::string detail;
  std::optional<Milliseconds> retry_after;
  bool body_cut{false};  // a 200 whose body is not the whole file: fetch it again
};
struct DownloadFailed {  // after the 200: the body broke off or failed its check (retryable), or the disk failed
  std::string reason;
  bool retryable{true};
};
struct Published {};
struct Failed {  // anything else that ends the job: an unusable answer, a file that cannot be placed
  std::string reason;
};
}  // namespace event
using Event = std::variant<event::Resumed, event::PollTurn, event::SubmitAccepted, event::ApiFailed,
                           event::PollAnswered, event::DownloadFailed, event::Published, event::Failed>;

enum class Action {
  submit,    // POST the export (again)
  poll,      // wait in the account's queue until row.next_poll_at (or now), then poll
  download,  // the 200's body is in hand: drain it into the file and publish
  finish,    // row.state is final
};

// Which named update records the decision in the table (store/job_updates.hpp).
enum class RowWrite {
  none,
  submitted,
  progress_batched,  // a 404/202: losing it in a crash costs one early poll, so it may wait for a batch
  progress,          // written before the next poll
  download_started,  // written before the first body byte
  resubmit,
  finished,
  published,
};

struct Decision {
  JobRow row;
  Action action{Action::poll};
  RowWrite write{RowWrite::none};
  std::string error;             // finish: why (empty on success); resubmit: what the row's error says
  std::string resubmit_reason;   // resubmit: why the old URL was given up
  std::string previous_poll_url;
  std::string warning;           // worth a line in the job's log
};

Decision decide(JobRow row, const Event& event, const JobPolicy& policy, TimePoint now, Random& random);

}  // namespace apsis::jobs
