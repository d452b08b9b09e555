#include "lease/round.hpp"

#include <set>

#include "lease/plan.hpp"

namespace apsis::lease {

namespace asio = boost::asio;

std::string_view describe(LossReason reason) {
  switch (reason) {
    case LossReason::not_renewed:
      return "the database did not renew the lease: it expired or another instance holds it";
    case LossReason::overdue:
      return "no renewal succeeded within the lease time (database unreachable, or this process was paused)";
    case LossReason::rebalanced:
      return "released to another instance: this one held more than its fair share";
    case LossReason::unconfigured:
      return "released: the account is no longer configured";
    case LossReason::shutdown:
      return "released: this instance is stopping";
  }
  return "unknown";
}

std::string text_array(const std::vector<std::string>& values) {
  std::string literal = "{";
  for (const auto& value : values) {
    if (literal.size() > 1) literal += ',';
    literal += '"';
    for (const char c : value) {
      if (c == '"' || c == '\\') literal += '\\';
      literal += c;
    }
    literal += '"';
  }
  return literal + "}";
}

namespace {


constexpr std::string_view kHeartbeat = R"(
INSERT INTO instances (id, host, pid, started_at, heartbeat_at, expires_at, config_hash, version)
VALUES ($1, $2, $3::integer, now(), now(), now() + $4::bigint * interval '1 millisecond', $5, $6)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at,
  config_hash = EXCLUDED.config_hash, version = EXCLUDED.version)";

// Instances whose heartbeat expired an hour ago are forgotten: long enough for an operator to see in
// `status` that one died, short enough that restarts do not pile up rows.
constexpr std::string_view kForgetDeadInstances = "DELETE FROM instances WHERE expires_at < now() - interval '1 hour'";

constexpr std::string_view kLiveInstances = R"(
SELECT id, host, pid, config_hash, version FROM instances WHERE expires_at > now() ORDER BY id)";

constexpr std::string_view kLeases = R"(
SELECT account, owner, epoch, (expires_at IS NULL OR expires_at <= now()) AS expired
FROM leases WHERE account = ANY($1::text[]) OR owner = $2)";

constexpr std::string_view kInsert = R"(
INSERT INTO leases (account) SELECT unnest($1::text[]) ON CONFLICT (account) DO NOTHING)";

// A lease is renewed only at the epoch we hold and only if it has not expired: what is not returned
// is lost (another instance may already have claimed it).
constexpr std::string_view kRenew = R"(
UPDATE leases AS l SET expires_at = now() + $3::bigint * interval '1 millisecond'
FROM unnest($1::text[], $2::bigint[]) AS h(account, epoch)
WHERE l.account = h.account AND l.epoch = h.epoch AND l.owner = $4 AND l.expires_at > now()
RETURNING l.account)";

constexpr std::string_view kRelease = R"(
UPDATE leases SET owner = NULL, expires_at = NULL WHERE owner = $2 AND account = ANY($1::text[]))";

// SKIP LOCKED: instances claiming at once split the candidates instead of queueing on each other's
// row locks. The candidates' order (free first) is kept through WITH ORDINALITY.
constexpr std::string_view kClaim = R"(
WITH candidate AS (
  SELECT l.account FROM leases AS l
  JOIN unnest($1::text[]) WITH ORDINALITY AS c(account, position) ON l.account = c.account
  WHERE l.owner IS NULL OR l.expires_at IS NULL OR l.expires_at <= now()
  ORDER BY c.position LIMIT $2::bigint
  FOR UPDATE OF l SKIP LOCKED)
UPDATE leases AS l SET owner = $3, epoch = l.epoch + 1,
  expires_at = now() + $4::bigint * interval '1 millisecond', acquired_at = now()
FROM candidate WHERE l.account = candidate.account
RETURNING l.account, l.epoch)";

constexpr std::string_view kReleaseEverything = R"(
WITH released AS (UPDATE leases SET owner = NULL, expires_at = NULL WHERE owner = $1 RETURNING account)
DELETE FROM instances WHERE id = $1)";

// One round's statements. (GCC 12 rejects a braced list inside a co_await expression, "array used
// as initializer": parameters are built in a variable first.)
class Round {
 public:
  Round(pg::Connection& connection, const Identity& me, const RoundSettings& settings)
      : connection_(connection), me_(me), settings_(settings), ttl_(std::to_string(settings.ttl.count())) {}

  asio::awaitable<pg::Result> query(std::string_view sql, pg::Parameters parameters = {}) {
    co_return co_await connection_.query(sql, std::move(parameters), settings_.statement_timeout);
  }

