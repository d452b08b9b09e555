#include "dispatch/poll_planner.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace apsis::dispatch {
namespace {

double milliseconds_between(TimePoint from, TimePoint to) {
  return static_cast<double>(std::chrono::duration_cast<Milliseconds>(to - from).count());
}

// Every order of magnitude between the shortest and the longest equally likely.
double prior_ready_by(double elapsed_ms, const PlannerPolicy& policy) {
  const double shortest = static_cast<double>(policy.prior_shortest.count());
  const double longest = static_cast<double>(policy.prior_longest.count());
  if (elapsed_ms <= shortest) return 0.0;
  if (elapsed_ms >= longest) return 1.0;
  return std::log(elapsed_ms / shortest) / std::log(longest / shortest);
}

// A logistic curve in log-time around the typical duration: as likely to be a little early as late.
double history_ready_by(double elapsed_ms, Milliseconds typical, const PlannerPolicy& policy) {
  if (elapsed_ms <= 0) return 0.0;
  const double typical_ms = std::max(1.0, static_cast<double>(typical.count()));
  return 1.0 / (1.0 + std::exp(-std::log(elapsed_ms / typical_ms) / policy.history_spread));
}

double ready_by(double elapsed_ms, const PollCandidate& job, const PlannerPolicy& policy) {
  const double prior = prior_ready_by(elapsed_ms, policy);
  if (!job.typical_duration) return prior;
  return (1 - policy.prior_weight) * history_ready_by(elapsed_ms, *job.typical_duration, policy) +
         policy.prior_weight * prior;
}

// Higher serves first: the tier says which rule applies, the value orders within it.
struct Priority {
  int tier{0};
  double value{0};
  bool operator<(const Priority& other) const {
    return tier != other.tier ? tier < other.tier : value < other.value;
  }
};

}  // namespace

double chance_ready_since(const PollCandidate& job, TimePoint now, const PlannerPolicy& policy) {
  const double before = ready_by(milliseconds_between(job.submitted_at, job.last_polled_at), job, policy);
  const double after = ready_by(milliseconds_between(job.submitted_at, now), job, policy);
  const double still_waiting = 1.0 - before;
  if (still_waiting <= 1e-12) return 1.0;
  return std::clamp((after - before) / still_waiting, 0.0, 1.0);
}

void PollPlanner::add(const PollCandidate& candidate) {
  remove(candidate.job_id);
  auto job = candidate;
  if (job.typical_duration) {
    const auto usual = job.submitted_at + std::chrono::duration_cast<Milliseconds>(*job.typical_duration * policy_.history_floor);
    job.earliest = std::max(job.earliest, std::min(usual, job.expires_at - policy_.expiry_guard));
  }
  jobs_.emplace(job.job_id, Entry{job, -1});
  not_yet_due_.push_back({job.earliest, job.job_id});
  std::push_heap(not_yet_due_.begin(), not_yet_due_.end(), std::greater<>{});
}

bool PollPlanner::remove(std::int64_t job_id) {
  const auto found = jobs_.find(job_id);
  if (found == jobs_.end()) return false;
  leave_pool(found->second);
  jobs_.erase(found);  // its heap entry goes stale and is skipped when it comes up
  return true;
}

void PollPlanner::leave_pool(Entry& entry) {
  if (entry.pool_index < 0) return;
  const auto index = static_cast<std::size_t>(entry.pool_index);
  if (index + 1 != pool_.size()) {
    pool_[index] = pool_.back();
    jobs_.at(pool_[index]).pool_index = entry.pool_index;
  }
  pool_.pop_back();
  entry.pool_index = -1;
}

void PollPlanner::collect_due(TimePoint now) {
  while (!not_yet_due_.empty() && not_yet_due_.front().at <= now) {
    std::pop_heap(not_yet_due_.begin(), not_yet_due_.end(), std::greater<>{});
    const auto due = not_yet_due_.back();
    not_yet_due_.pop_back();
    const auto found = jobs_.find(due.job_id);
    // Stale: removed, or re-added with another earliest time (its newer heap entry counts).
    if (found == jobs_.end() || found->second.pool_index >= 0 || found->second.job.earliest != due.at) continue;
    found->second.pool_index = static_cast<std::int32_t>(pool_.size());
    pool_.push_back(due.job_id);
  }
}

std::size_t PollPlanner::choose(TimePoint now) const {
  const double fair_gap = static_cast<double>(pool_.size()) * static_cast<double>(poll_interval_.count());
  const double starving_after = policy_.starvation_share * fair_gap;
  const double expiry_guard = static_cast<double>(policy_.expiry_guard.count());
  std::size_t best = 0;
  Priority best_priority{-1, 0};
  for (std::size_t i = 0; i < pool_.size(); ++i) {
    const auto& job = jobs_.at(pool_[i]).job;
    Priority priority;
    if (const double left = milliseconds_between(now, job.expires_at); left <= expiry_guard)
      priority = {2, -left};
    else if (const double waited = milliseconds_between(job.last_polled_at, now); waited >= starving_after)
      priority = {1, waited};
    else
      priority = {0, chance_ready_since(job, now, policy_)};
    if (best_priority < priority) {
      best_priority = priority;
      best = i;
    }
  }
  return best;
}

std::optional<PollCandidate> PollPlanner::take_next(TimePoint now, std::size_t can_send) {
  collect_due(now);
  if (pool_.empty()) return std::nullopt;
  const auto index = pool_.size() <= can_send ? pool_.size() - 1 : choose(now);
  auto& entry = jobs_.at(pool_[index]);
  auto job = entry.job;
  remove(job.job_id);
  return job;
}

std::optional<TimePoint> PollPlanner::next_due(TimePoint now) {
  collect_due(now);
  if (!pool_.empty()) return now;
  while (!not_yet_due_.empty()) {
    const auto& head = not_yet_due_.front();
    const auto found = jobs_.find(head.job_id);
    if (found != jobs_.end() && found->second.pool_index < 0 && found->second.job.earliest == head.at) return head.at;
    std::pop_heap(not_yet_due_.begin(), not_yet_due_.end(), std::greater<>{});
    not_yet_due_.pop_back();
  }
  return std::nullopt;
}

}  // namespace apsis::dispatch
