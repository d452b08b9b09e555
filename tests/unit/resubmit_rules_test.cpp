#include <doctest/doctest.h>

#include "jobs/decide.hpp"
#include "jobs/resubmit_rules.hpp"
#include "jobs/submit_body.hpp"

using namespace apsis;
using namespace apsis::jobs;
using namespace std::chrono_literals;

TEST_CASE("503s in a row: one is a gateway hiccup, failed_export_after_503s mean a failed export") {
  config::PollingPolicy polling;  // default: 3
  JobRow job;
  for (const auto& [in_a_row, failed] : {std::pair{0, false}, {1, false}, {2, false}, {3, true}, {4, true}}) {
    job.polls_503_in_a_row = in_a_row;
    CAPTURE(in_a_row);
    CHECK(export_failed(polling, job) == failed);
  }
  polling.failed_export_after_503s = 1;
  job.polls_503_in_a_row = 1;
  CHECK(export_failed(polling, job));
}

TEST_CASE("expired URLs and failed exports share max_resubmits, each with its own switch") {
  struct Row {
    config::OnExpired on_expired;
    config::OnFailedExport on_failed;
    int max_resubmits;
    int resubmits;
    GiveUp reason;
    bool resubmit;
  };
  using E = config::OnExpired;
  using F = config::OnFailedExport;
  const Row table[] = {
      {E::resubmit, F::resubmit, 1, 0, GiveUp::expired, true},
      {E::resubmit, F::resubmit, 1, 0, GiveUp::export_failed, true},
      {E::resubmit, F::resubmit, 1, 1, GiveUp::expired, false},        // the one resubmit is spent...
      {E::resubmit, F::resubmit, 1, 1, GiveUp::export_failed, false},  // ...whichever reason spent it
      {E::fail, F::resubmit, 1, 0, GiveUp::expired, false},
      {E::fail, F::resubmit, 1, 0, GiveUp::export_failed, true},
      {E::resubmit, F::fail, 1, 0, GiveUp::export_failed, false},
      {E::resubmit, F::fail, 1, 0, GiveUp::expired, true},
      {E::resubmit, F::resubmit, 0, 0, GiveUp::expired, false},
      {E::resubmit, F::resubmit, 3, 2, GiveUp::export_failed, true},
  };
  for (const auto& row : table) {
    JobPolicy policy;
    policy.on_expired = row.on_expired;
    policy.on_failed_export = row.on_failed;
    policy.max_resubmits = row.max_resubmits;
    JobRow job;
    job.resubmits = row.resubmits;
    CAPTURE(row.max_resubmits);
    CAPTURE(row.resubmits);
    CHECK(should_resubmit(policy, job, row.reason) == row.resubmit);
  }
}

TEST_CASE("a resubmit clears the old URL's state") {
  JobRow job;
  job.state = store::JobState::submitted;
  job.poll_url = "https://api.apsis.one/exports/1";
  job.poll_url_field = config::PollUrlField::file_download_url_v2;
  job.poll_expires_at = TimePoint(1000s);
  job.next_poll_at = TimePoint(900s);
  job.polls_503_in_a_row = 3;
  job.polls = 12;
  prepare_resubmit(job);
  CHECK(job.state == store::JobState::pending);
  CHECK(job.resubmits == 1);
  CHECK(job.poll_url.empty());
  CHECK(job.poll_url_field == config::PollUrlField::file_download_url);
  CHECK_FALSE(job.poll_expires_at);
  CHECK_FALSE(job.next_poll_at);
  CHECK(job.polls_503_in_a_row == 0);
  CHECK(job.polls == 12);  // polls count every GET of the job, old URL included
}

TEST_CASE("an event export's window is fixed once per job and fills start_at/end_at unless set") {
  config::ExportDefinition events;
  events.kind = config::ExportKind::events;
  events.window = 24h;
  events.request_json = R"({"attributes":["email"],"events":["opened"]})";
  JobRow job;
  job.scheduled_for = *parse_iso8601("2026-11-30T06:00:00.000Z");
  CHECK(fix_event_window(events, job));
  CHECK(job.window_start == parse_iso8601("2026-11-29T06:00:00.000Z"));
  CHECK(job.window_end == parse_iso8601("2026-11-30T06:00:00.000Z"));
  CHECK(submit_body(events, job) ==
        R"({"attributes":["email"],"events":["opened"],"start_at":"2026-11-29T06:00:00.000Z","end_at":"2026-11-30T06:00:00.000Z"})");

  // A second submit of the same job (resubmit, restart) keeps the window, even if the clock moved.
  job.scheduled_for = *parse_iso8601("2026-12-01T06:00:00.000Z");
  CHECK_FALSE(fix_event_window(events, job));
  CHECK(job.window_start == parse_iso8601("2026-11-29T06:00:00.000Z"));

  // A request that sets start_at keeps it.
  events.request_json = R"({"tags":["vip"],"start_at":"2026-01-01T00:00:00Z"})";
  CHECK(submit_body(events, job) ==
        R"({"tags":["vip"],"start_at":"2026-01-01T00:00:00Z","end_at":"2026-11-30T06:00:00.000Z"})");

  // Other kinds and event exports without a window send the request unchanged.
  config::ExportDefinition duplicates;
  duplicates.request_json = R"({"a":1})";
  JobRow other;
  CHECK_FALSE(fix_event_window(duplicates, other));
  CHECK(submit_body(duplicates, other) == R"({"a":1})");
}
