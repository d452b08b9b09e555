#include "lease/plan.hpp"

#include <algorithm>
#include <set>

namespace apsis::lease {

std::size_t fair_share(std::size_t accounts, std::size_t instances) {
  instances = std::max<std::size_t>(instances, 1);
  return (accounts + instances - 1) / instances;
}

namespace {

std::size_t live_count(const PlanInput& input) {
  std::set<std::string> live(input.live_instances.begin(), input.live_instances.end());
  live.insert(input.me);
  return live.size();
}

bool ours(const LeaseRow& row, const std::string& me) { return !row.expired && row.owner == me; }

}  // namespace

Plan plan_round(const PlanInput& input) {
  const std::set<std::string> configured(input.accounts.begin(), input.accounts.end());
  std::map<std::string, const LeaseRow*> rows;
  for (const auto& row : input.leases) rows[row.account] = &row;

  Plan plan;
  plan.share = fair_share(configured.size(), live_count(input));

  // What we hold and the rows still confirm, by account name.
  std::vector<std::string> kept;
  for (const auto& [account, epoch] : input.held) {
    const auto found = rows.find(account);
    const bool confirmed = found != rows.end() && ours(*found->second, input.me) && found->second->epoch == epoch;
    if (!confirmed)
      plan.lost.push_back(account);
    else if (!configured.contains(account))
      plan.release_unconfigured.push_back(account);
    else
      kept.push_back(account);
  }
  const std::size_t limit = input.max_releases_per_round == 0 ? kept.size() : input.max_releases_per_round;
  while (kept.size() > plan.share && plan.release_rebalanced.size() < limit) {
    plan.release_rebalanced.push_back(kept.back());
    kept.pop_back();
  }
  std::sort(plan.release_rebalanced.begin(), plan.release_rebalanced.end());
  for (const auto& account : kept) plan.renew[account] = input.held.at(account);

  for (const auto& row : input.leases) {
    const auto held = input.held.find(row.account);
    const bool confirmed = held != input.held.end() && held->second == row.epoch;
    if (ours(row, input.me) && !confirmed) plan.orphans.push_back(row.account);
  }
  std::sort(plan.orphans.begin(), plan.orphans.end());

  // Claimable: free first (no row yet, or no owner), then expired or orphaned, each by name.
  std::vector<std::string> expired;
  const std::set<std::string> orphans(plan.orphans.begin(), plan.orphans.end());
  for (const auto& account : configured) {
    const auto found = rows.find(account);
    if (found == rows.end()) {
      plan.insert.push_back(account);
      plan.claim_candidates.push_back(account);
    } else if (!found->second->owner) {
      plan.claim_candidates.push_back(account);
    } else if (found->second->expired || orphans.contains(account)) {
      expired.push_back(account);
    }
  }
  plan.claim_candidates.insert(plan.claim_candidates.end(), expired.begin(), expired.end());
  if (kept.size() < plan.share) plan.claim_count = plan.share - kept.size();
  return plan;
}

}  // namespace apsis::lease
