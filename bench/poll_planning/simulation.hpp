// One account's polls on a virtual clock: the daemon's own CallWindow holds them to the budget, a
// policy picks the job, and a poll finds the file once the job's ready time has passed. No
// sockets, no timers: each step jumps to the next moment something can happen.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "budget/call_window.hpp"
#include "config/config.hpp"
#include "policies.hpp"
#include "scenario.hpp"
#include "util/backoff.hpp"

namespace bench {

using BackoffPolicy = decltype(apsis::config::PollingPolicy{}.backoff);

struct SimSettings {
  apsis::budget::Limit budget{1, std::chrono::seconds(1)};
  Ms round_trip{100};  // request sent → answer in; the budget counts a poll until its answer
  BackoffPolicy backoff{};
  std::uint64_t seed{1};
};

// A gap between two polls of one waiting job, and what its back-off asked for.
struct Gap {
  Ms from{0};
  Ms earliest{0};
  Ms to{0};
};

struct SimResult {
  std::string scenario;
  std::string policy;
  int jobs{0};
  int done{0};
  int expired{0};
  int lost{0};  // still waiting when the simulation gave up (a policy that never served them)
  std::int64_t polls{0};
  std::vector<Ms> delays;  // ready → the poll that found the file, per done job
  std::vector<Gap> gaps;
  std::vector<std::pair<Ms, int>> waiting;  // (time, jobs waiting from then on)
  int budget_violations{0};
  Ms cycle{0};  // one poll's share of the budget, round trip included
  Ms end{0};
};

// Counts polls by their send times, apart from CallWindow: no window of the budget's length may
// hold more than its count.
class BudgetCheck {
 public:
  explicit BudgetCheck(apsis::budget::Limit limit) : count_(limit.count), window_(limit.window.count()) {}
  void sent(Ms at) {
    sends_.push_back(at);
    const auto n = sends_.size();
    if (n > static_cast<std::size_t>(count_) && at - sends_[n - 1 - count_] < window_) ++violations_;
  }
  int violations() const { return violations_; }

 private:
  int count_;
  Ms window_;
  std::vector<Ms> sends_;
  int violations_{0};
};

class Simulation {
 public:
  Simulation(const Scenario& scenario, Policy& policy, const SimSettings& settings)
      : scenario_(scenario), policy_(policy), settings_(settings), window_(settings.budget),
        check_(settings.budget), random_(settings.seed), runs_(scenario.jobs.size() + 1) {
    for (const auto& job : scenario.jobs) horizon_ = std::max(horizon_, job.expires + kHour);
    result_.scenario = scenario.name;
    result_.policy = std::string(policy.name());
    result_.jobs = static_cast<int>(scenario.jobs.size());
    result_.cycle = settings.budget.window.count() / settings.budget.count + settings.round_trip;
  }

  SimResult run() {
    while (finished() < result_.jobs && now_ <= horizon_) step();
    result_.lost = result_.jobs - finished();
    result_.budget_violations = check_.violations();
    result_.end = now_;
    return std::move(result_);
  }

 private:
  struct Run {
    int polls{0};
    Ms last_poll{0};
    Ms earliest{0};
  };

  static constexpr Ms kNever = std::numeric_limits<Ms>::max();

  int finished() const { return result_.done + result_.expired; }
  const SimJob& job(std::int64_t id) const { return scenario_.jobs[static_cast<std::size_t>(id - 1)]; }
  static apsis::budget::SteadyTime steady(Ms t) { return apsis::budget::SteadyTime(std::chrono::milliseconds(t)); }
  static Ms steady_ms(apsis::budget::SteadyTime t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }

  void step() {
    admit_submits();
    const auto allowed = window_.allowed_at(steady(now_));
    // Polls are sequential here, so an answer is always in before the next step: never nullopt.
    const Ms allowed_ms = allowed ? steady_ms(*allowed) : now_ + settings_.round_trip;
    if (allowed_ms > now_) {
      now_ = allowed_ms;
      return;
    }
    if (const auto id = policy_.take(now_)) {
      poll(*id);
      return;
    }
    const Ms next = std::min(policy_.next_due(now_).value_or(kNever), next_submit_time());
    now_ = next == kNever ? horizon_ + 1 : std::max(next, now_ + 1);
  }

  Ms next_submit_time() const {
    return next_submit_ < scenario_.jobs.size() ? scenario_.jobs[next_submit_].submitted : kNever;
  }

  void admit_submits() {
    for (; next_submit_ < scenario_.jobs.size() && scenario_.jobs[next_submit_].submitted <= now_; ++next_submit_) {
      const auto& submitted = scenario_.jobs[next_submit_];
      wait_again(submitted, submitted.submitted, submitted.submitted);
      set_waiting(waiting_ + 1, submitted.submitted);
    }
  }

  // The job's back-off from `answered` gives its earliest next poll, never past the URL's expiry.
  void wait_again(const SimJob& waiting, Ms answered, Ms last_poll) {
    auto& run = runs_[static_cast<std::size_t>(waiting.id)];
    const auto delay = apsis::backoff_delay(settings_.backoff, run.polls, random_);
    run.earliest = virtual_ms(apsis::next_poll_time(wall(answered), delay, wall(waiting.expires)));
    policy_.add(waiting, run.earliest, last_poll, run.polls);
  }

  void poll(std::int64_t id) {
    const auto& polled = job(id);
    auto& run = runs_[static_cast<std::size_t>(id)];
    if (now_ >= polled.expires) {  // the daemon gives up without a poll once the URL is no longer valid
      ++result_.expired;
      set_waiting(waiting_ - 1, now_);
      return;
    }
    window_.sent();
    check_.sent(now_);
    ++result_.polls;
    if (run.polls > 0) result_.gaps.push_back({run.last_poll, run.earliest, now_});
    ++run.polls;
    run.last_poll = now_;
    const Ms answered = now_ + settings_.round_trip;
    window_.answered(steady(answered));
    if (polled.ready <= now_) {
      ++result_.done;
      result_.delays.push_back(now_ - polled.ready);
      set_waiting(waiting_ - 1, now_);
    } else {
      wait_again(polled, answered, now_);
    }
  }

  void set_waiting(int waiting, Ms at) {
    waiting_ = waiting;
    result_.waiting.emplace_back(at, waiting);
  }

  const Scenario& scenario_;
  Policy& policy_;
  SimSettings settings_;
  apsis::budget::CallWindow window_;
  BudgetCheck check_;
  std::mt19937_64 random_;
  std::vector<Run> runs_;  // by job id
  SimResult result_;
  std::size_t next_submit_{0};
  int waiting_{0};
  Ms now_{0};
  Ms horizon_{0};
};

}  // namespace bench
