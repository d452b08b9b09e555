#include <doctest/doctest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <map>

#include <sys/stat.h>

#include "config/config_loader.hpp"
#include "config/yaml_json.hpp"
#include "temp_dir.hpp"

using namespace apsis::config;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kSecret = "s3cr3t-VALUE-never-printed";

// A self-signed CA certificate (P-256, valid until 2126): what a ca_file holds.
const std::string kCaPem = R"(-----BEGIN CERTIFICATE-----
MIIBhzCCAS2gAwIBAgIUWrFTS8is16O8oXQncbcO0NQNdW0wCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNYXBzaXMtdGVzdC1jYTAgFw0yNjExMzAwNzA5MjlaGA8yMTI2
MTEwNjA3MDkyOVowGDEWMBQGA1UEAwwNYXBzaXMtdGVzdC1jYTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABIlXXhGduKzmSeVRE5jj8XIecvT9mTpBG3Ca+rk6Ioiy
tbXjDp7uzhe+okz7YpXe1W+LzB+NFqgxPeSujp/ygGSjUzBRMB0GA1UdDgQWBBTk
2V2L0GjIoRfYmF5J9vMxUE0S5zAfBgNVHSMEGDAWgBTk2V2L0GjIoRfYmF5J9vMx
UE0S5zAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIB/otd4U274u
ufWjPAzmF/L0VdFRaasnYv9nMkEmbfMgAiEAxsrYxtn34bmwckpU1QXC9Pzvhmvt
qFRdFOCRPxNiRoA=
-----END CERTIFICATE-----
)";

EnvLookup fake_env(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    const auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

// A temp directory for the config "apsis.yaml", with a secret file and a small zoneinfo tree.
struct Fixture {
  TempDir dir;
  LoadOptions options;

  Fixture() {
    write("secret", kSecret + "\r\n");
    write("ca.pem", kCaPem);
    write("zoneinfo/UTC", "TZif");
    write("zoneinfo/Europe/Stockholm", "TZif");
    options.env = fake_env({{"APSIS_CLIENT_ID", "client-123"}, {"EMPTY", ""}, {"ATTEMPTS", "3"}});
    options.zoneinfo_dir = dir.path() / "zoneinfo";
  }

  LoadResult load(std::string_view yaml) const { return load_config_string(yaml, config_file(), options); }
  fs::path config_file() const { return dir.path() / "apsis.yaml"; }
  fs::path write(const fs::path& relative, const std::string& text) const {
    const auto file = dir.path() / relative;
    fs::create_directories(file.parent_path());
    write_file(file, text);
    return file;
  }
};

std::string all_errors(const LoadResult& result) {
  std::string text;
  for (const auto& error : result.errors) text += error.to_string() + "\n";
  return text;
}

// True when some error sits at line:column (1-based) and its message contains every one of `words`.
bool has_error(const LoadResult& result, int line, int column, std::initializer_list<std::string_view> words) {
  for (const auto& error : result.errors) {
    if (error.line != line || error.column != column) continue;
    bool all = true;
    for (auto word : words) all = all && error.message.find(word) != std::string::npos;
    if (all) return true;
  }
  return false;
}

// True when some error, wherever it is, contains every one of `words`.
bool has_error(const LoadResult& result, std::initializer_list<std::string_view> words) {
  for (const auto& error : result.errors) {
    bool all = true;
    for (auto word : words) all = all && error.message.find(word) != std::string::npos;
    if (all) return true;
  }
  return false;
}

// The smallest valid file, followed by `exports`.
std::string minimal(std::string_view exports = "exports: {}\n") {
  return "state_db: state.db\n"
         "output_dir: out\n"
         "accounts:\n"
         "  main:\n"
         "    base_url: https://api.apsis.one\n"
         "    client_id: id\n"
         "    client_secret: secret\n" +
         std::string(exports);
}

const char* const kFullConfig = R"(state_db: ./state/jobs.sqlite3
output_dir: /srv/exports
accounts:
  main:
    base_url: https://API.apsis.one/
    client_id: ${APSIS_CLIENT_ID}
    client_secret_file: secret
    ca_file: ca.pem
    token_path: /oauth2/token
    paths: { duplicates: /v2/duplicates, consents: /v2/consents, segments: /v2/segments, events: /v2/exports }
    request_timeout: 90s
  apac:
    base_url: https://api-apac.apsis.one:8443
    client_id: apac-id
    client_secret: inline-secret
polling:
  initial_delay: 20s
  multiplier: 1.5
  max_delay: 10m
  url_validity: 12h
retry:
  initial_delay: 2s
  multiplier: 3
  max_delay: 2m
  max_attempts: 4
  max_download_attempts: 2
exports:
  duplicate-emails:
    account: main
    kind: duplicates
    schedule: "30 6 * * *"
    timezone: Europe/Stockholm
    request:
      segments:
        timezone: Europe/Stockholm
        segment_discriminators: { women: usercreated.segments.women-rjz6b8td2n }
        filter: "women"
      topic_discriminators: [usercreated.topics.shoes-8u78kijgzn]
      limit: 100
      ratio: 0.5
      enabled: true
      nothing: ~
      code: "007"
    format: xlsx
    compression: gzip
    output: "{export}/{scheduled:%Y/%m}/{job}.{ext}"
    polling: { initial_delay: 2s }
  consents.weekly:
    account: apac
    kind: consents
  vips:
    account: main
    kind: segments
    request: { segment_definition: "tags contains 'vip'" }
  events:
    account: apac
    kind: events
    request: { attributes: [a-1], events: [e-1], start_at: "2024-03-01T00:00:00Z" }
)";

}  // namespace

