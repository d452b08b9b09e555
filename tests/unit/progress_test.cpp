#include <doctest/doctest.h>

#include "cli/progress.hpp"

using namespace apsis;
using namespace apsis::cli;
using namespace std::chrono_literals;

TEST_CASE("progress says what the job is doing") {
  const TimePoint start = *parse_iso8601("2026-11-29T12:00:00.000Z");
  ProgressSnapshot s;
  s.job.id = 12;
  s.started = start;
  s.now = start + 65s;
  s.job.state = store::JobState::pending;
  CHECK(describe_progress(s) == "job 12 · submitting · 1m 5s");
  s.job.state = store::JobState::submitted;
  s.job.polls = 1;
  CHECK(describe_progress(s) == "job 12 · waiting for the file · 1 poll · 1m 5s");
  s.job.polls = 7;
  s.job.next_poll_at = s.now + 23s;
  CHECK(describe_progress(s) == "job 12 · waiting for the file · 7 polls · next in 23s · 1m 5s");
  s.job.state = store::JobState::downloading;
  s.bytes_received = 45 * 1024 * 1024;
  s.download_started = s.now - 2s;
  CHECK(describe_progress(s) == "job 12 · downloading · 45 MiB · 22 MiB/s · 1m 5s");
  s.download_started = s.now;  // the first byte just came: no rate yet
  CHECK(describe_progress(s) == "job 12 · downloading · 45 MiB · 1m 5s");
  // Followed in the service (`once` handed it over): the row has no byte count.
  s.download_started.reset();
  s.bytes_received = 0;
  CHECK(describe_progress(s) == "job 12 · downloading · 1m 5s");
}
