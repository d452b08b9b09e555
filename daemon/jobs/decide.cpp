#include "jobs/decide.hpp"

#include "jobs/resubmit_rules.hpp"

namespace apsis::jobs {
namespace {

using apsis_one::Verdict;
using store::JobState;

// One decision at a time: the row, the policy and the clock it is made with.
class Decider {
 public:
  Decider(JobRow row, const JobPolicy& policy, TimePoint now, Random& random)
      : policy_(policy), now_(now), random_(random) {
    decision_.row = std::move(row);
  }

  Decision operator()(const event::Resumed&) {
    if (row().state == JobState::pending) return submit();
    return poll_at(row().next_poll_at.value_or(now_), row().state, RowWrite::none);
  }

  Decision operator()(const event::PollTurn&) {
    if (now_ >= row().poll_expires_at.value_or(TimePoint::max()))
      return give_up(GiveUp::expired, "the poll URL's validity ended after " + std::to_string(row().polls) +
                                          " polls without the file becoming ready");
    decision_.action = Action::poll;  // now
    return std::move(decision_);
  }

  Decision operator()(const event::SubmitAccepted& accepted) {
    auto& job = row();
    job.state = JobState::submitted;
    job.submitted_at = now_;
    job.poll_url = accepted.poll_url;
    job.poll_url_field = accepted.field;
    job.polls_503_in_a_row = 0;
    job.poll_expires_at = now_ + policy_.polling.url_validity;
    job.last_http_status = static_cast<std::int32_t>(accepted.status);
    return poll_after(backoff_delay(policy_.polling.backoff, 0, random_), JobState::submitted, RowWrite::submitted);
  }

  Decision operator()(const event::ApiFailed& failed) {
    if (failed.status) row().last_http_status = static_cast<std::int32_t>(*failed.status);
    return finish(JobState::failed, failed.reason);
  }

  Decision operator()(const event::PollAnswered& answer) {
    auto& job = row();
    ++job.polls;
    if (answer.status != 0) job.last_http_status = static_cast<std::int32_t>(answer.status);
    // A run of 503s is broken by any other answer; written at once, so that after a restart stale
    // 503s never count towards a failed export.
    const bool run_of_503s_broken =
        answer.status != 0 && answer.verdict != Verdict::export_failing && job.polls_503_in_a_row != 0;
    if (run_of_503s_broken) job.polls_503_in_a_row = 0;
    switch (answer.verdict) {
      case Verdict::success:
        job.state = JobState::downloading;
        ++job.download_attempts;
        decision_.action = Action::download;
        decision_.write = RowWrite::download_started;
        return std::move(decision_);
      case Verdict::in_progress:
        return poll_after(backoff_delay(policy_.polling.backoff, job.polls, random_), JobState::submitted,
                          run_of_503s_broken ? RowWrite::progress : RowWrite::progress_batched);
      case Verdict::gone:
        return give_up(GiveUp::expired, answer.detail);
      case Verdict::export_failing:
        return on_503(answer.detail);
      case Verdict::rate_limited:
      case Verdict::transient:
        decision_.warning = answer.detail;
        if (answer.body_cut) return fetch_again(answer.detail);
        return poll_after(answer.retry_after.value_or(backoff_delay(policy_.polling.backoff, job.polls, random_)),
                          JobState::submitted, RowWrite::progress);
      case Verdict::unknown_export:
      case Verdict::token_rejected:
      case Verdict::permanent:
        break;
    }
    return finish(JobState::failed, answer.detail);
  }

  Decision operator()(const event::DownloadFailed& failed) {
    if (!failed.retryable) return finish(JobState::failed, "publishing the file failed: " + failed.reason);
    decision_.warning = failed.reason + "; downloading again";
    return fetch_again(failed.reason);
  }

