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
  CHECK(config.accounts.at("main").max_connections == 16);
}

TEST_CASE("account limits") {
  const auto result = load_config_string(std::string(kHead) + "    max_connections: 0\n", "/etc/x/exportd.yaml");
  REQUIRE_MESSAGE(result.config, all_errors(result));
  CHECK(result.config->accounts.at("main").max_connections == 0);
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
  const auto allowed = load("admin_allow_remote: true\nadmin_listen: 0.0.0.0:9464\nexports: {}\n");
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
