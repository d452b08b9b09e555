#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lease/keeper.hpp"
#include "lease/plan.hpp"
#include "pg/connection.hpp"
#include "pg/run_to_completion.hpp"
#include "pg/settings.hpp"
#include "store/postgres_job_store.hpp"
#include "test_cluster.hpp"

using namespace apsis;
using namespace apsis::lease;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> numbered(const std::string& prefix, int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(prefix + (i < 10 ? "0" : "") + std::to_string(i));
  return names;
}

LeaseRow free_row(const std::string& account) { return {account, std::nullopt, 0, true}; }
LeaseRow held_row(const std::string& account, const std::string& owner, std::int64_t epoch, bool expired = false) {
  return {account, owner, epoch, expired};
}

}  // namespace

// ---- the planner: pure, table-tested ----

TEST_CASE("lease plan: fair share is the ceiling of accounts over live instances") {
  CHECK(fair_share(10, 1) == 10);
  CHECK(fair_share(10, 2) == 5);
  CHECK(fair_share(10, 3) == 4);
  CHECK(fair_share(10, 4) == 3);
  CHECK(fair_share(30, 3) == 10);
  CHECK(fair_share(1, 3) == 1);
  CHECK(fair_share(0, 3) == 0);
  CHECK(fair_share(5, 0) == 5);  // no instance listed: this one counts
}

TEST_CASE("lease plan: a lone instance inserts and claims every configured account, in name order") {
  const auto plan = plan_round({"me", {}, {}, {}, {"b", "a", "c", "a"}});
  CHECK(plan.share == 3);
  CHECK(plan.insert == std::vector<std::string>{"a", "b", "c"});
  CHECK(plan.claim_candidates == std::vector<std::string>{"a", "b", "c"});
  CHECK(plan.claim_count == 3);
  CHECK(plan.renew.empty());
  CHECK(plan.lost.empty());
}

TEST_CASE("lease plan: two instances, the second sees the first's share and takes the rest") {
  const auto accounts = numbered("a", 10);
  std::vector<LeaseRow> rows;
  std::map<std::string, std::int64_t> first_holds;
  for (int i = 0; i < 10; ++i) {
    if (i < 5) {
      rows.push_back(held_row(accounts[i], "one", 1));
      first_holds[accounts[i]] = 1;
    } else {
      rows.push_back(free_row(accounts[i]));
    }
  }
  const auto second = plan_round({"two", {"one", "two"}, rows, {}, accounts});
  CHECK(second.share == 5);
  CHECK(second.claim_count == 5);
  CHECK(second.claim_candidates == std::vector<std::string>(accounts.begin() + 5, accounts.end()));
  CHECK(second.insert.empty());

  const auto first = plan_round({"one", {"one", "two"}, rows, first_holds, accounts});
  CHECK(first.renew == first_holds);
  CHECK(first.claim_count == 0);
  CHECK(first.release_rebalanced.empty());
}

TEST_CASE("lease plan: a joining instance makes those above their share release one account per round") {
  const auto accounts = numbered("a", 10);
  std::vector<LeaseRow> rows;
  std::map<std::string, std::int64_t> mine;
  for (int i = 0; i < 10; ++i) {
    rows.push_back(held_row(accounts[i], i < 5 ? "one" : "two", 3));
    if (i < 5) mine[accounts[i]] = 3;
  }
  const auto one = plan_round({"one", {"one", "two", "three"}, rows, mine, accounts});
  CHECK(one.share == 4);
  CHECK(one.release_rebalanced == std::vector<std::string>{"a04"});  // one per round, the last by name
  CHECK(one.renew.size() == 4);
  CHECK_FALSE(one.renew.contains("a04"));
  CHECK(one.claim_count == 0);

  // The newcomer holds nothing and every account is held by a live instance: nothing to claim yet.
  const auto three = plan_round({"three", {"one", "two", "three"}, rows, {}, accounts});
  CHECK(three.claim_count == 4);
  CHECK(three.claim_candidates.empty());

  // Next round, a04 is free: the newcomer takes it.
  rows[4] = free_row("a04");
  const auto later = plan_round({"three", {"one", "two", "three"}, rows, {}, accounts});
  CHECK(later.claim_candidates == std::vector<std::string>{"a04"});
}

