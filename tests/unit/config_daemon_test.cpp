// The configuration keys of the long-running daemon: schedules, catch-up/overlap/expiry policy, limits.
#include <doctest/doctest.h>

#include "config/config_loader.hpp"

using namespace apsis::config;

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
  CHECK(config.accounts.at("main").max_requests_per_second == 10.0);
  CHECK(config.accounts.at("main").max_connections == 16);
}

TEST_CASE("account limits") {
  const auto result = load_config_string(std::string(kHead) + "    max_requests_per_second: 2.5\n    max_connections: 0\n",
                                         "/etc/x/exportd.yaml");
  REQUIRE_MESSAGE(result.config, all_errors(result));
  CHECK(result.config->accounts.at("main").max_requests_per_second == 2.5);
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