  asio::awaitable<std::vector<InstanceRow>> heartbeat() {
    pg::Parameters row{me_.id, me_.host, std::to_string(me_.pid), ttl_, me_.config_hash, me_.version};
    co_await query(kHeartbeat, std::move(row));
    co_await query(kForgetDeadInstances);
    const auto rows = co_await query(kLiveInstances);
    std::vector<InstanceRow> live;
    for (int r = 0; r < rows.rows(); ++r)
      live.push_back({std::string(rows.text(r, 0)), std::string(rows.text(r, 1)), rows.int64(r, 2),
                      std::string(rows.text(r, 3)), std::string(rows.text(r, 4))});
    co_return live;
  }

  asio::awaitable<std::vector<LeaseRow>> leases(const std::vector<std::string>& accounts) {
    pg::Parameters parameters{text_array(accounts), me_.id};
    const auto rows = co_await query(kLeases, std::move(parameters));
    std::vector<LeaseRow> leases;
    for (int r = 0; r < rows.rows(); ++r) {
      std::optional<std::string> owner;
      if (const auto text = rows.optional_text(r, 1)) owner = std::string(*text);
      leases.push_back({std::string(rows.text(r, 0)), std::move(owner), rows.int64(r, 2), rows.text(r, 3) == "t"});
    }
    co_return leases;
  }

  // The accounts the database renewed.
  asio::awaitable<std::set<std::string>> renew(const std::map<std::string, std::int64_t>& leases) {
    std::vector<std::string> accounts;
    std::string epochs = "{";
    for (const auto& [account, epoch] : leases) {
      accounts.push_back(account);
      if (epochs.size() > 1) epochs += ',';
      epochs += std::to_string(epoch);
    }
    pg::Parameters parameters{text_array(accounts), epochs + "}", ttl_, me_.id};
    const auto rows = co_await query(kRenew, std::move(parameters));
    std::set<std::string> renewed;
    for (int r = 0; r < rows.rows(); ++r) renewed.emplace(rows.text(r, 0));
    co_return renewed;
  }

  asio::awaitable<std::map<std::string, std::int64_t>> claim(const std::vector<std::string>& candidates,
                                                             std::size_t count) {
    pg::Parameters parameters{text_array(candidates), std::to_string(count), me_.id, ttl_};
    const auto rows = co_await query(kClaim, std::move(parameters));
    std::map<std::string, std::int64_t> claimed;
    for (int r = 0; r < rows.rows(); ++r) claimed[std::string(rows.text(r, 0))] = rows.int64(r, 1);
    co_return claimed;
  }

 private:
  pg::Connection& connection_;
  const Identity& me_;
  const RoundSettings& settings_;
  std::string ttl_;
};

}  // namespace

asio::awaitable<RoundOutcome> run_round(pg::Connection& connection, const Identity& me,
                                        const std::vector<std::string>& accounts,
                                        const std::map<std::string, std::int64_t>& held, const RoundSettings& settings,
                                        const LoseFunction& lose) {
  Round round(connection, me, settings);
  co_await round.query("BEGIN");
  RoundOutcome outcome;
  outcome.live = co_await round.heartbeat();

  PlanInput input;
  input.me = me.id;
  input.leases = co_await round.leases(accounts);
  input.held = held;
  input.accounts = accounts;
  input.max_releases_per_round = settings.max_releases_per_round;
  for (const auto& instance : outcome.live) input.live_instances.push_back(instance.id);
  const Plan plan = plan_round(input);

  for (const auto& account : plan.lost) lose(account, LossReason::not_renewed);
  if (!plan.insert.empty()) {
    pg::Parameters parameters{text_array(plan.insert)};
    co_await round.query(kInsert, std::move(parameters));
  }
  if (!plan.renew.empty()) {
    const auto renewed = co_await round.renew(plan.renew);
    for (const auto& [account, epoch] : plan.renew)
      if (!renewed.contains(account)) lose(account, LossReason::not_renewed);
  }
  std::vector<std::string> release = plan.orphans;
  for (const auto& account : plan.release_unconfigured) {
    lose(account, LossReason::unconfigured);
    release.push_back(account);
  }
  for (const auto& account : plan.release_rebalanced) {
    lose(account, LossReason::rebalanced);
    release.push_back(account);
  }
  if (!release.empty()) {
    pg::Parameters parameters{text_array(release), me.id};
    co_await round.query(kRelease, std::move(parameters));
  }
  if (plan.claim_count > 0 && !plan.claim_candidates.empty())
    outcome.gained = co_await round.claim(plan.claim_candidates, plan.claim_count);
  co_await round.query("COMMIT");
  co_return outcome;
}

asio::awaitable<void> release_everything(pg::Connection& connection, const std::string& me, Milliseconds timeout) {
  pg::Parameters parameters{me};
  co_await connection.query(kReleaseEverything, std::move(parameters), timeout);
}

}  // namespace apsis::lease