TEST_CASE("lease plan: with no limit per round, everything above the share is released at once") {
  const auto accounts = numbered("a", 10);
  std::vector<LeaseRow> rows;
  std::map<std::string, std::int64_t> mine;
  for (const auto& account : accounts) {
    rows.push_back(held_row(account, "one", 1));
    mine[account] = 1;
  }
  PlanInput input{"one", {"one", "two", "three"}, rows, mine, accounts};
  input.max_releases_per_round = 0;
  const auto all = plan_round(input);
  CHECK(all.release_rebalanced == std::vector<std::string>{"a04", "a05", "a06", "a07", "a08", "a09"});
  CHECK(all.renew.size() == 4);
  input.max_releases_per_round = 2;
  CHECK(plan_round(input).release_rebalanced == std::vector<std::string>{"a08", "a09"});
}

TEST_CASE("lease plan: an instance at its share releases nothing; below it, claims up to it") {
  const auto accounts = numbered("a", 10);
  std::vector<LeaseRow> rows;
  std::map<std::string, std::int64_t> mine;
  for (int i = 0; i < 10; ++i) rows.push_back(free_row(accounts[i]));
  for (int i = 0; i < 3; ++i) {
    rows[i] = held_row(accounts[i], "me", 7);
    mine[accounts[i]] = 7;
  }
  const auto plan = plan_round({"me", {"me", "other", "third"}, rows, mine, accounts});
  CHECK(plan.share == 4);
  CHECK(plan.release_rebalanced.empty());
  CHECK(plan.claim_count == 1);
  CHECK(plan.claim_candidates.front() == "a03");
}

TEST_CASE("lease plan: a dead instance's expired accounts are claimed after the free ones") {
  const std::vector<std::string> accounts{"a", "b", "c", "d"};
  const std::vector<LeaseRow> rows{held_row("a", "dead", 4, true), free_row("b"), held_row("c", "dead", 9, true)};
  // "d" has no row yet; "dead" is not live.
  const auto plan = plan_round({"me", {"me"}, rows, {}, accounts});
  CHECK(plan.insert == std::vector<std::string>{"d"});
  CHECK(plan.claim_candidates == std::vector<std::string>{"b", "d", "a", "c"});
  CHECK(plan.claim_count == 4);
}

TEST_CASE("lease plan: an account held by a live instance is never a candidate, even from a dead-looking owner") {
  // The owner's instance row expired but its lease has not: only the lease's own expiry frees it.
  const auto plan = plan_round({"me", {"me"}, {held_row("a", "gone", 2, false)}, {}, {"a"}});
  CHECK(plan.claim_candidates.empty());
  CHECK(plan.claim_count == 1);
}

TEST_CASE("lease plan: an account no longer configured is released at once, whatever the share") {
  const std::vector<LeaseRow> rows{held_row("a", "me", 1), held_row("old", "me", 2), held_row("older", "me", 2)};
  const auto plan = plan_round({"me", {"me"}, rows, {{"a", 1}, {"old", 2}, {"older", 2}}, {"a"}});
  CHECK(plan.release_unconfigured == std::vector<std::string>{"old", "older"});
  CHECK(plan.renew == std::map<std::string, std::int64_t>{{"a", 1}});
  CHECK(plan.release_rebalanced.empty());
}

TEST_CASE("lease plan: a held lease the row no longer confirms is lost before any write") {
  const std::vector<LeaseRow> rows{held_row("expired", "me", 1, true), held_row("taken", "other", 2),
                                   held_row("newer", "me", 5)};
  const std::map<std::string, std::int64_t> mine{{"expired", 1}, {"taken", 1}, {"newer", 4}, {"vanished", 1}};
  const auto plan =
      plan_round({"me", {"me", "other"}, rows, mine, {"expired", "taken", "newer", "vanished"}});
  CHECK(plan.lost == std::vector<std::string>{"expired", "newer", "taken", "vanished"});
  CHECK(plan.renew.empty());
  // "newer" names us at an epoch we do not hold: freed and claimed afresh; "expired" is claimable.
  CHECK(plan.orphans == std::vector<std::string>{"newer"});
  CHECK(plan.insert == std::vector<std::string>{"vanished"});
  CHECK(plan.claim_candidates == std::vector<std::string>{"vanished", "expired", "newer"});
  CHECK(plan.claim_count == 2);
}

