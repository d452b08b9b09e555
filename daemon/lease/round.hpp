// One renewal round: a single transaction that heartbeats this instance, reads who is alive and who
// holds what, and then inserts, renews, releases and claims as plan_round() decides. Every lease time
// is the database's now(), never this process's clock.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "pg/connection.hpp"
#include "util/time.hpp"

namespace apsis::lease {

// This instance as its `instances` row describes it.
struct Identity {
  std::string id;
  std::string host;
  long pid{0};
  std::string config_hash;
  std::string version;
};

// A live instance (heartbeat not expired), as its row says.
struct InstanceRow {
  std::string id;
  std::string host;
  std::int64_t pid{0};
  std::string config_hash;
  std::string version;
};

// Why an account's lease stopped being ours.
enum class LossReason {
  not_renewed,   // the database would not renew it: it expired, or another instance holds it
  overdue,       // no renewal succeeded in time (database unreachable, or this process was paused)
  rebalanced,    // released: above the fair share, for an instance that joined
  unconfigured,  // released: the account left the configuration
  shutdown,      // released: this instance is stopping
};
std::string_view describe(LossReason reason);

struct RoundSettings {
  Milliseconds ttl;
  Milliseconds statement_timeout;
  std::size_t max_releases_per_round{1};  // PlanInput's
};

struct RoundOutcome {
  std::vector<InstanceRow> live;
  std::map<std::string, std::int64_t> gained;  // account → epoch, committed
};

// Called for each held account the round finds lost or is about to release, BEFORE the write that
// frees it, so its jobs stop before another instance can claim it. Must tolerate an account that is
// no longer held (the overdue guard may have dropped it while the round waited).
using LoseFunction = std::function<void(const std::string& account, LossReason reason)>;

// Runs the round's transaction; throws pg::Error (the transaction is then not committed and the
// connection should be replaced). `held` is the keeper's own map, read when planning and after the
// renewal (it may shrink while the round waits).
boost::asio::awaitable<RoundOutcome> run_round(pg::Connection& connection, const Identity& me,
                                               const std::vector<std::string>& accounts,
                                               const std::map<std::string, std::int64_t>& held,
                                               const RoundSettings& settings, const LoseFunction& lose);

// Frees every lease this instance holds and deletes its instances row, in one statement.
boost::asio::awaitable<void> release_everything(pg::Connection& connection, const std::string& me,
                                                Milliseconds timeout);

// A PostgreSQL array literal of text values ("{\"a\",\"b\"}"), for one `$n::text[]` parameter.
std::string text_array(const std::vector<std::string>& values);

}  // namespace apsis::lease
