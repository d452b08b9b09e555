// What one renewal round does, decided from what the round read: the pure core of the lease keeper
// (no I/O, no clock: "expired" is the database's verdict, read with the rows).
//
// Fair share: with A configured accounts and N live instances (this one included), an instance holds
// at most ceil(A / N). It claims up to its share, free accounts first (never held, or released), then
// expired ones (a dead instance's), each group by account name, so every instance tries the same order
// and SKIP LOCKED splits the accounts between those claiming at once. An instance above its share
// releases at most `max_releases_per_round` accounts per round (default one): a joining instance picks
// them up over a few rounds, and the others, already at their share, do not claim them back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace apsis::lease {

// A row of `leases` as the round read it.
struct LeaseRow {
  std::string account;
  std::optional<std::string> owner;  // nullopt: free (never held, or released)
  std::int64_t epoch{0};
  bool expired{true};  // expires_at is NULL or not after the database's now()
};

struct PlanInput {
  std::string me;
  // Ids of the instances whose heartbeat has not expired; this instance counts whether listed or not.
  std::vector<std::string> live_instances;
  std::vector<LeaseRow> leases;
  // What this instance holds as far as it knows: account → the epoch it claimed it at.
  std::map<std::string, std::int64_t> held;
  // The configured accounts (duplicates allowed).
  std::vector<std::string> accounts;
  // How many accounts above the share to release in one round; 0: all of them at once.
  std::size_t max_releases_per_round{1};
};

struct Plan {
  std::size_t share{0};
  // Configured accounts without a row: inserted free, then claimable in the same round.
  std::vector<std::string> insert;
  // Held, still ours by the row, and kept: renewed at the epoch we hold (account → epoch).
  std::map<std::string, std::int64_t> renew;
  // Held, but the row says otherwise (expired, another owner or epoch, gone): lost before any write.
  std::vector<std::string> lost;
  // Held and kept no longer: the account left the configuration...
  std::vector<std::string> release_unconfigured;
  // ...or this instance is above its share (the last by name, at most max_releases_per_round).
  std::vector<std::string> release_rebalanced;
  // Rows naming this instance, unexpired, that it does not hold (it declared them lost while the
  // database was unreachable, or a commit failed): freed, so they are claimed afresh at a new epoch.
  std::vector<std::string> orphans;
  // Up to `claim_count` of these, in this order, skipping those another instance has locked.
  std::vector<std::string> claim_candidates;
  std::size_t claim_count{0};
};

Plan plan_round(const PlanInput& input);

// ceil(accounts / instances); instances counts at least 1.
std::size_t fair_share(std::size_t accounts, std::size_t instances);

}  // namespace apsis::lease
