#include "jobs/job_row.hpp"

namespace apsis::jobs {

JobRow to_job_row(const store::Job& job) {
  JobRow row;
  row.id = job.id;
  row.scheduled_for = job.scheduled_for;
  row.created_at = job.created_at;
  row.state = job.state;
  row.poll_url_field = config::parse_poll_url_field(job.poll_url_field.value_or(""))
                           .value_or(config::PollUrlField::file_download_url);
  row.last_http_status = job.last_http_status.value_or(0);
  row.submit_attempts = job.submit_attempts;
  row.polls = job.polls;
  row.download_attempts = job.download_attempts;
  row.resubmits = job.resubmits;
  row.polls_503_in_a_row = job.polls_503_in_a_row;
  row.poll_url = job.poll_url.value_or("");
  row.submitted_at = job.submitted_at;
  row.poll_expires_at = job.poll_expires_at;
  row.next_poll_at = job.next_poll_at;
  row.window_start = job.window_start;
  row.window_end = job.window_end;
  return row;
}

}  // namespace apsis::jobs