TEST_CASE("a full configuration loads into the value types") {
  Fixture f;
  const auto result = f.load(kFullConfig);
  INFO(all_errors(result));
  REQUIRE(result.errors.empty());
  REQUIRE(result.config.has_value());
  const Config& config = *result.config;

  CHECK(config.source == f.config_file());
  CHECK(config.state_db == f.dir.path() / "state/jobs.sqlite3");
  CHECK(config.output_dir == fs::path("/srv/exports"));

  REQUIRE(config.accounts.size() == 2);
  const Account& main = config.accounts.at("main");
  CHECK(main.name == "main");
  CHECK(main.base_url == "https://api.apsis.one");
  CHECK(main.client_id == "client-123");
  CHECK(main.client_secret == kSecret);
  CHECK(main.ca_file == f.dir.path() / "ca.pem");
  CHECK(main.token_path == "/oauth2/token");
  CHECK(main.export_paths.at(ExportKind::duplicates) == "/v2/duplicates");
  CHECK(main.export_paths.at(ExportKind::consents) == "/v2/consents");
  CHECK(main.export_paths.at(ExportKind::segments) == "/v2/segments");
  CHECK(main.export_paths.at(ExportKind::events) == "/v2/exports");
  CHECK(main.request_timeout == 90s);
  const Account& apac = config.accounts.at("apac");
  CHECK(apac.base_url == "https://api-apac.apsis.one:8443");
  CHECK(apac.client_secret == "inline-secret");
  CHECK_FALSE(apac.ca_file.has_value());
  CHECK(apac.token_path == "/oauth/token");
  CHECK(apac.export_paths.at(ExportKind::duplicates) == "/audience/profiles/reports/duplicates");
  CHECK(apac.export_paths.at(ExportKind::segments) == "/audience/profiles/reports/segments");
  CHECK(apac.export_paths.at(ExportKind::events) == "/audience/profiles/exports");
  CHECK(apac.request_timeout == 60s);

  CHECK(config.polling.backoff.initial_delay == 20s);
  CHECK(config.polling.backoff.multiplier == 1.5);
  CHECK(config.polling.backoff.max_delay == 10min);
  CHECK(config.polling.url_validity == 12h);
  CHECK(config.retry.backoff.initial_delay == 2s);
  CHECK(config.retry.backoff.multiplier == 3.0);
  CHECK(config.retry.backoff.max_delay == 2min);
  CHECK(config.retry.max_attempts == 4);
  CHECK(config.retry.max_download_attempts == 2);

  REQUIRE(config.exports.size() == 4);
  const ExportDefinition& dup = config.exports.at("duplicate-emails");
  CHECK(dup.name == "duplicate-emails");
  CHECK(dup.account == "main");
  CHECK(dup.kind == ExportKind::duplicates);
  CHECK(dup.schedule == "30 6 * * *");
  CHECK(dup.timezone == "Europe/Stockholm");
  CHECK(dup.format == FileFormat::xlsx);
  CHECK(dup.compression == Compression::gzip);
  CHECK(dup.output_template == "{export}/{scheduled:%Y/%m}/{job}.{ext}");
  // The override replaces initial_delay only; the rest comes from the top-level polling.
  CHECK(dup.polling.backoff.initial_delay == 2s);
  CHECK(dup.polling.backoff.multiplier == 1.5);
  CHECK(dup.polling.backoff.max_delay == 10min);
  CHECK(dup.polling.url_validity == 12h);

  const auto body = boost::json::parse(dup.request_json).as_object();
  CHECK(body.at("segments").at("timezone").as_string() == "Europe/Stockholm");
  CHECK(body.at("segments").at("segment_discriminators").at("women").as_string() ==
        "usercreated.segments.women-rjz6b8td2n");
  CHECK(body.at("segments").at("filter").as_string() == "women");
  CHECK(body.at("topic_discriminators").as_array().at(0).as_string() == "usercreated.topics.shoes-8u78kijgzn");
  CHECK(body.at("limit").as_int64() == 100);
  CHECK(body.at("ratio").as_double() == 0.5);
  CHECK(body.at("enabled").as_bool() == true);
  CHECK(body.at("nothing").is_null());
  CHECK(body.at("code").as_string() == "007");

  const ExportDefinition& consents = config.exports.at("consents.weekly");
  CHECK(consents.account == "apac");
  CHECK(consents.kind == ExportKind::consents);
  CHECK_FALSE(consents.schedule.has_value());
  CHECK(consents.timezone == "UTC");
  CHECK(consents.request_json == "{}");
  CHECK(consents.format == FileFormat::csv);
  CHECK(consents.compression == Compression::none);
  CHECK(consents.output_template == ExportDefinition{}.output_template);
  CHECK(consents.polling.backoff.initial_delay == 20s);
  CHECK(consents.polling.url_validity == 12h);

  const ExportDefinition& vips = config.exports.at("vips");
  CHECK(vips.kind == ExportKind::segments);
  CHECK(vips.format == FileFormat::csv);
  CHECK(vips.request_json == R"({"segment_definition":"tags contains 'vip'"})");
  const ExportDefinition& events = config.exports.at("events");
  CHECK(events.kind == ExportKind::events);
  CHECK(events.format == FileFormat::json);  // the default of events exports
  CHECK_FALSE(events.window);
}

TEST_CASE("a minimal configuration gets the defaults") {
  Fixture f;
  const auto result = f.load(minimal());
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  CHECK(result.config->output_dir == f.dir.path() / "out");
  CHECK(result.config->exports.empty());
  CHECK(result.config->polling.backoff.initial_delay == PollingPolicy{}.backoff.initial_delay);
  CHECK(result.config->retry.max_attempts == RetryPolicy{}.max_attempts);
  CHECK(result.config->accounts.at("main").client_secret == "secret");
}

TEST_CASE("load_config_file reads the file and resolves paths against its directory") {
  Fixture f;
  const auto file = f.write("etc/apsis.yaml", minimal());
  const auto result = load_config_file(file, f.options);
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  CHECK(result.config->source == file);
  CHECK(result.config->state_db == f.dir.path() / "etc/state.db");
}

TEST_CASE("a missing file is one error at line 0 with the OS reason") {
  Fixture f;
  const auto missing = f.dir.path() / "nope.yaml";
  const auto result = load_config_file(missing, f.options);
  CHECK_FALSE(result.config.has_value());
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].file == missing.string());
  CHECK(result.errors[0].line == 0);
  CHECK(result.errors[0].column == 0);
  CHECK(result.errors[0].message.find("No such file or directory") != std::string::npos);
  CHECK(result.errors[0].to_string() == missing.string() + ": " + result.errors[0].message);
}

TEST_CASE("a directory given as the file is an error with the OS reason") {
  Fixture f;
  const auto result = load_config_file(f.dir.path(), f.options);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].message.find("Is a directory") != std::string::npos);
}

TEST_CASE("ConfigError::to_string is FILE:LINE:COL: MESSAGE") {
  const ConfigError error{"etc/apsis.yaml", 3, 7, "something is wrong"};
  CHECK(error.to_string() == "etc/apsis.yaml:3:7: something is wrong");
}

TEST_CASE("YAML syntax errors are reported at their position") {
  Fixture f;
  const auto result = f.load("state_db: x\naccounts: [1\noutput_dir: y\n");
  CHECK_FALSE(result.config.has_value());
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].line == 3);
  CHECK(result.errors[0].message.find("invalid YAML") != std::string::npos);
  CHECK(result.errors[0].to_string().starts_with(f.config_file().string() + ":3:"));
  const auto bad = f.load("a: b: c\n");
  CHECK(has_error(bad, 1, 5, {"invalid YAML", "illegal map value"}));
}

TEST_CASE("an empty file, a non-mapping and several documents are errors") {
  Fixture f;
  CHECK(has_error(f.load(""), 1, 1, {"empty"}));
  CHECK(has_error(f.load("# nothing\n"), 1, 1, {"empty"}));
  CHECK(has_error(f.load("- a\n- b\n"), 1, 1, {"expected a mapping at the top level", "got a list"}));
  CHECK(has_error(f.load(minimal() + "---\nfoo: 1\n"), 10, 1, {"second YAML document"}));
}

