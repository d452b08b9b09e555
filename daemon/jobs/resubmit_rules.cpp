#include "jobs/resubmit_rules.hpp"

#include <algorithm>

#include "jobs/decide.hpp"

namespace apsis::jobs {

bool export_failed(const config::PollingPolicy& polling, const JobRow& job) {
  return job.polls_503_in_a_row >= std::max(1, polling.failed_export_after_503s);
}

bool should_resubmit(const JobPolicy& policy, const JobRow& job, GiveUp reason) {
  if (job.resubmits >= policy.max_resubmits) return false;
  switch (reason) {
    case GiveUp::expired: return policy.on_expired == config::OnExpired::resubmit;
    case GiveUp::export_failed: return policy.on_failed_export == config::OnFailedExport::resubmit;
  }
  return false;
}

void prepare_resubmit(JobRow& job) {
  ++job.resubmits;
  job.state = store::JobState::pending;
  job.poll_url.clear();
  job.poll_url_field = config::PollUrlField::file_download_url;
  job.poll_expires_at.reset();
  job.next_poll_at.reset();
  job.polls_503_in_a_row = 0;
}

}  // namespace apsis::jobs
