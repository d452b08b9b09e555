// The configuration keys of the long-running daemon: schedules, catch-up/overlap/expiry policy, limits,
// and what operators reach for: admin endpoint, history, manifests, retention, hooks.
#include <doctest/doctest.h>

#include "config/config_loader.hpp"
#include "jobs/definition_json.hpp"

using namespace apsis::config;
using namespace std::chrono_literals;

namespace {

const char* kHead = R"(state_db: ./db
output_dir: ./out
accounts:
  main:
    base_url: http://127.0.0.1:1
    client_id: id
    client_secret: s
)";

LoadResult load(const std::string& tail) {
  LoadOptions options;
  options.env = [](const std::string&) { return std::optional<std::string>(); };
  return load_config_string(kHead + tail, "/etc/x/exportd.yaml", options);
}

std::string all_errors(const LoadResult& result) {
  std::string text;
  for (const auto& e : result.errors) text += e.to_string() + "\n";
  return text;
}

}  // namespace

TEST_CASE("policies and limits load, with their defaults") {
  const auto result = load(R"(max_concurrent_downloads: 3
exports:
  a: {account: main, kind: duplicates, schedule: "every 15m", catchup: none, overlap: allow, on_expired: fail}
  b: {account: main, kind: consents, schedule: "30 6 * * *", timezone: Europe/Stockholm}
)");
  REQUIRE_MESSAGE(result.config, all_errors(result));
  const auto& config = *result.config;
  CHECK(config.max_concurrent_downloads == 3);
  const auto& a = config.exports.at("a");
  CHECK(a.catchup == Catchup::none);
  CHECK(a.overlap == Overlap::allow);
  CHECK(a.on_expired == OnExpired::fail);
  const auto& b = config.exports.at("b");
  CHECK(b.catchup == Catchup::latest);
  CHECK(b.overlap == Overlap::skip);
  CHECK(b.on_expired == OnExpired::resubmit);
  CHECK(b.schedule == "30 6 * * *");
  CHECK(b.on_failed_export == OnFailedExport::resubmit);
  CHECK(b.max_resubmits == 1);
  CHECK_FALSE(b.window);
  CHECK(config.polling.failed_export_after_503s == 3);
  CHECK(b.polling.failed_export_after_503s == 3);
  const auto& account = config.accounts.at("main");
  CHECK(account.max_connections == 16);
  CHECK(account.poll_url_field == PollUrlField::file_download_url);
  CHECK(account.budget == AccountBudget{});
  CHECK(account.budget.submits == RateBudget{1, 2s});
  CHECK(account.budget.event_submits == RateBudget{1, 2min});
  CHECK(account.budget.polls == RateBudget{30, 1min});
  CHECK(account.budget.tokens == RateBudget{5, 1min});
}

TEST_CASE("account limits, budget and poll URL field") {
  const auto result = load_config_string(std::string(kHead) +
                                             "    max_connections: 0\n"
                                             "    poll_url_field: file_download_url_v2\n"
                                             "    budget:\n"
                                             "      submits: 1/500ms\n"
                                             "      event_submits: \"1/1m30s\"\n"
                                             "      polls: 60/1m\n",
                                         "/etc/x/exportd.yaml");
  REQUIRE_MESSAGE(result.config, all_errors(result));
  const auto& account = result.config->accounts.at("main");
  CHECK(account.max_connections == 0);
  CHECK(account.poll_url_field == PollUrlField::file_download_url_v2);
  CHECK(account.budget.submits == RateBudget{1, 500ms});
  CHECK(account.budget.event_submits == RateBudget{1, 90s});
  CHECK(account.budget.polls == RateBudget{60, 1min});
  CHECK(account.budget.tokens == RateBudget{5, 1min});  // left out: the default
}

TEST_CASE("max_requests_per_second is refused at its key, naming the budget keys") {
  const auto result = load("    max_requests_per_second: 10\n    max_connections: 4\n");
  REQUIRE_FALSE(result.config);
  INFO(all_errors(result));
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].to_string() ==
        "/etc/x/exportd.yaml:8:5: accounts.main.max_requests_per_second: no longer supported: the account's API "
        "budget is set per call kind under budget: (submits, event_submits, polls, tokens), e.g. budget: "
        "{polls: 30/1m}");
}