  Decision operator()(const event::Published&) {
    decision_.write = RowWrite::published;
    decision_.row.state = JobState::succeeded;
    decision_.row.next_poll_at.reset();
    decision_.action = Action::finish;
    return std::move(decision_);
  }

  Decision operator()(const event::Failed& failed) { return finish(JobState::failed, failed.reason); }

 private:
  JobRow& row() { return decision_.row; }

  Decision submit() {
    decision_.action = Action::submit;
    return std::move(decision_);
  }

  Decision poll_at(TimePoint at, JobState state, RowWrite write) {
    row().state = state;
    row().next_poll_at = at;
    decision_.action = Action::poll;
    decision_.write = write;
    return std::move(decision_);
  }

  // Never past the URL's expiry, so the last poll happens while the URL is still valid.
  Decision poll_after(Milliseconds delay, JobState state, RowWrite write) {
    return poll_at(next_poll_time(now_, delay, row().poll_expires_at.value_or(TimePoint::max())), state, write);
  }

  // A body that was not the whole file: the same URL serves it again, up to max_download_attempts.
  Decision fetch_again(const std::string& why) {
    const auto attempts = row().download_attempts;
    if (attempts >= policy_.retry.max_download_attempts)
      return finish(JobState::failed, "gave up after " + std::to_string(attempts) + " download attempts; last: " + why);
    return poll_after(backoff_delay(policy_.retry.backoff, std::max(0, attempts - 1), random_), JobState::downloading,
                      RowWrite::progress);
  }

  // A 503: the export failed at APSIS if it keeps coming; until then the URL is asked again soon
  // (the retry back-off, seconds), not on the poll back-off.
  Decision on_503(const std::string& detail) {
    auto& job = row();
    ++job.polls_503_in_a_row;
    if (export_failed(policy_.polling, job))
      return give_up(GiveUp::export_failed, "the export failed at APSIS One: its poll URL answered 503 " +
                                                std::to_string(job.polls_503_in_a_row) + " times in a row (" + detail +
                                                ")");
    decision_.warning = detail + " (" + std::to_string(job.polls_503_in_a_row) + " in a row; " +
                        std::to_string(policy_.polling.failed_export_after_503s) + " mean the export failed)";
    return poll_after(backoff_delay(policy_.retry.backoff, job.polls_503_in_a_row - 1, random_), JobState::submitted,
                      RowWrite::progress);
  }

  Decision give_up(GiveUp reason, const std::string& why) {
    if (!should_resubmit(policy_, row(), reason))
      return finish(reason == GiveUp::expired ? JobState::expired : JobState::failed, why);
    // A new export for the same slot, in the same row: the slot keeps exactly one job.
    decision_.previous_poll_url = row().poll_url;
    prepare_resubmit(row());
    const char* rule = reason == GiveUp::expired ? "on_expired" : "on_failed_export";
    decision_.resubmit_reason = why;
    decision_.error = why + "; requesting a new export (" + rule + ": resubmit, " + std::to_string(row().resubmits) +
                      " of max_resubmits " + std::to_string(policy_.max_resubmits) + ")";
    decision_.warning = decision_.error;
    decision_.write = RowWrite::resubmit;
    return submit();
  }

  Decision finish(JobState state, std::string why) {
    row().state = state;
    row().next_poll_at.reset();
    decision_.error = std::move(why);
    decision_.action = Action::finish;
    decision_.write = RowWrite::finished;
    return std::move(decision_);
  }

  Decision decision_;
  const JobPolicy& policy_;
  TimePoint now_;
  Random& random_;
};

}  // namespace

JobPolicy job_policy(const config::ExportDefinition& definition, const config::RetryPolicy& retry) {
  return {definition.polling, retry, definition.max_resubmits, definition.on_expired, definition.on_failed_export};
}

Decision decide(JobRow row, const Event& event, const JobPolicy& policy, TimePoint now, Random& random) {
  return std::visit(Decider(std::move(row), policy, now, random), event);
}

}  // namespace apsis::jobs
