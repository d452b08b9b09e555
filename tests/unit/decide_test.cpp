// decide(): every way a job moves, as a table of (row, event) → (state, action, write).
#include <doctest/doctest.h>

#include <functional>

#include "jobs/decide.hpp"

namespace apsis::jobs {
namespace {

using namespace std::chrono_literals;
using apsis_one::Verdict;
using store::JobState;

const TimePoint t0 = *parse_iso8601("2026-11-30T06:00:00.000Z");

JobRow polling_row() {
  JobRow row;
  row.id = 1;
  row.state = JobState::submitted;
  row.poll_url = "https://api.example/exports/1";
  row.submitted_at = t0 - 10min;
  row.poll_expires_at = t0 + 23h;
  row.next_poll_at = t0;
  row.polls = 4;
  return row;
}

event::PollAnswered answer(Verdict verdict, unsigned status, bool body_cut = false) {
  return {verdict, status, "detail " + std::to_string(status), std::nullopt, body_cut};
}

struct Row {
  const char* what;
  JobRow before;
  Event event;
  JobState state;
  Action action;
  RowWrite write;
};

JobRow with(JobRow row, const std::function<void(JobRow&)>& change) {
  change(row);
  return row;
}

}  // namespace

TEST_CASE("decide: the table") {
  const JobPolicy policy;  // 3 × 503 = failed export; on_expired/on_failed_export resubmit; max_resubmits 1
  const auto pending = with(JobRow{}, [](JobRow& r) { r.id = 1; });
  const auto after_resubmit = with(polling_row(), [](JobRow& r) { r.resubmits = 1; });
  const auto two_503s = with(polling_row(), [](JobRow& r) { r.polls_503_in_a_row = 2; });
  const auto downloading = with(polling_row(), [](JobRow& r) {
    r.state = JobState::downloading;
    r.download_attempts = 1;
  });
  const auto out_of_downloads = with(downloading, [](JobRow& r) { r.download_attempts = 5; });
  const auto past_expiry = with(polling_row(), [](JobRow& r) { r.poll_expires_at = t0 - 1s; });
  const Row table[] = {
      {"a new job submits", pending, event::Resumed{}, JobState::pending, Action::submit, RowWrite::none},
      {"a resumed polling job polls", polling_row(), event::Resumed{}, JobState::submitted, Action::poll, RowWrite::none},
      {"an accepted submit polls after the first back-off", pending,
       event::SubmitAccepted{"https://api.example/exports/9", config::PollUrlField::file_download_url, 200},
       JobState::submitted, Action::poll, RowWrite::submitted},
      {"a refused submit fails", pending, event::ApiFailed{"400 bad request", 400u}, JobState::failed,
       Action::finish, RowWrite::finished},
      {"its turn, URL valid: poll now", polling_row(), event::PollTurn{}, JobState::submitted, Action::poll,
       RowWrite::none},
      {"its turn, URL's day over: resubmit", past_expiry, event::PollTurn{}, JobState::pending, Action::submit,
       RowWrite::resubmit},
      {"404 in progress: poll again, batched", polling_row(), answer(Verdict::in_progress, 404), JobState::submitted,
       Action::poll, RowWrite::progress_batched},
      {"404 after a 503: the run is broken, written at once", with(polling_row(), [](JobRow& r) { r.polls_503_in_a_row = 1; }),
       answer(Verdict::in_progress, 404), JobState::submitted, Action::poll, RowWrite::progress},
      {"200: download", polling_row(), answer(Verdict::success, 200), JobState::downloading, Action::download,
       RowWrite::download_started},
      {"410: resubmit", polling_row(), answer(Verdict::gone, 410), JobState::pending, Action::submit, RowWrite::resubmit},
      {"410 with the resubmit spent: expired", after_resubmit, answer(Verdict::gone, 410), JobState::expired,
       Action::finish, RowWrite::finished},
      {"a lone 503: poll again soon", polling_row(), answer(Verdict::export_failing, 503), JobState::submitted,
       Action::poll, RowWrite::progress},
      {"the third 503 in a row: the export failed, resubmit", two_503s, answer(Verdict::export_failing, 503),
       JobState::pending, Action::submit, RowWrite::resubmit},
      {"a 429: poll again later", polling_row(), answer(Verdict::rate_limited, 429), JobState::submitted, Action::poll,
       RowWrite::progress},
      {"network trouble: poll again later", polling_row(), answer(Verdict::transient, 0), JobState::submitted,
       Action::poll, RowWrite::progress},
      {"v2 404: APSIS does not know the export", polling_row(), answer(Verdict::unknown_export, 404), JobState::failed,
       Action::finish, RowWrite::finished},
      {"403 not about the token: fail", polling_row(), answer(Verdict::permanent, 403), JobState::failed,
       Action::finish, RowWrite::finished},
      {"a cut body: fetch again", downloading, answer(Verdict::transient, 200, true), JobState::downloading,
       Action::poll, RowWrite::progress},
      {"a cut body, downloads spent: fail", out_of_downloads, answer(Verdict::transient, 200, true), JobState::failed,
       Action::finish, RowWrite::finished},
      {"a body failing its check: fetch again", downloading, event::DownloadFailed{"gzip trailer missing", true},
       JobState::downloading, Action::poll, RowWrite::progress},
      {"the disk failed: fail", downloading, event::DownloadFailed{"No space left on device", false}, JobState::failed,
       Action::finish, RowWrite::finished},
      {"published: succeeded", downloading, event::Published{}, JobState::succeeded, Action::finish,
       RowWrite::published},
      {"anything else: failed", polling_row(), event::Failed{"unusable answer"}, JobState::failed, Action::finish,
       RowWrite::finished},
  };
  for (const auto& row : table) {
    CAPTURE(row.what);
    Random random(7);
    const auto decision = decide(row.before, row.event, policy, t0, random);
    CHECK(decision.row.state == row.state);
    CHECK(decision.action == row.action);
    CHECK(decision.write == row.write);
    if (decision.action == Action::poll) {
      REQUIRE(decision.row.next_poll_at);
      CHECK(*decision.row.next_poll_at <= decision.row.poll_expires_at.value_or(TimePoint::max()));
    }
    if (decision.action == Action::finish) CHECK_FALSE(decision.row.next_poll_at);
  }
}

TEST_CASE("decide: counters and the columns each answer changes") {
  const JobPolicy policy;
  Random random(1);
  SUBCASE("every answer counts a poll; a 200 counts a download attempt") {
    auto decision = decide(polling_row(), answer(Verdict::success, 200), policy, t0, random);
    CHECK(decision.row.polls == 5);
    CHECK(decision.row.download_attempts == 1);
    CHECK(decision.row.last_http_status == 200);
  }
  SUBCASE("a network error keeps the last HTTP status") {
    auto row = polling_row();
    row.last_http_status = 404;
    CHECK(decide(row, answer(Verdict::transient, 0), policy, t0, random).row.last_http_status == 404);
  }
  SUBCASE("Retry-After is honoured on a 429") {
    auto retry = answer(Verdict::rate_limited, 429);
    retry.retry_after = 42s;
    CHECK(decide(polling_row(), retry, policy, t0, random).row.next_poll_at == t0 + 42s);
  }
  SUBCASE("a poll is never planned past the URL's expiry") {
    auto row = polling_row();
    row.poll_expires_at = t0 + 1s;
    row.polls = 30;  // the back-off is at its ceiling, minutes
    bool capped = false;
    for (int i = 0; i < 20; ++i)
      capped |= decide(row, answer(Verdict::in_progress, 404), policy, t0, random).row.next_poll_at == t0 + 1s;
    CHECK(capped);
  }
  SUBCASE("an accepted submit sets the URL, its field, its expiry and clears a 503 run") {
    auto row = polling_row();
    row.state = JobState::pending;
    row.polls_503_in_a_row = 2;
    const auto decision = decide(row, event::SubmitAccepted{"https://api.example/v2/9", config::PollUrlField::file_download_url_v2, 201},
                                 policy, t0, random);
    CHECK(decision.row.poll_url == "https://api.example/v2/9");
    CHECK(decision.row.poll_url_field == config::PollUrlField::file_download_url_v2);
    CHECK(decision.row.submitted_at == t0);
    CHECK(decision.row.poll_expires_at == t0 + 24h);
    CHECK(decision.row.polls_503_in_a_row == 0);
    CHECK(decision.row.last_http_status == 201);
  }
  SUBCASE("a resubmit says which URL it gave up on and why, and counts") {
    const auto decision = decide(polling_row(), answer(Verdict::gone, 410), policy, t0, random);
    CHECK(decision.previous_poll_url == "https://api.example/exports/1");
    CHECK(decision.resubmit_reason == "detail 410");
    CHECK(decision.row.resubmits == 1);
    CHECK(decision.row.poll_url.empty());
    CHECK(decision.error.find("on_expired: resubmit, 1 of max_resubmits 1") != std::string::npos);
  }
  SUBCASE("on_failed_export: fail ends the job failed, not expired") {
    auto strict = policy;
    strict.on_failed_export = config::OnFailedExport::fail;
    auto row = polling_row();
    row.polls_503_in_a_row = 2;
    const auto decision = decide(row, answer(Verdict::export_failing, 503), strict, t0, random);
    CHECK(decision.row.state == JobState::failed);
    CHECK(decision.error.find("503 3 times in a row") != std::string::npos);
  }
}

}  // namespace apsis::jobs
