// Keeps this instance's share of the account leases on PostgreSQL: registers the instance, renews
// what it holds, claims free and expired accounts up to its fair share, hands accounts over when an
// instance joins, and tells the daemon what it gained and lost. Runs on the event loop with its own
// connection, reconnecting with back-off; never ends on an error (it reports it and tries again).
//
// The LeaseBook is updated before each callback (hold on gain, drop on loss), so the store's fenced
// writes stop the moment a loss is known. A local guard covers what the database cannot tell us:
// when no renewal has succeeded for (ttl - safety margin) by our steady clock, every held lease is
// declared lost here, before the database's expiry lets another instance claim it.
//
// Not thread-safe: call it on the executor it was given.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lease/round.hpp"
#include "pg/settings.hpp"
#include "store/fence.hpp"
#include "util/backoff.hpp"
#include "util/log.hpp"
#include "util/time.hpp"

namespace apsis::lease {

struct KeeperOptions {
  Milliseconds ttl{std::chrono::seconds(15)};
  // Zero: the defaults, derived from the TTL.
  Milliseconds renew_interval{0};  // ttl / 3
  Milliseconds safety_margin{0};   // ttl / 5
  Milliseconds statement_timeout{0};  // the renew interval
  Milliseconds release_timeout{std::chrono::seconds(2)};
  // Accounts above the fair share handed over per round; 0: all at once (see plan.hpp). All at once by
  // default: the others claim only up to their own share, so nothing stampedes, and three instances
  // starting one after another balance 30 accounts in one round (5 s at a 15 s TTL) instead of 100 s.
  std::size_t max_releases_per_round{0};
};

// KeeperOptions with every default filled in.
KeeperOptions resolved(KeeperOptions options);

struct KeeperCallbacks {
  std::function<void(const std::string& account, const store::Tenure& tenure)> on_gained;
  std::function<void(const std::string& account, LossReason reason)> on_lost;
};

// What `status` and /metrics show.
struct LeaseSnapshot {
  std::string instance_id;
  std::vector<std::string> held;           // by name
  std::vector<InstanceRow> live_instances;  // as of the last successful round
  std::optional<TimePoint> last_renewal;    // wall clock of the last successful round's start
  std::vector<std::string> config_mismatches;  // live instances whose config_hash differs from ours
  bool connected{false};
};

// This process as an `instances` row describes it: host name, pid, and what the caller passes.
Identity this_process(std::string id, std::string config_hash, std::string version);

// 32 hex digits from `random`.
std::string random_instance_id(Random& random);

class LeaseKeeper {
 public:
  using Report = std::function<void(Level level, std::string_view message)>;

  // `identity.id` names the instance (random_instance_id); `accounts` are the configured ones.
  LeaseKeeper(boost::asio::any_io_executor executor, pg::ConnectionSettings settings, Identity identity,
              std::vector<std::string> accounts, KeeperOptions options, std::shared_ptr<store::LeaseBook> book,
              KeeperCallbacks callbacks, Report report, Random random, NowFunction now = system_now());
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;
  // Stops without releasing (like a crash, as far as other instances can tell: the leases expire
  // after the TTL). Drops the held accounts from the book; no callbacks.
  ~LeaseKeeper();

  void start();
  // For SIGTERM: stops the rounds, drops every held account (on_lost: shutdown), then frees its leases
  // and deletes its instances row on a fresh connection within the release timeout, so others take
  // over at once. Best effort: a failure is reported, and the leases then expire after the TTL.
  boost::asio::awaitable<void> release_all();

  // After a reload: the next round releases the accounts no longer configured (on_lost: unconfigured),
  // claims new ones, and records the new hash; mismatches are reported afresh against it.
  void reconfigure(std::vector<std::string> accounts, std::string config_hash);

  LeaseSnapshot snapshot() const;
  const std::string& id() const;

 private:
  class State;
  std::shared_ptr<State> state_;
};

}  // namespace apsis::lease
