#include <doctest/doctest.h>

#include <map>

#include "dispatch/poll_planner.hpp"

namespace apsis::dispatch {
namespace {

using namespace std::chrono_literals;

const TimePoint t0 = TimePoint{} + std::chrono::hours(24 * 365 * 50);

PollCandidate waiting(std::int64_t id, Milliseconds age, Milliseconds since_poll = 0ms) {
  PollCandidate job;
  job.job_id = id;
  job.submitted_at = t0 - age;
  job.earliest = t0 - since_poll;
  job.expires_at = job.submitted_at + 24h;
  job.last_polled_at = since_poll == 0ms ? job.submitted_at : t0 - since_poll;
  return job;
}

}  // namespace

TEST_CASE("chance_ready_since: what a poll now would likely find") {
  const PlannerPolicy policy;
  struct Row {
    const char* what;
    Milliseconds age, since_poll;
    std::optional<Milliseconds> typical;
    double at_least, at_most;
  };
  const Row rows[] = {
      {"younger than the shortest prior: nothing to find", 20s, 0ms, std::nullopt, 0.0, 0.0},
      {"a few minutes old, never polled: a small chance", 5min, 0ms, std::nullopt, 0.2, 0.45},
      {"polled a second ago: almost nothing new", 2h, 1s, std::nullopt, 0.0, 0.001},
      {"past the longest prior: certainly ready", 25h, 1h, std::nullopt, 1.0, 1.0},
      {"recurring, well before its usual time", 10min, 1min, 1h, 0.0, 0.01},
      {"recurring, just past its usual time", 70min, 15min, 1h, 0.6, 1.0},
      {"recurring, polled at its usual time, now a little later", 65min, 5min, 1h, 0.2, 0.8},
  };
  for (const auto& row : rows) {
    CAPTURE(row.what);
    auto job = waiting(1, row.age, row.since_poll);
    job.typical_duration = row.typical;
    const double chance = chance_ready_since(job, t0, policy);
    CHECK(chance >= row.at_least);
    CHECK(chance <= row.at_most);
  }
}

TEST_CASE("PollPlanner: a job is not polled before its back-off allows") {
  PollPlanner planner;
  auto job = waiting(7, 10min);
  job.earliest = t0 + 30s;
  planner.add(job);
  CHECK_FALSE(planner.take_next(t0));
  CHECK(planner.next_due(t0) == t0 + 30s);
  const auto taken = planner.take_next(t0 + 30s);
  REQUIRE(taken);
  CHECK(taken->job_id == 7);
  CHECK(planner.size() == 0);
  CHECK_FALSE(planner.next_due(t0 + 31s));
}

TEST_CASE("PollPlanner: re-adding a job replaces its earlier entry; removing it forgets it") {
  PollPlanner planner;
  auto job = waiting(3, 10min);
  planner.add(job);
  job.earliest = t0 + 1min;
  planner.add(job);
  CHECK(planner.size() == 1);
  CHECK_FALSE(planner.take_next(t0));  // the first entry's earlier time no longer counts
  CHECK(planner.next_due(t0) == t0 + 1min);
  CHECK(planner.remove(3));
  CHECK_FALSE(planner.remove(3));
  CHECK_FALSE(planner.take_next(t0 + 2min));
}

TEST_CASE("PollPlanner: with the budget short, the likelier job goes first") {
  PollPlanner planner;
  planner.set_poll_interval(1h);  // nobody has waited past a fair share
  planner.add(waiting(1, 2h, 10s));   // polled 10 s ago
  planner.add(waiting(2, 2h, 30min));  // not polled for half an hour
  const auto first = planner.take_next(t0);
  REQUIRE(first);
  CHECK(first->job_id == 2);
}

TEST_CASE("PollPlanner: a recurring export is polled around its usual time, not long before it") {
  PollPlanner planner;
  planner.set_poll_interval(1h);
  auto usual = waiting(1, 61min, 2min);
  usual.typical_duration = 1h;
  planner.add(usual);
  auto early = waiting(2, 20min);
  early.typical_duration = 1h;
  planner.add(early);
  const auto first = planner.take_next(t0);
  REQUIRE(first);
  CHECK(first->job_id == 1);
}

TEST_CASE("PollPlanner: a URL about to expire goes before likelier jobs") {
  PollPlanner planner;
  planner.set_poll_interval(1h);
  auto expiring = waiting(1, 2h, 5s);
  expiring.expires_at = t0 + 5min;
  planner.add(expiring);
  planner.add(waiting(2, 5h, 2h));
  CHECK(planner.take_next(t0)->job_id == 1);
  CHECK(planner.take_next(t0)->job_id == 2);
}

TEST_CASE("PollPlanner: a job that waited past its fair share goes first") {
  PollPlanner planner;
  planner.set_poll_interval(20s);
  // Two due jobs at one poll per 20 s: a fair gap of 40 s. Job 1, last polled 50 s ago, has waited
  // past its share, though job 2 (a recurring export at its usual time) is far likelier ready.
  planner.add(waiting(1, 20h, 50s));
  auto usual = waiting(2, 61min, 20s);
  usual.typical_duration = 1h;
  planner.add(usual);
  CHECK(chance_ready_since(usual, t0, PlannerPolicy{}) > chance_ready_since(waiting(1, 20h, 50s), t0, PlannerPolicy{}));
  CHECK(planner.take_next(t0)->job_id == 1);
}

TEST_CASE("PollPlanner: no job starves under a short budget (round-robin bound)") {
  PollPlanner planner;
  planner.set_poll_interval(1s);
  constexpr int kJobs = 50;
  std::map<std::int64_t, TimePoint> last_poll;
  for (int id = 1; id <= kJobs; ++id) {
    auto job = waiting(id, std::chrono::minutes(id), 0ms);
    planner.add(job);
    last_poll[id] = t0;
  }
  Milliseconds longest_gap{0};
  for (int second = 0; second < 20 * kJobs; ++second) {
    const auto now = t0 + std::chrono::seconds(second);
    auto job = planner.take_next(now);
    REQUIRE(job);
    longest_gap = std::max(longest_gap, std::chrono::duration_cast<Milliseconds>(now - last_poll[job->job_id]));
    last_poll[job->job_id] = now;
    job->last_polled_at = now;
    job->earliest = now;  // always due again: the budget alone decides
    ++job->polls;
    planner.add(*job);
  }
  // Waiting jobs ÷ budget = 50 s.
  CHECK(longest_gap <= std::chrono::seconds(kJobs));
}

TEST_CASE("PollPlanner: when the budget covers every due job, they go out without a choice") {
  PollPlanner planner;
  for (int id = 1; id <= 3; ++id) planner.add(waiting(id, 1h, 1min));
  int taken = 0;
  while (planner.take_next(t0, 3)) ++taken;
  CHECK(taken == 3);
}

}  // namespace apsis::dispatch

namespace apsis::dispatch {

TEST_CASE("PollPlanner: a recurring export's job is not due before most of its usual duration") {
  PollPlanner planner;
  auto job = waiting(1, 10min);  // due now by its back-off
  job.typical_duration = 1h;
  job.expires_at = t0 + 48h;
  planner.add(job);
  CHECK_FALSE(planner.take_next(t0));
  CHECK(planner.next_due(t0) == job.submitted_at + 45min);
  // ...but never later than the expiry guard allows.
  auto expiring = waiting(2, 10min);
  expiring.typical_duration = 30h;
  planner.add(expiring);
  CHECK(planner.next_due(t0) == job.submitted_at + 45min);
  CHECK(planner.take_next(expiring.expires_at - 10min)->job_id == 2);
}

}  // namespace apsis::dispatch