TEST_CASE("missing required keys are named") {
  Fixture f;
  const auto result = f.load("polling: {}\n");
  CHECK(has_error(result, 1, 1, {"missing required key 'state_db'", "at the top level"}));
  CHECK(has_error(result, 1, 1, {"missing required key 'output_dir'"}));
  CHECK(has_error(result, 1, 1, {"missing required key 'accounts'"}));

  const auto account = f.load("state_db: s\noutput_dir: o\naccounts:\n  main:\n    ca_file: secret\n");
  CHECK(has_error(account, 4, 3, {"missing required key 'base_url' in accounts.main"}));
  CHECK(has_error(account, 4, 3, {"missing required key 'client_id' in accounts.main"}));
  CHECK(has_error(account, 4, 3, {"accounts.main: missing client_secret_file"}));

  const auto exports = f.load(minimal("exports:\n  x: {}\n"));
  CHECK(has_error(exports, 9, 3, {"missing required key 'account' in exports.x"}));
  CHECK(has_error(exports, 9, 3,
                  {"missing required key 'kind' in exports.x: expected duplicates, consents, segments or events"}));
}

TEST_CASE("unknown keys are errors at their position, with the expected keys and a suggestion") {
  Fixture f;
  const auto result = f.load(minimal(R"(exports:
  x:
    account: main
    kind: duplicates
    polling_interval: 10s
    polling:
      intial_delay: 1s
statedb: y
)"));
  CHECK(has_error(result, 12, 5, {"unknown key 'polling_interval' in exports.x", "expected one of: account, kind"}));
  CHECK_FALSE(has_error(result, 12, 5, {"did you mean"}));
  CHECK(has_error(result, 14, 7, {"unknown key 'intial_delay' in exports.x.polling", "did you mean 'initial_delay'?"}));
  CHECK(has_error(result, 15, 1, {"unknown key 'statedb' at the top level", "did you mean 'state_db'?"}));
  CHECK(result.errors.size() == 3);
}

TEST_CASE("duplicate keys and duplicate export names are errors naming both positions") {
  Fixture f;
  const auto result = f.load(R"(state_db: a
output_dir: o
state_db: b
accounts:
  main:
    base_url: https://api.apsis.one
    client_id: id
    client_id: id2
    client_secret: s
exports:
  x: { account: main, kind: duplicates }
  x: { account: main, kind: consents }
)");
  CHECK(has_error(result, 3, 1, {"duplicate key 'state_db'", "first defined at line 1, column 1"}));
  CHECK(has_error(result, 8, 5, {"duplicate key 'client_id' in accounts.main", "line 7, column 5"}));
  CHECK(has_error(result, 12, 3, {"duplicate export name 'x' in exports", "first defined at line 11, column 3"}));
  CHECK(result.errors.size() == 3);
}

TEST_CASE("duplicate account names and keys inside request are errors") {
  Fixture f;
  const auto result = f.load(R"(state_db: a
output_dir: o
accounts:
  main: { base_url: "https://api.apsis.one", client_id: i, client_secret: s }
  main: { base_url: "https://api.apsis.one", client_id: i, client_secret: s }
exports:
  x:
    account: main
    kind: duplicates
    request:
      segments:
        filter: a
        filter: b
)");
  CHECK(has_error(result, 5, 3, {"duplicate account name 'main'", "line 4, column 3"}));
  CHECK(has_error(result, 13, 9, {"exports.x.request.segments", "duplicate key 'filter'", "line 12, column 9"}));
}

TEST_CASE("wrong types name the key and the expected type") {
  Fixture f;
  const auto result = f.load(R"(state_db: [a, b]
output_dir: o
accounts:
  main:
    base_url: https://api.apsis.one
    client_id: { a: 1 }
    client_secret: s
polling: 5
retry:
  multiplier: "2"
  max_attempts: lots
exports:
  x:
    account: main
    kind: duplicates
    request: [1, 2]
)");
  CHECK(has_error(result, 1, 11, {"state_db: expected a path, got a list"}));
  CHECK(has_error(result, 6, 16, {"accounts.main.client_id: expected a string, got a mapping"}));
  CHECK(has_error(result, 8, 10, {"polling: expected a mapping, got a single value"}));
  CHECK(has_error(result, 10, 15, {"retry.multiplier: expected a number, got a quoted string"}));
  CHECK(has_error(result, 11, 17, {"retry.max_attempts: expected a whole number, got 'lots'"}));
  CHECK(has_error(result, 16, 14, {"exports.x.request: expected a mapping"}));
  CHECK(result.errors.size() == 6);
}

TEST_CASE("a section that is not a mapping is one error, not one per missing key") {
  Fixture f;
  const auto result = f.load(minimal("exports:\n  x: daily\n"));
  CHECK(has_error(result, 9, 6, {"exports.x: expected a mapping, got a single value"}));
  CHECK(result.errors.size() == 1);
  const auto account = f.load("state_db: s\noutput_dir: o\naccounts:\n  a: [1]\n");
  CHECK(has_error(account, 4, 6, {"accounts.a: expected a mapping, got a list"}));
  CHECK(account.errors.size() == 1);
}

TEST_CASE("an empty value is reported at its key") {
  Fixture f;
  const auto result = f.load("state_db:\noutput_dir: o\naccounts:\n");
  CHECK(has_error(result, 1, 1, {"state_db: expected a path, got nothing"}));
  CHECK(has_error(result, 3, 1, {"accounts: at least one account is required"}));
}

TEST_CASE("durations: parse errors, zero and the order of the delays") {
  Fixture f;
  const auto result = f.load(minimal(R"(polling:
  initial_delay: 10
  url_validity: 0s
retry:
  initial_delay: 2m
  max_delay: 1m
  multiplier: 0.5
exports: {}
)"));
  CHECK(has_error(result, 9, 18, {"polling.initial_delay: missing unit in '10': use ms, s, m, h or d"}));
  CHECK(has_error(result, 10, 17, {"polling.url_validity: must be greater than 0"}));
  CHECK(has_error(result, 13, 14,
                  {"retry.max_delay: 1m is shorter than initial_delay (2m)", "max_delay >= initial_delay"}));
  CHECK(has_error(result, 14, 15, {"retry.multiplier: must be at least 1, got 0.5"}));
  CHECK(result.errors.size() == 4);
}

TEST_CASE("a polling override is checked against the delays it inherits") {
  Fixture f;
  const auto result = f.load(minimal(R"(polling: { max_delay: 1m }
exports:
  x:
    account: main
    kind: duplicates
    polling: { initial_delay: 2m, multiplier: 3 }
)"));
  CHECK(has_error(result, 13, 31, {"exports.x.polling.initial_delay: 2m is longer than max_delay (1m, inherited)"}));
  CHECK(result.errors.size() == 1);

  const auto top = f.load(minimal("polling: { initial_delay: 6m }\n"));
  CHECK(has_error(top, 8, 27, {"polling.initial_delay: 6m is longer than max_delay (5m, inherited)"}));
}

TEST_CASE("retry counts must be whole numbers >= 1") {
  Fixture f;
  const auto result = f.load(minimal("retry:\n  max_attempts: 0\n  max_download_attempts: 1.5\n"));
  CHECK(has_error(result, 9, 17, {"retry.max_attempts: must be between 1 and"}));
  CHECK(has_error(result, 10, 26, {"retry.max_download_attempts: expected a whole number, got '1.5'"}));
  CHECK(
      has_error(f.load(minimal("retry: { max_attempts: 99999999999 }\n")), {"retry.max_attempts: must be between 1"}));
}

TEST_CASE("exports: account, kind, format, compression, schedule and names are checked") {
  Fixture f;
  const auto result = f.load(minimal(R"(exports:
  x:
    account: mian
    kind: dupes
    format: pdf
    compression: zip
    schedule: ""
  "bad name":
    account: other
    kind: consents
)"));
  CHECK(
      has_error(result, 10, 14, {"exports.x.account: unknown account 'mian' (defined: main)", "did you mean 'main'?"}));
  CHECK(has_error(result, 11, 11,
                  {"exports.x.kind: unknown value 'dupes' (expected duplicates, consents, segments or events)"}));
  CHECK(has_error(result, 12, 13, {"exports.x.format: unknown value 'pdf' (expected csv, xlsx or json)"}));
  CHECK(has_error(result, 13, 18,
                  {"exports.x.compression: unknown value 'zip' (expected none or gzip)", "did you mean 'gzip'?"}));
  CHECK(has_error(result, 14, 15, {"exports.x.schedule: must not be empty"}));
  CHECK(has_error(result, 15, 3, {"invalid export name 'bad name'"}));
  CHECK(has_error(result, 16, 14, {"unknown account 'other' (defined: main)"}));
  CHECK(result.errors.size() == 7);
}

TEST_CASE("an unknown account with no accounts defined says so") {
  Fixture f;
  const auto result =
      f.load("state_db: s\noutput_dir: o\naccounts: {}\nexports:\n  x: { account: a, kind: consents }\n");
  CHECK(has_error(result, 3, 11, {"at least one account is required"}));
  CHECK(has_error(result, {"unknown account 'a' (no accounts are defined)"}));
}

TEST_CASE("an unknown account lists the defined ones and suggests only close names") {
  Fixture f;
  const std::string accounts =
      "state_db: s\noutput_dir: o\naccounts:\n"
      "  eu: { base_url: \"https://api.apsis.one\", client_id: i, client_secret: s }\n"
      "  apac: { base_url: \"https://api-apac.apsis.one\", client_id: i, client_secret: s }\n";
  const auto far = f.load(accounts + "exports:\n  x: { account: zz, kind: consents }\n");
  CHECK(has_error(far, 7, 17, {"unknown account 'zz' (defined: eu, apac)"}));
  CHECK_FALSE(has_error(far, {"did you mean"}));
  const auto near = f.load(accounts + "exports:\n  x: { account: apca, kind: consents }\n");
  CHECK(has_error(near, 7, 17, {"unknown account 'apca'", "did you mean 'apac'?"}));
}

TEST_CASE("invalid account names are errors") {
  Fixture f;
  const auto result = f.load(
      "state_db: s\noutput_dir: o\naccounts:\n  -main: { base_url: \"https://a.b\", client_id: i, "
      "client_secret: s }\n");
  CHECK(has_error(result, 4, 3, {"invalid account name '-main'"}));
}

TEST_CASE("time zones must name a file below zoneinfo_dir") {
  Fixture f;
  const auto exports = R"(exports:
  a: { account: main, kind: duplicates, timezone: Europe/Stokholm }
  b: { account: main, kind: duplicates, timezone: ../../etc/passwd }
  c: { account: main, kind: duplicates, timezone: /etc/passwd }
  d: { account: main, kind: duplicates, timezone: Europe }
  e: { account: main, kind: duplicates, timezone: UTC }
  f: { account: main, kind: duplicates, timezone: Europe//Stockholm }
)";
  const auto result = f.load(minimal(exports));
  CHECK(has_error(result, 9, 51, {"exports.a.timezone: unknown time zone 'Europe/Stokholm'", "zoneinfo"}));
  CHECK(has_error(result, 10, 51, {"exports.b.timezone: invalid time zone '../../etc/passwd'"}));
  CHECK(has_error(result, 11, 51, {"exports.c.timezone: invalid time zone '/etc/passwd'"}));
  CHECK(has_error(result, 12, 51, {"exports.d.timezone: unknown time zone 'Europe'"}));
  CHECK(has_error(result, 14, 51, {"exports.f.timezone: invalid time zone 'Europe//Stockholm'"}));
  CHECK(result.errors.size() == 5);

  // Without a zoneinfo directory only the shape of the name is checked.
  Fixture no_zoneinfo;
  no_zoneinfo.options.zoneinfo_dir = no_zoneinfo.dir.path() / "missing";
  const auto unchecked = no_zoneinfo.load(minimal(exports));
  CHECK(unchecked.errors.size() == 3);
  CHECK(has_error(unchecked, {"'../../etc/passwd'"}));
  CHECK(has_error(unchecked, {"'/etc/passwd'"}));
}

TEST_CASE("output templates are checked") {
  Fixture f;
  const auto result = f.load(minimal(R"(exports:
  a: { account: main, kind: duplicates, output: "{export}/{date}.csv" }
  b: { account: main, kind: duplicates, output: "../{export}.csv" }
  c: { account: main, kind: duplicates, output: "/tmp/{export}.csv" }
  d: { account: main, kind: duplicates, output: "{export" }
)"));
  CHECK(has_error(result, 9, 49, {"exports.a.output: unknown placeholder '{date}'"}));
  CHECK(has_error(result, 10, 49, {"exports.b.output:", "'..'"}));
  CHECK(has_error(result, 11, 49, {"exports.c.output:", "absolute"}));
  CHECK(has_error(result, 12, 49, {"exports.d.output: unbalanced '{'"}));
}

TEST_CASE("base_url: https required except for loopback hosts, no path") {
  Fixture f;
  auto load_url = [&f](std::string_view url) {
    return f.load("state_db: s\noutput_dir: o\naccounts:\n  a:\n    base_url: " + std::string(url) +
                  "\n    client_id: i\n    client_secret: s\n");
  };
  const auto plain = load_url("http://api.apsis.one");
  CHECK(has_error(plain, 5, 15, {"accounts.a.base_url: plain http is only allowed to localhost, 127.0.0.0/8 or ::1", "use https://"}));
  for (const auto* loopback : {"http://127.0.0.1:8080", "http://localhost:9000/", "http://[::1]:81"}) {
    CAPTURE(loopback);
    CHECK(load_url(loopback).errors.empty());
  }
  CHECK(load_url("http://127.0.0.1:8080").config->accounts.at("a").base_url == "http://127.0.0.1:8080");
  CHECK(load_url("http://[::1]:81").config->accounts.at("a").base_url == "http://[::1]:81");
  CHECK(load_url("https://api.apsis.one:443/").config->accounts.at("a").base_url == "https://api.apsis.one");
  CHECK(has_error(load_url("https://api.apsis.one/v1"), 5, 15, {"without a path", "'https://api.apsis.one/v1'"}));
  CHECK(has_error(load_url("https://api.apsis.one?x=1"), 5, 15, {"without a path"}));
  CHECK(has_error(load_url("api.apsis.one"), 5, 15, {"invalid URL 'api.apsis.one'", "scheme://host"}));
  CHECK(has_error(load_url("ftp://api.apsis.one"), 5, 15, {"unsupported scheme"}));
  CHECK(has_error(load_url("https://api.apsis.one:0"), 5, 15, {"invalid port"}));
}

TEST_CASE("format follows the kind: json for events only, and events default to json") {
  Fixture f;
  const auto result = f.load(minimal(R"(exports:
  dupes: {account: main, kind: duplicates, format: json}
  segs: {account: main, kind: segments, format: json, request: {segment_discriminator: s-1}}
  ev: {account: main, kind: events, format: csv, request: {tags: [vip]}}
  xl: {account: main, kind: events, format: xlsx, request: {tags: [vip]}}
  unknown: {account: main, kind: dupes, format: json}
)"));
  INFO(all_errors(result));
  CHECK(has_error(result, 9, 52, {"exports.dupes.format: kind: duplicates takes csv or xlsx (json is for kind: events), "
                                  "got 'json'"}));
  CHECK(has_error(result, 10, 49, {"exports.segs.format: kind: segments takes csv or xlsx (json is for kind: events), "
                                   "got 'json'"}));
  CHECK(has_error(result, 11, 45, {"exports.ev.format: kind: events takes json (event exports are JSON files), got "
                                   "'csv'"}));
  CHECK(has_error(result, 12, 45, {"exports.xl.format: kind: events takes json (event exports are JSON files), got "
                                   "'xlsx'"}));
  // An unknown kind is one error: the format is not judged against a kind nobody knows.
  CHECK(has_error(result, 13, 34, {"exports.unknown.kind: unknown value 'dupes'"}));
  CHECK(result.errors.size() == 5);

  const auto good = f.load(minimal(R"(exports:
  ev: {account: main, kind: events, format: json, compression: gzip, request: {tags: [vip]}}
  segs: {account: main, kind: segments, format: xlsx, request: {segment_discriminator: s-1}}
)"));
  REQUIRE_MESSAGE(good.config, all_errors(good));
  CHECK(good.config->exports.at("ev").format == FileFormat::json);
  CHECK(good.config->exports.at("segs").format == FileFormat::xlsx);
}

TEST_CASE("segments and events exports need a request") {
  Fixture f;
  const auto result = f.load(minimal(R"(exports:
  segs: {account: main, kind: segments}
  ev:
    account: main
    kind: events
    request:
)"));
  INFO(all_errors(result));
  CHECK(has_error(result, 9, 3,
                  {"missing required key 'request' in exports.segs: expected a body with segment_discriminator or "
                   "segment_definition"}));
  // An empty request is checked as {}, reported at its key.
  CHECK(has_error(result, 13, 5,
                  {"exports.ev.request: expected at least one attribute or tag (a non-empty attributes or tags "
                   "list), or no profile appears in the file"}));
  CHECK(result.errors.size() == 2);
}

TEST_CASE("a request body over 100 000 bytes as JSON is an error at the request key") {
  Fixture f;
  // {"code":"xxx..."}: 11 bytes around the string.
  const auto body = [&](std::size_t length) {
    return minimal("exports:\n  x:\n    account: main\n    kind: duplicates\n    request:\n      code: " +
                   std::string(length, 'x') + "\n");
  };
  const auto at_limit = f.load(body(100'000 - 11));
  CHECK_MESSAGE(at_limit.config, all_errors(at_limit));
  const auto over = f.load(body(100'000 - 10));
  INFO(all_errors(over));
  REQUIRE(over.errors.size() == 1);
  CHECK(over.errors[0].to_string() ==
        f.config_file().string() +
            ":12:5: exports.x.request: the request body is 100 001 bytes as JSON; APSIS One accepts at most 100 000 "
            "(100 kB)");
}

TEST_CASE("account paths must start with '/'") {
  Fixture f;
  const auto result = f.load(R"(state_db: s
output_dir: o
accounts:
  a:
    base_url: https://api.apsis.one
    client_id: i
    client_secret: s
    token_path: oauth/token
    paths: { duplicates: reports/dup, exports: /x }
    request_timeout: 0s
)");
  CHECK(has_error(result, 8, 17, {"accounts.a.token_path: expected a URL path starting with '/'"}));
  CHECK(has_error(result, 9, 26, {"accounts.a.paths.duplicates: expected a URL path starting with '/'"}));
  CHECK(has_error(result, 9, 39,
                  {"unknown key 'exports' in accounts.a.paths (expected one of: duplicates, consents, segments or "
                   "events)"}));
  CHECK(has_error(result, 10, 22, {"accounts.a.request_timeout: must be greater than 0"}));
  CHECK(result.errors.size() == 4);
}

TEST_CASE("client secrets: exactly one source, readable, non-empty, single line") {
  Fixture f;
  f.write("empty-secret", " \r\n\n");
  f.write("two-lines", kSecret + "\nsecond-line\n");
  auto load_account = [&f](std::string_view lines) {
    return f.load(
        "state_db: s\noutput_dir: o\naccounts:\n  a:\n    base_url: https://api.apsis.one\n"
        "    client_id: i\n" +
        std::string(lines));
  };
  CHECK(has_error(load_account("    client_secret: x\n    client_secret_file: secret\n"), 8, 5,
                  {"both client_secret and client_secret_file are set"}));
  CHECK(has_error(load_account(""), 4, 3, {"missing client_secret_file"}));

  const auto missing = load_account("    client_secret_file: /nonexistent/secret\n");
  CHECK(has_error(missing, 7, 25, {"client_secret_file: cannot read /nonexistent/secret: No such file or directory"}));
  const auto directory = load_account("    client_secret_file: " + f.dir.path().string() + "\n");
  CHECK(has_error(directory, 7, 25, {"Is a directory"}));
  CHECK(has_error(load_account("    client_secret_file: empty-secret\n"), 7, 25,
                  {(f.dir.path() / "empty-secret").string() + " is empty"}));
  const auto two_lines = load_account("    client_secret_file: two-lines\n");
  CHECK(has_error(two_lines, 7, 25, {"more than one line"}));
  CHECK(all_errors(two_lines).find(kSecret) == std::string::npos);
  CHECK(has_error(load_account("    client_secret: \"\"\n"), 7, 20, {"accounts.a.client_secret: must not be empty"}));
  CHECK(has_error(load_account("    client_secret: ${EMPTY}\n"), 7, 20, {"must not be empty"}));
}

TEST_CASE("without private files, secret files are named but never opened; their syntax is still checked") {
  Fixture f;
  f.options.read_private_files = false;
  const auto account = [](std::string_view secret_line) {
    return "state_db: s\noutput_dir: o\naccounts:\n  a:\n    base_url: https://api.apsis.one\n"
           "    client_id: i\n" +
           std::string(secret_line);
  };
  const auto unreadable = f.load(account("    client_secret_file: /nonexistent/secret\n"));
  CHECK(unreadable.errors.empty());
  REQUIRE(unreadable.config);
  CHECK(unreadable.config->accounts.at("a").client_secret.empty());
  CHECK(has_error(f.load(account("")), 4, 3, {"missing client_secret_file"}));
  CHECK(has_error(f.load(account("    client_secret: x\n    client_secret_file: secret\n")), 8, 5,
                  {"both client_secret and client_secret_file are set"}));
}

TEST_CASE("a secret file below a regular file names the OS reason") {
  Fixture f;
  const auto result = f.load(
      "state_db: s\noutput_dir: o\naccounts:\n  a:\n    base_url: https://api.apsis.one\n"
      "    client_id: i\n    client_secret_file: secret/x\n");
  CHECK(has_error(result, 7, 25, {"cannot read " + (f.dir.path() / "secret/x").string(), "Not a directory"}));
  CHECK(all_errors(result).find(kSecret) == std::string::npos);
}

TEST_CASE("ca_file must be a readable file") {
  Fixture f;
  const auto result = f.load(
      "state_db: s\noutput_dir: o\naccounts:\n  a:\n    base_url: https://api.apsis.one\n"
      "    client_id: i\n    client_secret: s\n    ca_file: missing.pem\n");
  CHECK(has_error(
      result, 8, 14,
      {"accounts.a.ca_file: cannot read " + (f.dir.path() / "missing.pem").string(), "No such file or directory"}));
  const auto dir = f.load(
      "state_db: s\noutput_dir: o\naccounts:\n  a:\n    base_url: https://api.apsis.one\n"
      "    client_id: i\n    client_secret: s\n    ca_file: zoneinfo\n");
  CHECK(has_error(dir, 8, 14, {"not a regular file"}));
}

// Issue 12, item 7: a readable file that is not a PEM bundle used to pass check and then throw inside
// the daemon's SIGHUP reload, which ended signal handling.
TEST_CASE("ca_file must hold PEM certificates: anything else is an error at its position") {
  Fixture f;
  const std::string head =
      "state_db: s\noutput_dir: o\naccounts:\n  a:\n    base_url: https://api.apsis.one\n"
      "    client_id: i\n    client_secret: s\n    ca_file: ";
  const auto secret = f.load(head + "secret\n");
  CHECK(has_error(secret, 8, 14, {"accounts.a.ca_file: " + (f.dir.path() / "secret").string(), "no PEM certificate"}));
  CHECK(all_errors(secret).find(kSecret) == std::string::npos);
  f.write("empty.pem", "");
  CHECK(has_error(f.load(head + "empty.pem\n"), 8, 14, {"no PEM certificate"}));
  f.write("cut.pem", kCaPem.substr(0, kCaPem.size() / 2));
  CHECK(has_error(f.load(head + "cut.pem\n"), 8, 14, {"accounts.a.ca_file"}));
  f.write("two.pem", "# a comment line\n" + kCaPem + kCaPem);
  const auto good = f.load(head + "two.pem\n");
  INFO(all_errors(good));
  CHECK(good.config.has_value());
}

// Issue 12, item 9: a FIFO blocked open() (and read()) forever, in check, run and a SIGHUP reload.
TEST_CASE("a FIFO or other non-regular file is refused as the configuration, a secret or a CA file") {
  Fixture f;
  const auto fifo = f.dir.path() / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const auto as_config = load_config_file(fifo, f.options);
  REQUIRE(as_config.errors.size() == 1);
  CHECK(as_config.errors[0].message.find("not a regular file") != std::string::npos);
  CHECK(as_config.errors[0].message.find("FIFO") != std::string::npos);
  const std::string head =
      "state_db: s\noutput_dir: o\naccounts:\n  a:\n    base_url: https://api.apsis.one\n    client_id: i\n";
  CHECK(has_error(f.load(head + "    client_secret_file: pipe\n"), 7, 25, {"not a regular file", "FIFO"}));
  CHECK(has_error(f.load(head + "    client_secret: s\n    ca_file: pipe\n"), 8, 14, {"not a regular file", "FIFO"}));
  CHECK(has_error(f.load(head + "    client_secret_file: /dev/null\n"), 7, 25, {"not a regular file"}));
}

TEST_CASE("the secret never appears in any error message") {
  Fixture f;
  f.options.env = fake_env({{"SECRET", kSecret}});
  f.write("two", kSecret + "\n" + kSecret);
  // Every error that can be made around the secret's value, plus many others.
  const auto result = f.load(
      "state_db: [x]\noutput_dir: o\naccounts:\n"
      "  a:\n    base_url: http://example.com/x\n    client_id: \"\"\n"
      "    client_secret: ${SECRET}\n    client_secret_file: secret\n    bogus: 1\n"
      "  b:\n    base_url: https://b.example\n    client_id: i\n    client_secret: [" +
      kSecret +
      "]\n"
      "  c:\n    base_url: https://c.example\n    client_id: i\n    client_secret: \"${" +
      kSecret +
      "}\"\n"
      "  d:\n    base_url: https://d.example\n    client_id: i\n    client_secret: \"ab${\"\n"
      "  e:\n    base_url: https://e.example\n    client_id: i\n    client_secret_file: two\n"
      "exports:\n  x: { account: zz, kind: k }\n");
  const auto with_file = f.load(
      "state_db: s\noutput_dir: o\naccounts:\n  e:\n    base_url: https://e.example\n"
      "    client_id: i\n    client_secret_file: two\n");
  CHECK(result.errors.size() >= 8);
  CHECK(with_file.errors.size() == 1);
  CHECK(all_errors(result).find("s3cr3t") == std::string::npos);
  CHECK(all_errors(with_file).find("s3cr3t") == std::string::npos);
}

TEST_CASE("${VAR} expands in every string value") {
  Fixture f;
  f.options.env = fake_env({{"DIR", "/var/lib/apsis"},
                            {"ID", "abc"},
                            {"HOST", "api.apsis.one"},
                            {"N", "5"},
                            {"SEG", "usercreated.segments.x"},
                            {"TZ_NAME", "Europe/Stockholm"}});
  const auto result = f.load(R"(state_db: ${DIR}/jobs.sqlite3
output_dir: ${DIR}/out
accounts:
  main:
    base_url: https://${HOST}
    client_id: pre-${ID}-$$-$x-${ID}
    client_secret: "cost: $5 $$$$"
retry: { max_attempts: "${N}" }
exports:
  x:
    account: main
    kind: duplicates
    timezone: ${TZ_NAME}
    request:
      segments: { segment_discriminators: { s: "${SEG}" }, filter: s }
      count: ${N}
      price: $$5
)");
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  const Config& config = *result.config;
  CHECK(config.state_db == fs::path("/var/lib/apsis/jobs.sqlite3"));
  CHECK(config.accounts.at("main").base_url == "https://api.apsis.one");
  CHECK(config.accounts.at("main").client_id == "pre-abc-$-$x-abc");
  CHECK(config.accounts.at("main").client_secret == "cost: $5 $$");
  CHECK(config.retry.max_attempts == 5);
  CHECK(config.exports.at("x").timezone == "Europe/Stockholm");
  const auto body = boost::json::parse(config.exports.at("x").request_json);
  CHECK(body.at("segments").at("segment_discriminators").at("s").as_string() == "usercreated.segments.x");
  CHECK(body.at("count").as_string() == "5");  // a scalar with ${ is a string
  CHECK(body.at("price").as_string() == "$5");
}

TEST_CASE("an unset variable is an error at its scalar, also in request") {
  Fixture f;
  f.options.env = fake_env({});
  const auto result = f.load(R"(state_db: s
output_dir: o
accounts:
  main:
    base_url: https://api.apsis.one
    client_id: ${APSIS_CLIENT_ID}
    client_secret: "${1BAD}"
exports:
  x:
    account: main
    kind: duplicates
    request:
      segments: { filter: "${FILTER" }
      list: [a, "${MISSING_TOO}"]
)");
  CHECK(has_error(result, 6, 16, {"accounts.main.client_id: environment variable APSIS_CLIENT_ID is not set"}));
  CHECK(has_error(result, 7, 20, {"accounts.main.client_secret: invalid environment variable name"}));
  CHECK(has_error(result, 13, 27, {"exports.x.request.segments.filter: unterminated '${'"}));
  CHECK(has_error(result, 14, 17, {"exports.x.request.list[1]: environment variable MISSING_TOO is not set"}));
  CHECK(result.errors.size() == 4);
}

TEST_CASE("multiple errors are all reported, in file order") {
  Fixture f;
  const auto result = f.load(R"(state_db: s
output_dir: o
accounts:
  main:
    base_url: http://example.com
    client_id: i
    client_secret: s
polling: { initial_delay: 5 }
exports:
  x: { account: nobody, kind: duplicates, output: "/abs" }
  y: { account: main, kind: consents, format: csv, foo: 1 }
)");
  REQUIRE(result.errors.size() == 5);
  CHECK(result.errors[0].line == 5);
  CHECK(result.errors[1].line == 8);
  CHECK(result.errors[2].line == 10);
  CHECK(result.errors[3].line == 10);
  CHECK(result.errors[3].column > result.errors[2].column);
  CHECK(result.errors[4].line == 11);
  for (const auto& error : result.errors) CHECK(error.file == f.config_file().string());
}

TEST_CASE("schedule may be left empty with ~, and request with nothing") {
  Fixture f;
  const auto result =
      f.load(minimal("exports:\n  x:\n    account: main\n    kind: consents\n    schedule: ~\n    request:\n"));
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  CHECK_FALSE(result.config->exports.at("x").schedule.has_value());
  CHECK(result.config->exports.at("x").request_json == "{}");
}

TEST_CASE("yaml_to_json types plain scalars by the YAML 1.2 core schema") {
  const auto node = YAML::Load(R"(
bools: [true, True, TRUE, false, False, FALSE, tRuE, yes, on]
nulls: [null, Null, NULL, ~, ]
ints: [0, 42, -7, +3, 0x1F, 0o17, 007, 9223372036854775807]
floats: [1.5, -0.25, .5, 1e3, 2.5E-1, +1.]
strings: [hello, 1.2.3, 0b101, 12:30, '5', "true", "null", "", 1_000]
block: |
  line
key with spaces: {nested: [1, {deep: x}]}
)");
  std::vector<YamlJsonError> errors;
  const auto json = yaml_to_json(node, "request", fake_env({}), errors);
  CHECK(errors.empty());
  const auto& object = json.as_object();
  const auto& bools = object.at("bools").as_array();
  CHECK(bools.at(0).as_bool() == true);
  CHECK(bools.at(1).as_bool() == true);
  CHECK(bools.at(2).as_bool() == true);
  CHECK(bools.at(3).as_bool() == false);
  CHECK(bools.at(5).as_bool() == false);
  CHECK(bools.at(6).as_string() == "tRuE");
  CHECK(bools.at(7).as_string() == "yes");  // YAML 1.1 booleans are strings in 1.2
  CHECK(bools.at(8).as_string() == "on");
  for (const auto& value : object.at("nulls").as_array()) CHECK(value.is_null());
  const auto& ints = object.at("ints").as_array();
  CHECK(ints.at(0).as_int64() == 0);
  CHECK(ints.at(1).as_int64() == 42);
  CHECK(ints.at(2).as_int64() == -7);
  CHECK(ints.at(3).as_int64() == 3);
  CHECK(ints.at(4).as_int64() == 31);
  CHECK(ints.at(5).as_int64() == 15);
  CHECK(ints.at(6).as_int64() == 7);
  CHECK(ints.at(7).as_int64() == 9223372036854775807);
  const auto& floats = object.at("floats").as_array();
  CHECK(floats.at(0).as_double() == 1.5);
  CHECK(floats.at(1).as_double() == -0.25);
  CHECK(floats.at(2).as_double() == 0.5);
  CHECK(floats.at(3).as_double() == 1000.0);
  CHECK(floats.at(4).as_double() == 0.25);
  CHECK(floats.at(5).as_double() == 1.0);
  const auto& strings = object.at("strings").as_array();
  const std::vector<std::string> expected{"hello", "1.2.3", "0b101", "12:30", "5", "true", "null", "", "1_000"};
  REQUIRE(strings.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) CHECK(strings.at(i).as_string() == expected[i]);
  CHECK(object.at("block").as_string() == "line\n");
  CHECK(object.at("key with spaces").at("nested").at(1).at("deep").as_string() == "x");
}

TEST_CASE("yaml_to_json reports what JSON cannot carry") {
  const auto node = YAML::Load(R"(big: 9223372036854775808
inf: .inf
nan: .NaN
? [a]
: 1
tagged: !custom x
int: !!int abc
str: !!str 5
)");
  std::vector<YamlJsonError> errors;
  const auto json = yaml_to_json(node, "request", fake_env({}), errors);
  REQUIRE(errors.size() == 6);
  CHECK(errors[0].mark.line == 0);
  CHECK(errors[0].message.find("request.big: integer 9223372036854775808 does not fit in 64 bits") == 0);
  CHECK(errors[1].message.find("request.inf: '.inf' cannot be sent as JSON") == 0);
  CHECK(errors[2].message.find("request.nan:") == 0);
  CHECK(errors[3].message.find("request: keys must be strings") == 0);
  CHECK(errors[3].mark.line == 3);
  CHECK(errors[4].message.find("request.tagged: unsupported tag '!custom'") == 0);
  CHECK(errors[5].message.find("request.int: 'abc' is not a valid !!int") == 0);
  CHECK(json.at("str").as_string() == "5");
}

TEST_CASE("expand_env: literal dollars and errors") {
  const auto env = fake_env({{"A", "x"}, {"B", "${A}"}});
  std::string error;
  CHECK(expand_env("${A}", env) == "x");
  CHECK(expand_env("${B}", env) == "${A}");  // values are not expanded again
  CHECK(expand_env("$$", env) == "$");
  CHECK(expand_env("$$$$A", env) == "$$A");
  CHECK(expand_env("$A $ $", env) == "$A $ $");
  CHECK(expand_env("a$", env) == "a$");
  CHECK(expand_env("$${A}", env) == "${A}");
  CHECK_FALSE(expand_env("${C}", env, &error));
  CHECK(error == "environment variable C is not set");
  CHECK_FALSE(expand_env("${A", env, &error));
  CHECK(error.find("unterminated") != std::string::npos);
  CHECK_FALSE(expand_env("${}", env, &error));
  CHECK(error.find("invalid environment variable name") != std::string::npos);
  CHECK_FALSE(expand_env("${A-B}", env, &error));
  CHECK(error.find("A-B") == std::string::npos);
}

TEST_CASE("process_environment reads the process environment") {
  ::setenv("APSIS_CONFIG_TEST_VARIABLE", "value", 1);
  const auto env = process_environment();
  CHECK(env("APSIS_CONFIG_TEST_VARIABLE") == "value");
  ::unsetenv("APSIS_CONFIG_TEST_VARIABLE");
  CHECK_FALSE(env("APSIS_CONFIG_TEST_VARIABLE").has_value());
}

TEST_CASE("config/example.yaml loads without errors") {
  Fixture f;
  f.write("credentials/apsis-secret", kSecret + "\n");
  f.options.env =
      fake_env({{"APSIS_CLIENT_ID", "client-123"}, {"CREDENTIALS_DIRECTORY", (f.dir.path() / "credentials").string()}});
  const auto example = fs::path(__FILE__).parent_path().parent_path().parent_path() / "config/example.yaml";
  const auto result = load_config_file(example, f.options);
  INFO(all_errors(result));
  REQUIRE(result.config.has_value());
  const Config& config = *result.config;
  CHECK(config.accounts.at("main").client_id == "client-123");
  CHECK(config.accounts.at("main").client_secret == kSecret);
  CHECK(config.exports.size() == 4);
  const auto& duplicates = config.exports.at("duplicate-emails");
  CHECK(duplicates.kind == ExportKind::duplicates);
  CHECK(duplicates.compression == Compression::gzip);
  const auto body = boost::json::parse(duplicates.request_json);
  CHECK(body.at("segments").at("filter").as_string() == "!(europe) & women");
  CHECK(body.at("attributes").at(0).at("field_name").as_string() == "email");
  const auto& consents = config.exports.at("weekly-consents");
  CHECK(consents.kind == ExportKind::consents);
  CHECK(consents.format == FileFormat::xlsx);
  CHECK(boost::json::parse(consents.request_json).at("channels").as_array().size() == 2);
  CHECK(consents.polling.backoff.initial_delay == 1min);
  CHECK(consents.polling.backoff.max_delay == 15min);
  const auto& segment = config.exports.at("vip-segment");
  CHECK(segment.kind == ExportKind::segments);
  CHECK(boost::json::parse(segment.request_json).at("segment_discriminator").as_string() ==
        "usercreated.segments.vip-m3c8r5t2wq");
  const auto& events = config.exports.at("daily-events");
  CHECK(events.kind == ExportKind::events);
  CHECK(events.format == FileFormat::json);
  CHECK(events.window == std::optional<Duration>(24h));
  CHECK(events.max_resubmits == 2);
  // The budget block shows the defaults.
  CHECK(config.accounts.at("main").budget == AccountBudget{});
  CHECK(config.polling.failed_export_after_503s == PollingPolicy{}.failed_export_after_503s);

  // Without the variables the file names both as missing.
  f.options.env = fake_env({});
  const auto bare = load_config_file(example, f.options);
  CHECK(has_error(bare, {"environment variable APSIS_CLIENT_ID is not set"}));
  CHECK(has_error(bare, {"environment variable CREDENTIALS_DIRECTORY is not set"}));
}

// Found by tests/fuzz/fuzz_config: yaml-cpp 0.7's LoadAll returned an empty document forever on these.
TEST_CASE("a stray ',' is reported as invalid YAML instead of hanging the loader") {
  Fixture f;
  CHECK(has_error(f.load(",\x19statbigur\xff\xff\xff\n"), 1, 1, {"invalid YAML", "unexpected ','"}));
  CHECK(has_error(f.load(","), 1, 1, {"invalid YAML", "unexpected ','"}));
  CHECK(has_error(f.load("- a\n,"), 2, 1, {"invalid YAML", "unexpected ','"}));
  CHECK(has_error(f.load(minimal() + "---\n,\n"), 10, 1, {"invalid YAML", "unexpected ','"}));
}

// Nested aliases ("billion laughs"): 740 bytes that used to expand to 10^9 JSON values.
TEST_CASE("request aliases cannot expand a small file into billions of values") {
  std::string request = "    request:\n      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 8; ++i) {
    request += "      l" + std::to_string(i) + ": &l" + std::to_string(i) + " [*l" + std::to_string(i - 1);
    for (int j = 1; j < 10; ++j) request += ", *l" + std::to_string(i - 1);
    request += "]\n";
  }
  Fixture f;
  const auto bomb = f.load(minimal("exports:\n  e:\n    account: main\n    kind: duplicates\n" + request));
  CHECK(has_error(bomb, 13, 7, {"exports.e.request: too many values"}));

  // 6000 values each: the limit is per request, so an alias of a whole export fits too.
  std::string list = "1";
  for (int i = 1; i < 5998; ++i) list += ",1";
  const auto twice = f.load(minimal("exports:\n  e1: &e\n    account: main\n    kind: duplicates\n"
                                    "    request: {a: [" + list + "]}\n  e2: *e\n"));
  INFO(all_errors(twice));
  CHECK(twice.config.has_value());

  // The file as a whole has a budget of its own, so aliases of whole exports cannot multiply it.
  std::string many = "exports:\n  e0: &e\n    account: main\n    kind: duplicates\n    request: {a: [" + list + "]}\n";
  for (int i = 1; i < 200; ++i) many += "  e" + std::to_string(i) + ": *e\n";
  const auto file = f.load(minimal(many));
  CHECK(has_error(file, {"request bodies of the file", "1 000 000 values"}));
  CHECK_FALSE(has_error(file, {"exports.e0.request"}));
}

// Issue 12: the 10 000-value budget was counted across the file: 200 ordinary exports failed from the
// 151st on, blamed on aliases the file did not have.
TEST_CASE("200 exports with ordinary request bodies all load") {
  Fixture f;
  std::string exports = "exports:\n";
  for (int i = 0; i < 200; ++i) {
    exports += "  s" + std::to_string(i) + ":\n    account: main\n    kind: duplicates\n    request:\n";
    exports += "      segments:\n        segment_discriminators: {a: usercreated.segments.a-1}\n        filter: a\n";
    exports += "      attributes:\n";  // 66 values in all
    for (int a = 0; a < 20; ++a)
      exports += "        - {field_name: f" + std::to_string(a) + ", attribute_version_id: v" +
                 std::to_string(a) + "}\n";
  }
  const auto result = f.load(minimal(exports));
  INFO(all_errors(result).substr(0, 2000));
  CHECK(result.config.has_value());
}

// Found by tests/fuzz/fuzz_config: "&l3 [*l3, ...]" names a list that contains itself, and converting
// it to JSON recursed until the stack overflowed.
TEST_CASE("a request alias used inside the node it names is an error, not endless recursion") {
  Fixture f;
  const std::string fuzzed = R"(    request:
      l0: &l0 [x, x, x, x, x, x, x, x, x, x]
      l1: &l1 _*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]
      l2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]
      l3: &l3 [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]
      l4: &l3 [*l3, *l3, *l3, *l3, *l3, client_secret: *l3, *l3]
)";
  const std::string exports = "exports:\n  e:\n    account: main\n    kind: duplicates\n";
  CHECK(has_error(f.load(minimal(exports + fuzzed)), 13, 7, {"exports.e.request: nested more than 100 levels"}));
  CHECK(has_error(f.load(minimal(exports + "    request: &r {self: *r}\n")), 12, 14,
                  {"exports.e.request: nested more than 100 levels", "alias"}));
  CHECK(has_error(f.load(minimal(exports + "    request: {a: &a [*a]}\n")), 12, 14, {"nested more than 100 levels"}));
}