TEST_CASE("bad budgets and poll URL fields are errors at their position") {
  const auto result = load(R"(    poll_url_field: file_download_url_2
    budget:
      polls: 30
      submits: 0/1s
      tokens: 5/0s
      event_submits: 1/2 m
      pols: 30/1m
exports: {}
)");
  REQUIRE_FALSE(result.config);
  const auto errors = all_errors(result);
  INFO(errors);
  CHECK(result.errors.size() == 6);
  CHECK(errors.find("exportd.yaml:8:21: accounts.main.poll_url_field: unknown value 'file_download_url_2' (expected "
                    "file_download_url or file_download_url_v2) (did you mean 'file_download_url_v2'?)\n") !=
        std::string::npos);
  CHECK(errors.find("exportd.yaml:10:14: accounts.main.budget.polls: expected COUNT/DURATION such as 30/1m, got "
                    "'30'\n") != std::string::npos);
  CHECK(errors.find("exportd.yaml:11:16: accounts.main.budget.submits: the count must be between 1 and 2147483647, "
                    "got '0/1s'\n") != std::string::npos);
  CHECK(errors.find("exportd.yaml:12:15: accounts.main.budget.tokens: the duration must be greater than 0, got "
                    "'5/0s'\n") != std::string::npos);
  CHECK(errors.find("exportd.yaml:13:22: accounts.main.budget.event_submits: spaces are not allowed in duration "
                    "'2 m': write e.g. 1h30m (expected COUNT/DURATION such as 30/1m)\n") != std::string::npos);
  CHECK(errors.find("exportd.yaml:14:7: unknown key 'pols' in accounts.main.budget (expected one of: submits, "
                    "event_submits, polls or tokens) (did you mean 'polls'?)\n") != std::string::npos);
}

TEST_CASE("on_failed_export, max_resubmits, window and failed_export_after_503s load") {
  const auto result = load(R"(polling: {failed_export_after_503s: 5}
exports:
  a:
    account: main
    kind: events
    window: 1d
    on_failed_export: fail
    max_resubmits: 0
    polling: {failed_export_after_503s: 2}
    request: {tags: [vip]}
  b: {account: main, kind: duplicates, max_resubmits: 3}
)");
  REQUIRE_MESSAGE(result.config, all_errors(result));
  const auto& config = *result.config;
  CHECK(config.polling.failed_export_after_503s == 5);
  const auto& a = config.exports.at("a");
  CHECK(a.on_failed_export == OnFailedExport::fail);
  CHECK(a.max_resubmits == 0);
  CHECK(a.window == std::optional<Duration>(24h));
  CHECK(a.polling.failed_export_after_503s == 2);
  CHECK(a.format == FileFormat::json);
  const auto& b = config.exports.at("b");
  CHECK(b.max_resubmits == 3);
  CHECK(b.polling.failed_export_after_503s == 5);  // inherited from the top level
}

TEST_CASE("bad on_failed_export, max_resubmits, window and failed_export_after_503s are errors at their position") {
  const auto result = load(R"(polling: {failed_export_after_503s: 0}
exports:
  a:
    account: main
    kind: duplicates
    window: 1d
    on_failed_export: retry
    max_resubmits: -1
    polling:
      failed_export_after_503s: three
  b:
    account: main
    kind: events
    window: 0s
    request: {tags: [vip], events: [e-1]}
)");
  REQUIRE_FALSE(result.config);
  const auto errors = all_errors(result);
  INFO(errors);
  CHECK(result.errors.size() == 6);
  CHECK(errors.find("exportd.yaml:8:37: polling.failed_export_after_503s: must be between 1 and 2147483647, got 0\n") !=
        std::string::npos);
  CHECK(errors.find("exportd.yaml:13:13: exports.a.window: only event exports take a window (this is kind: "
                    "duplicates)\n") != std::string::npos);
  CHECK(errors.find("exportd.yaml:14:23: exports.a.on_failed_export: unknown value 'retry' (expected resubmit or "
                    "fail)\n") != std::string::npos);
  CHECK(errors.find("exportd.yaml:15:20: exports.a.max_resubmits: must be between 0 and 2147483647, got -1\n") !=
        std::string::npos);
  CHECK(errors.find("exportd.yaml:17:33: exports.a.polling.failed_export_after_503s: expected a whole number, got "
                    "'three'\n") != std::string::npos);
  // A window with an error still counts as set: no second error asking for start_at.
  CHECK(errors.find("exportd.yaml:21:13: exports.b.window: must be greater than 0 (e.g. 10s)\n") != std::string::npos);
}

TEST_CASE("a bad schedule is a config error at its position, naming the field") {
  const auto result = load(R"(exports:
  a:
    account: main
    kind: duplicates
    schedule: "30 25 * * *"
)");
  REQUIRE_FALSE(result.config);
  const auto text = all_errors(result);
  CHECK(text.find("exportd.yaml:12:15:") != std::string::npos);
  CHECK(text.find("hour") != std::string::npos);
  CHECK(text.find("25") != std::string::npos);
}

TEST_CASE("bad policy values and negative limits are errors") {
  const auto result = load(R"(max_concurrent_downloads: -1
exports:
  a: {account: main, kind: duplicates, catchup: all, overlap: queue, on_expired: retry}
)");
  REQUIRE_FALSE(result.config);
  const auto text = all_errors(result);
  CHECK(text.find("max_concurrent_downloads") != std::string::npos);
  CHECK(text.find("catchup") != std::string::npos);
  CHECK(text.find("overlap") != std::string::npos);
  CHECK(text.find("on_expired") != std::string::npos);
  CHECK(result.errors.size() == 4);
}