TEST_CASE("lease plan: rows naming us that we do not hold (given up while the database was away) are freed") {
  const std::vector<LeaseRow> rows{held_row("a", "me", 3), held_row("b", "me", 3)};
  const auto plan = plan_round({"me", {"me"}, rows, {}, {"a", "b"}});
  CHECK(plan.orphans == std::vector<std::string>{"a", "b"});
  CHECK(plan.claim_candidates == std::vector<std::string>{"a", "b"});
  CHECK(plan.claim_count == 2);
}

TEST_CASE("lease plan: text arrays quote and escape every value") {
  CHECK(text_array({}) == "{}");
  CHECK(text_array({"a", "b c"}) == R"({"a","b c"})");
  CHECK(text_array({R"(q"u\o)", "{x,y}"}) == R"({"q\"u\\o","{x,y}"})");
}

// ---- the keeper against a throw-away PostgreSQL cluster ----

namespace {

namespace asio = boost::asio;

asio::awaitable<pg::Result> query_once(pg::ConnectionSettings settings, std::string sql) {
  auto connection = co_await pg::Connection::connect(settings, std::chrono::seconds(5));
  co_return co_await connection.query(sql, pg::Parameters{}, std::chrono::seconds(5));
}

// A fresh database with the daemon's schema (the job store's migration creates `instances` and
// `leases`); queries run on a private io_context, so the keepers' loop stands still while the test looks.
class Database {
 public:
  explicit Database(const std::string& name)
      : settings_(pg::parse_database_url(testing::TestCluster::shared().create_database(name),
                                         [](const std::string&) { return std::nullopt; })) {
    store::PostgresJobStore::open(settings_);
  }
  const pg::ConnectionSettings& settings() const { return settings_; }

  // account → owner ("" when free)
  std::map<std::string, std::string> owners() const {
    asio::io_context io;
    const auto rows = pg::run_to_completion(io, query_once(settings_, "SELECT account, owner FROM leases"));
    std::map<std::string, std::string> owners;
    for (int r = 0; r < rows.rows(); ++r) owners[std::string(rows.text(r, 0))] = std::string(rows.text(r, 1));
    return owners;
  }
  std::int64_t count(const std::string& sql) const {
    asio::io_context io;
    return pg::run_to_completion(io, query_once(settings_, sql)).int64(0, 0);
  }

 private:
  pg::ConnectionSettings settings_;
};

// A keeper with its own book, recording what it was told.
class Member {
 public:
  Member(asio::io_context& io, const Database& database, std::vector<std::string> accounts, std::uint64_t seed,
         KeeperOptions options, std::string config_hash = "config-1") {
    Random random(seed);
    auto identity = this_process(random_instance_id(random), std::move(config_hash), "test");
    KeeperCallbacks callbacks{
        [this](const std::string& account, const store::Tenure& tenure) {
          CHECK(book->tenure(account) == tenure);  // the book first, then the callback
          gained.push_back(account);
        },
        [this](const std::string& account, LossReason reason) {
          CHECK_FALSE(book->tenure(account).has_value());
          lost.emplace_back(account, reason);
        }};
    keeper = std::make_unique<LeaseKeeper>(
        io.get_executor(), database.settings(), std::move(identity), std::move(accounts), options, book,
        std::move(callbacks), [this](Level, std::string_view message) { log += std::string(message) + "\n"; },
        random);
    keeper->start();
  }

  std::set<std::string> held() const {
    const auto accounts = keeper->snapshot().held;
    return {accounts.begin(), accounts.end()};
  }
  std::size_t losses(LossReason reason) const {
    std::size_t count = 0;
    for (const auto& [account, why] : lost) count += why == reason;
    return count;
  }

  std::shared_ptr<store::LeaseBook> book = std::make_shared<store::LeaseBook>();
  std::vector<std::string> gained;
  std::vector<std::pair<std::string, LossReason>> lost;
  std::string log;
  std::unique_ptr<LeaseKeeper> keeper;
};

// Runs the loop until `done` or `limit` passes; false when it did not happen in time.
bool run_until(asio::io_context& io, const std::function<bool()>& done, Milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    io.restart();
    io.run_for(20ms);
  }
  return true;
}

KeeperOptions short_leases() {
  KeeperOptions options;
  options.ttl = 1s;
  options.renew_interval = 200ms;
  options.safety_margin = 200ms;
  return options;
}

// Every account held by exactly one member, as the members and the database both say.
bool shared_exactly_once(const std::vector<Member*>& members, const Database& database, std::size_t accounts) {
  std::map<std::string, std::string> held;
  for (const auto* member : members)
    for (const auto& account : member->held())
      if (!held.emplace(account, member->keeper->id()).second) return false;
  return held.size() == accounts && database.owners() == held;
}

std::string logs(const std::vector<Member*>& members) {
  std::string all;
  for (const auto* member : members) all += "--- " + member->keeper->id() + "\n" + member->log;
  return all;
}

}  // namespace

TEST_CASE("lease keeper: two instances share ten accounts five and five; a third joins and takes its share") {
  Database database("lease_share");
  asio::io_context io;
  const auto accounts = numbered("acct", 10);
  // Leases that outlive a stall of this (shared, loaded) machine: every loss here must be a hand-over.
  KeeperOptions options = short_leases();
  options.ttl = 5s;
  Member one(io, database, accounts, 1, options);
  Member two(io, database, accounts, 2, options);
  const auto balanced = [&](std::vector<Member*> members, std::size_t most) {
    for (const auto* member : members)
      if (member->held().size() > most) return false;
    return shared_exactly_once(members, database, accounts.size());
  };
  CHECK_MESSAGE(run_until(io, [&] { return balanced({&one, &two}, 5); }, 15s), logs({&one, &two}));
  CHECK(one.held().size() == 5);
  CHECK(two.held().size() == 5);

  Member three(io, database, accounts, 3, options);
  CHECK_MESSAGE(run_until(io, [&] { return balanced({&one, &two, &three}, 4); }, 15s), logs({&one, &two, &three}));
  CHECK(three.held().size() >= 2);
  CHECK(one.losses(LossReason::rebalanced) + two.losses(LossReason::rebalanced) >= 2);
  CHECK(one.lost.size() + two.lost.size() == one.losses(LossReason::rebalanced) + two.losses(LossReason::rebalanced));
  for (const auto* member : {&one, &two, &three})
    for (const auto& account : member->held()) CHECK(member->book->tenure(account)->owner == member->keeper->id());
}

TEST_CASE("lease keeper: a keeper that stops without releasing loses its accounts to the other after the TTL") {
  Database database("lease_crash");
  asio::io_context io;
  const auto accounts = numbered("acct", 10);
  Member one(io, database, accounts, 11, short_leases());
  auto two = std::make_unique<Member>(io, database, accounts, 12, short_leases());
  REQUIRE_MESSAGE(run_until(io, [&] { return shared_exactly_once({&one, two.get()}, database, 10) && one.held().size() == 5; }, 15s),
                  logs({&one, two.get()}));
  std::map<std::string, std::int64_t> epochs;
  for (const auto& account : two->held()) epochs[account] = two->book->tenure(account)->epoch;
  const auto book = two->book;
  two.reset();  // like a crash: nothing released
  for (const auto& [account, epoch] : epochs) CHECK_FALSE(book->tenure(account).has_value());

  CHECK_MESSAGE(run_until(io, [&] { return shared_exactly_once({&one}, database, 10); }, 15s), one.log);
  for (const auto& [account, epoch] : epochs) {
    const auto tenure = one.book->tenure(account);
    REQUIRE(tenure.has_value());
    CHECK(tenure->epoch > epoch);
  }
}

TEST_CASE("lease keeper: release_all hands every account over at once and removes the instance") {
  Database database("lease_release");
  asio::io_context io;
  const auto accounts = numbered("acct", 10);
  // A TTL far beyond the wait below: only the release can hand the accounts over in time.
  KeeperOptions options;
  options.ttl = 60s;
  options.renew_interval = 200ms;
  Member one(io, database, accounts, 21, options);
  Member two(io, database, accounts, 22, options);
  REQUIRE_MESSAGE(run_until(io, [&] { return shared_exactly_once({&one, &two}, database, 10) && one.held().size() == 5; }, 15s),
                  logs({&one, &two}));
  const auto leaving = two.held();

  auto released = asio::co_spawn(io, two.keeper->release_all(), asio::use_future);
  CHECK(run_until(io, [&] { return released.wait_for(0s) == std::future_status::ready; }, 5s));
  released.get();
  CHECK(two.held().empty());
  CHECK(two.losses(LossReason::shutdown) == 5);
  for (const auto& account : leaving) CHECK_FALSE(two.book->tenure(account).has_value());
  CHECK(database.count("SELECT count(*) FROM instances WHERE id = '" + two.keeper->id() + "'") == 0);

  CHECK_MESSAGE(run_until(io, [&] { return shared_exactly_once({&one}, database, 10); }, 10s), logs({&one, &two}));
}

TEST_CASE("lease keeper: a database outage loses every lease within the TTL; the keepers reclaim when it returns") {
  Database database("lease_outage");
  auto& cluster = testing::TestCluster::shared();
  asio::io_context io;
  const auto accounts = numbered("acct", 10);
  Member one(io, database, accounts, 31, short_leases());
  Member two(io, database, accounts, 32, short_leases());
  REQUIRE_MESSAGE(run_until(io, [&] { return shared_exactly_once({&one, &two}, database, 10) && one.held().size() == 5; }, 15s),
                  logs({&one, &two}));

  cluster.stop();
  const bool gave_up = run_until(io, [&] { return one.held().empty() && two.held().empty(); }, 5s);
  CHECK_MESSAGE(gave_up, logs({&one, &two}));
  CHECK(one.losses(LossReason::overdue) == 5);
  CHECK(two.losses(LossReason::overdue) == 5);
  for (const auto& account : accounts) {
    CHECK_FALSE(one.book->tenure(account).has_value());
    CHECK_FALSE(two.book->tenure(account).has_value());
  }
  CHECK(one.log.find("renewal failed") != std::string::npos);

  cluster.start();
  CHECK_MESSAGE(run_until(io, [&] { return shared_exactly_once({&one, &two}, database, 10) && one.held().size() == 5; }, 20s),
                logs({&one, &two}));
}

TEST_CASE("lease keeper: an instance with another configuration is named in the snapshot and logged once") {
  Database database("lease_config");
  asio::io_context io;
  const auto accounts = numbered("acct", 4);
  Member one(io, database, accounts, 41, short_leases(), "config-1");
  Member two(io, database, accounts, 42, short_leases(), "config-2");
  CHECK(run_until(io, [&] { return one.keeper->snapshot().config_mismatches.size() == 1; }, 10s));
  CHECK(one.keeper->snapshot().config_mismatches.front() == two.keeper->id());
  run_until(io, [] { return false; }, 1s);  // several more rounds
  const auto snapshot = one.keeper->snapshot();
  CHECK(snapshot.live_instances.size() == 2);
  CHECK(snapshot.last_renewal.has_value());
  CHECK(snapshot.connected);
  std::size_t warnings = 0;
  for (auto at = one.log.find("different configuration"); at != std::string::npos;
       at = one.log.find("different configuration", at + 1))
    ++warnings;
  CHECK(warnings == 1);
}

TEST_CASE("lease keeper: after a reload, an account no longer configured is released and a new one claimed") {
  Database database("lease_reload");
  asio::io_context io;
  Member one(io, database, {"a", "b", "c"}, 51, short_leases());
  REQUIRE_MESSAGE(run_until(io, [&] { return one.held() == std::set<std::string>{"a", "b", "c"}; }, 10s), one.log);
  one.keeper->reconfigure({"a", "b", "d"}, "config-2");
  CHECK_MESSAGE(run_until(io, [&] { return one.held() == std::set<std::string>{"a", "b", "d"}; }, 10s), one.log);
  CHECK(one.losses(LossReason::unconfigured) == 1);
  CHECK(database.owners().at("c").empty());
  CHECK(database.count("SELECT count(*) FROM instances WHERE config_hash = 'config-2'") == 1);
}
