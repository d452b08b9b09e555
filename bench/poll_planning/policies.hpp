// The three ways of choosing what to poll next that the benchmark puts side by side. Each holds the
// waiting jobs of one account; the simulator (simulation.hpp) owns the clock, the budget and the
// back-off draws, and asks a policy only "which job now?" and "when might there be one?".
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <queue>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "dispatch/poll_planner.hpp"
#include "scenario.hpp"

namespace bench {

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;
  // A job starts waiting (just submitted, or its last poll found it not ready). `earliest` is its
  // back-off's "not before"; `last_polled` the submit itself before its first poll.
  virtual void add(const SimJob& job, Ms earliest, Ms last_polled, int polls) = 0;
  // The job to poll at `now`, no longer waiting; nullopt: none now.
  virtual std::optional<std::int64_t> take(Ms now) = 0;
  // When take() may next have one, if none is due at `now`; nullopt: nothing waits.
  virtual std::optional<Ms> next_due(Ms now) = 0;
};

// Knows every ready time and polls each job once, when it is ready; the earliest-ready job first
// when several wait for the budget. A lower bound no real policy reaches.
class OraclePolicy final : public Policy {
 public:
  std::string_view name() const override { return "ORACLE"; }
  void add(const SimJob& job, Ms, Ms, int) override { by_ready_.push({job.ready, job.id}); }
  std::optional<std::int64_t> take(Ms now) override { return pop_due(by_ready_, now); }
  std::optional<Ms> next_due(Ms) override {
    return by_ready_.empty() ? std::nullopt : std::optional<Ms>(by_ready_.top().first);
  }

  using Entry = std::pair<Ms, std::int64_t>;
  using Queue = std::priority_queue<Entry, std::vector<Entry>, std::greater<>>;
  static std::optional<std::int64_t> pop_due(Queue& queue, Ms now) {
    if (queue.empty() || queue.top().first > now) return std::nullopt;
    const auto id = queue.top().second;
    queue.pop();
    return id;
  }

 private:
  Queue by_ready_;
};

// Today's daemon: each job sleeps its own back-off, then queues for the account's poll bucket,
// which serves the queue first come, first served.
class TodayPolicy final : public Policy {
 public:
  std::string_view name() const override { return "TODAY"; }
  void add(const SimJob& job, Ms earliest, Ms, int) override {
    // Equal wake-up times queue in the order they were added (the id breaks no ties here).
    queue_.push({earliest, next_seq_++, job.id});
  }
  std::optional<std::int64_t> take(Ms now) override {
    if (queue_.empty() || std::get<0>(queue_.top()) > now) return std::nullopt;
    const auto id = std::get<2>(queue_.top());
    queue_.pop();
    return id;
  }
  std::optional<Ms> next_due(Ms) override {
    return queue_.empty() ? std::nullopt : std::optional<Ms>(std::get<0>(queue_.top()));
  }

 private:
  using Entry = std::tuple<Ms, std::uint64_t, std::int64_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue_;
  std::uint64_t next_seq_{0};
};

// The virtual clock's epoch as a wall-clock time, for code that takes apsis::TimePoint.
inline std::chrono::system_clock::time_point wall(Ms t) {
  using namespace std::chrono;
  return system_clock::time_point(sys_days(year(2026) / December / 1)) + milliseconds(t);
}
inline Ms virtual_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - wall(0)).count();
}

// The daemon's own per-account planner, driven as the dispatcher drives it: told the budget's
// interval per poll, asked for one job whenever the budget allows one poll.
class PlannerDriver final : public Policy {
 public:
  PlannerDriver(std::chrono::milliseconds poll_interval, const apsis::dispatch::PlannerPolicy& policy)
      : planner_(policy) {
    planner_.set_poll_interval(poll_interval);
  }
  std::string_view name() const override { return "PLANNER"; }
  void add(const SimJob& job, Ms earliest, Ms last_polled, int polls) override {
    apsis::dispatch::PollCandidate candidate;
    candidate.job_id = job.id;
    candidate.submitted_at = wall(job.submitted);
    candidate.earliest = wall(earliest);
    candidate.expires_at = wall(job.expires);
    candidate.last_polled_at = wall(last_polled);
    candidate.polls = polls;
    if (job.typical) candidate.typical_duration = std::chrono::milliseconds(*job.typical);
    planner_.add(candidate);
  }
  std::optional<std::int64_t> take(Ms now) override {
    auto next = planner_.take_next(wall(now), 1);
    return next ? std::optional<std::int64_t>(next->job_id) : std::nullopt;
  }
  std::optional<Ms> next_due(Ms now) override {
    const auto due = planner_.next_due(wall(now));
    return due ? std::optional<Ms>(virtual_ms(*due)) : std::nullopt;
  }

 private:
  apsis::dispatch::PollPlanner planner_;
};

}  // namespace bench