TEST_CASE("operator keys load, with their defaults") {
  const auto result = load(R"(admin_listen: 127.0.0.1:9464
history_days: 30
exports:
  a:
    account: main
    kind: duplicates
    manifest: false
    keep: {count: 7, days: 14}
    on_success: [/opt/load, --table, profiles]
    on_success_timeout: 90s
  b: {account: main, kind: consents}
)");
  REQUIRE_MESSAGE(result.config, all_errors(result));
  const auto& config = *result.config;
  CHECK(config.admin_listen == "127.0.0.1:9464");
  CHECK_FALSE(config.admin_allow_remote);
  CHECK(config.history_days == 30);
  const auto& a = config.exports.at("a");
  CHECK_FALSE(a.manifest);
  CHECK(a.keep.count == 7);
  CHECK(a.keep.days == 14);
  REQUIRE(a.on_success);
  CHECK(a.on_success->argv == std::vector<std::string>{"/opt/load", "--table", "profiles"});
  CHECK(a.on_success->timeout == 90s);
  const auto& b = config.exports.at("b");
  CHECK(b.manifest);
  CHECK_FALSE(b.keep.any());
  CHECK_FALSE(b.on_success);
  const auto defaults = load("exports: {}\n");
  CHECK_FALSE(defaults.config->admin_listen);
  CHECK_FALSE(defaults.config->history_days);
}

TEST_CASE("a non-loopback admin_listen needs admin_allow_remote") {
  const auto refused = load("admin_listen: 0.0.0.0:9464\nexports: {}\n");
  CHECK_FALSE(refused.config);
  CHECK(all_errors(refused).find("exportd.yaml:8:15: admin_listen: 0.0.0.0:9464 is reachable from other machines") !=
        std::string::npos);
  const auto allowed = load("admin_allow_remote: true\nadmin_listen: 0.0.0.0:9464\nexports: {}\nadmin_web:\n"
                            "  basic_auth_users: {alice: $2b$04$ZX5JRp1RlXrPcwtVmf2ZW.YnPMvwnarFtlXJROYJxhBRqPirxfv9y}\n");
  REQUIRE_MESSAGE(allowed.config, all_errors(allowed));
  CHECK(allowed.config->admin_allow_remote);
  CHECK(load("admin_listen: '[::1]:9464'\nexports: {}\n").config);
  const auto bad = load("admin_listen: metrics.example.com:80\nexports: {}\n");
  CHECK_FALSE(bad.config);
  CHECK(all_errors(bad).find("exportd.yaml:8:15: admin_listen:") != std::string::npos);
}

TEST_CASE("bad operator keys are errors at their position") {
  const auto result = load(R"(history_days: 0
exports:
  a:
    account: main
    kind: duplicates
    manifest: yes please
    keep: {count: 0, weeks: 2}
    on_success: /usr/bin/load
  b:
    account: main
    kind: duplicates
    keep: {}
    on_success: []
    on_success_timeout: 5m
  c:
    account: main
    kind: duplicates
    on_success_timeout: 5m
)");
  CHECK_FALSE(result.config);
  const auto errors = all_errors(result);
  INFO(errors);
  CHECK(errors.find("exportd.yaml:8:15: history_days: must be between 1") != std::string::npos);
  CHECK(errors.find("exportd.yaml:13:15: exports.a.manifest: unknown value 'yes please' (expected true or false)") !=
        std::string::npos);
  CHECK(errors.find("exportd.yaml:14:19: exports.a.keep.count: must be between 1") != std::string::npos);
  CHECK(errors.find("unknown key 'weeks'") != std::string::npos);
  CHECK(errors.find("exportd.yaml:15:17: exports.a.on_success: expected a non-empty list") != std::string::npos);
  CHECK(errors.find("exportd.yaml:19:11: exports.b.keep: expected count: N and/or days: D") != std::string::npos);
  CHECK(errors.find("exportd.yaml:20:17: exports.b.on_success: expected a non-empty list") != std::string::npos);
  CHECK(errors.find("exportd.yaml:25:25: exports.c.on_success_timeout: there is no on_success command") !=
        std::string::npos);
}

TEST_CASE("a job's stored definition keeps manifest, keep and on_success") {
  const auto result = load(R"(exports:
  a:
    account: main
    kind: duplicates
    manifest: false
    keep: {days: 3}
    on_success: [/bin/echo, "two words"]
    on_success_timeout: 2s
)");
  REQUIRE_MESSAGE(result.config, all_errors(result));
  const auto stored = apsis::jobs::definition_from_json(apsis::jobs::definition_to_json(result.config->exports.at("a")));
  CHECK_FALSE(stored.manifest);
  CHECK(stored.keep == Retention{std::nullopt, 3});
  REQUIRE(stored.on_success);
  CHECK(*stored.on_success == SuccessHook{{"/bin/echo", "two words"}, 2s});
}

TEST_CASE("a definition stored before these keys existed gets the defaults") {
  const auto result = load("exports:\n  a: {account: main, kind: duplicates}\n");
  REQUIRE(result.config);
  auto json = apsis::jobs::definition_to_json(result.config->exports.at("a"));
  const auto cut = json.find(",\"manifest\":true");
  REQUIRE(cut != std::string::npos);
  json.erase(cut, std::string(",\"manifest\":true").size());
  const auto stored = apsis::jobs::definition_from_json(json);
  CHECK(stored.manifest);
  CHECK_FALSE(stored.keep.any());
  CHECK_FALSE(stored.on_success);
}
