#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
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
