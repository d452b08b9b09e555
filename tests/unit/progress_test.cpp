#include <doctest/doctest.h>

#include "cli/progress.hpp"

using namespace apsis;
using namespace apsis::cli;
using namespace std::chrono_literals;

TEST_CASE("human sizes and durations") {
  CHECK(human_bytes(812) == "812 B");
  CHECK(human_bytes(12'345) == "12.3 kB");
  CHECK(human_bytes(1'200'000'000) == "1.20 GB");
  CHECK(human_duration(850ms) == "850ms");
  CHECK(human_duration(23s) == "23s");
  CHECK(human_duration(65s) == "1m05s");
  CHECK(human_duration(7380s) == "2h03m");
}

TEST_CASE("progress says what the job is doing") {
  const TimePoint start = *parse_iso8601("2026-11-29T12:00:00.000Z");
  ProgressSnapshot s;
  s.job.id = 12;
  s.started = start;
  s.now = start + 65s;
  s.job.state = store::JobState::pending;
  CHECK(describe_progress(s) == "job 12 · submitting · 1m05s");
  s.job.state = store::JobState::submitted;
  s.job.polls = 7;
  s.job.next_poll_at = s.now + 23s;
  CHECK(describe_progress(s) == "job 12 · waiting for the file · 7 polls · next in 23s · 1m05s");
  s.job.state = store::JobState::downloading;
  s.bytes_received = 45'000'000;
  s.download_started = s.now - 2s;
  CHECK(describe_progress(s) == "job 12 · downloading · 45.0 MB · 22.5 MB/s · 1m05s");
}
