// Which of an account's waiting jobs gets the next poll the budget allows.
//
// A job's back-off says when it may be polled next at the earliest; the account's budget says when
// the next poll may go out at all. While the budget keeps up, due jobs are polled in the order they
// came due. When more jobs are due than the budget can poll, the planner picks, in this order:
//   1. a job whose poll URL is about to expire (soonest expiry first): a late poll there costs a
//      whole new export;
//   2. a job that has waited longer since its last poll than its fair share of the budget allows
//      (waiting jobs × the budget's interval per poll), longest first: no job starves;
//   3. otherwise the job most likely to have become ready since its last poll.
// A job with history is not due before most of its typical duration has passed: the back-off says
// when a job may be polled at the earliest, the history may only make that later. That probability
//      comes from a model of how long the export takes: its earlier runs when the job table knows
//      at least a few (a recurring export usually takes about as long as its last runs did), else a
//      wide prior (log-uniform over the URL's validity).
//
// Pure bookkeeping over injected times: the dispatcher and the planning benchmark drive it.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "util/time.hpp"

namespace apsis::dispatch {

struct PollCandidate {
  std::int64_t job_id{0};
  TimePoint submitted_at{};
  TimePoint earliest{};        // the job's back-off: not polled before this
  TimePoint expires_at{};      // the poll URL's validity ends
  TimePoint last_polled_at{};  // submitted_at before the first poll
  int polls{0};
  std::optional<Milliseconds> typical_duration;  // submit → ready of the export's earlier runs (median)
};

struct PlannerPolicy {
  // URLs closer than this to their expiry are served before anything else.
  Milliseconds expiry_guard{std::chrono::minutes(10)};
  // The prior for an export without history: ready somewhere between these after submit, every
  // order of magnitude equally likely.
  Milliseconds prior_shortest{std::chrono::seconds(30)};
  Milliseconds prior_longest{std::chrono::hours(24)};
  // How far a recurring export strays from its typical duration (log-scale spread), and how much
  // the prior still counts beside the history (an export can change).
  double history_spread{0.12};
  double prior_weight{0.1};
  // A waiting job is served before the likelier ones once it has waited this share of its fair gap.
  // Below 1 the guard takes the whole budget and the planner degenerates to round robin.
  double starvation_share{1.0};
  // A recurring export is not polled before this share of its typical duration: until then its job
  // does not compete for the budget (bounded by the URL's expiry guard).
  double history_floor{0.75};
};

// The probability that a job not ready at `last` is ready at `now` (pure; table-tested).
double chance_ready_since(const PollCandidate& job, TimePoint now, const PlannerPolicy& policy);

class PollPlanner {
 public:
  explicit PollPlanner(PlannerPolicy policy = {}) : policy_(policy) {}

  // A job waiting for its next poll. Adding a job that is already waiting replaces it.
  void add(const PollCandidate& job);
  bool remove(std::int64_t job_id);
  bool contains(std::int64_t job_id) const { return jobs_.contains(job_id); }
  std::size_t size() const { return jobs_.size(); }
  // Jobs past their earliest poll time at the last take_next/next_due: what waits for the budget.
  std::size_t due() const { return pool_.size(); }

  // The time the budget allows per poll (its window ÷ its count, after any slowdown): with the
  // number of due jobs it gives each job's fair gap between two polls.
  void set_poll_interval(Milliseconds interval) { poll_interval_ = interval; }

  // The job to poll now, no longer waiting; nullopt when no job is due at `now`. `can_send` is how
  // many polls the budget allows right now: while it covers every due job, there is nothing to
  // choose and the choice costs nothing.
  std::optional<PollCandidate> take_next(TimePoint now, std::size_t can_send = 1);
  // When the next job comes due, if none is due at `now`.
  std::optional<TimePoint> next_due(TimePoint now);

 private:
  struct Entry {
    PollCandidate job;
    std::int32_t pool_index{-1};  // position in pool_, -1 while not yet due
  };
  struct Due {
    TimePoint at;
    std::int64_t job_id;
    bool operator>(const Due& other) const { return at > other.at; }
  };

  void collect_due(TimePoint now);
  void leave_pool(Entry& entry);
  std::size_t choose(TimePoint now) const;

  PlannerPolicy policy_;
  Milliseconds poll_interval_{std::chrono::seconds(1)};
  std::unordered_map<std::int64_t, Entry> jobs_;
  std::vector<Due> not_yet_due_;  // min-heap by earliest; stale entries are skipped when popped
  std::vector<std::int64_t> pool_;  // due jobs, in no particular order
};

}  // namespace apsis::dispatch
