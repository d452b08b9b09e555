#include "jobs/resubmit_rules.hpp"

namespace apsis::jobs {

bool export_failed(const config::PollingPolicy& polling, const store::Job& job) {
  return job.polls_503_in_a_row >= std::max(1, polling.failed_export_after_503s);
}

bool should_resubmit(const config::ExportDefinition& definition, const store::Job& job, GiveUp reason) {
  if (job.resubmits >= definition.max_resubmits) return false;
  switch (reason) {
    case GiveUp::expired: return definition.on_expired == config::OnExpired::resubmit;
    case GiveUp::export_failed: return definition.on_failed_export == config::OnFailedExport::resubmit;
  }
  return false;
}

void prepare_resubmit(store::Job& job, const std::string& reason) {
  ++job.resubmits;
  job.state = store::JobState::pending;
  job.previous_poll_url = std::move(job.poll_url);
  job.resubmit_reason = reason;
  job.poll_url.reset();
  job.poll_url_field.reset();
  job.poll_expires_at.reset();
  job.next_poll_at.reset();
  job.polls_503_in_a_row = 0;
}

}  // namespace apsis::jobs
