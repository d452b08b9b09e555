// The admin endpoint's authentication: the Authorization header, bcrypt hashes, and AuthGate's
// decisions (cache, failure limit, cap on running checks) on a virtual clock; admin_web's loading.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <string>

#include "admin/basic_auth.hpp"
#include "admin/bcrypt.hpp"
#include "config/config_loader.hpp"
#include "test_certificate.hpp"

using namespace apsis::admin;
using namespace std::chrono_literals;

namespace {

// "s3cret" at cost 4, made with Python's crypt module (libxcrypt underneath).
const std::string kHash = "$2b$04$ZX5JRp1RlXrPcwtVmf2ZW.YnPMvwnarFtlXJROYJxhBRqPirxfv9y";
// base64("alice:s3cret"), base64("alice:wrong"), base64("mallory:s3cret")
const std::string kRight = "Basic YWxpY2U6czNjcmV0";
const std::string kWrong = "Basic YWxpY2U6d3Jvbmc=";
const std::string kStranger = "Basic bWFsbG9yeTpzM2NyZXQ=";
const AuthGate::TimePoint kStart{1000s};

AuthLimits small_limits() {
  AuthLimits limits;
  limits.max_failures = 3;
  limits.failure_window = 60s;
  limits.max_concurrent_checks = 2;
  limits.cache_ttl = 300s;
  return limits;
}

// One request through the gate as the service runs it, bcrypt included.
AuthVerdict run(AuthGate& gate, std::optional<std::string> header, const std::string& client, AuthGate::TimePoint now,
                bool* checked = nullptr) {
  auto attempt = gate.begin(header, client, now);
  if (checked) *checked = attempt.verdict == AuthVerdict::verify;
  if (attempt.verdict != AuthVerdict::verify) return attempt.verdict;
  return gate.finish(attempt, client, bcrypt_matches(attempt.password, attempt.hash), now);
}

}  // namespace

TEST_CASE("basic authorization headers") {
  const auto alice = parse_basic_authorization(kRight);
  REQUIRE(alice);
  CHECK(alice->user == "alice");
  CHECK(alice->password == "s3cret");
  CHECK(parse_basic_authorization("basic YWxpY2U6czNjcmV0")->user == "alice");  // the scheme in any case
  CHECK(parse_basic_authorization("Basic   YWxpY2U6czNjcmV0  ")->password == "s3cret");
  CHECK(parse_basic_authorization("Basic YTpiOmM=")->password == "b:c");  // a password may hold ':'
  CHECK(parse_basic_authorization("Basic Og==")->user.empty());
  CHECK_FALSE(parse_basic_authorization("Bearer YWxpY2U6czNjcmV0"));
  CHECK_FALSE(parse_basic_authorization("Basic"));
  CHECK_FALSE(parse_basic_authorization("Basic YWxpY2U="));      // no ':'
  CHECK_FALSE(parse_basic_authorization("Basic YWxpY2U6czNjcmV"));  // not a multiple of 4
  CHECK_FALSE(parse_basic_authorization("Basic YWxp*2U6czNjcmV0"));
  CHECK_FALSE(parse_basic_authorization("Basic YR=="));  // trailing bits set
  CHECK_FALSE(parse_basic_authorization(""));
}

TEST_CASE("bcrypt hashes: what the loader accepts, and what matches") {
  CHECK_FALSE(bcrypt_hash_problem(kHash));
  CHECK_FALSE(bcrypt_hash_problem("$2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze"));
  CHECK(bcrypt_hash_problem("s3cret")->find("not a bcrypt hash") != std::string::npos);
  CHECK(bcrypt_hash_problem("$1$abc$def")->find("not a bcrypt hash") != std::string::npos);
  CHECK(bcrypt_hash_problem("$2b$03$ZX5JRp1RlXrPcwtVmf2ZW.YnPMvwnarFtlXJROYJxhBRqPirxfv9y")->find("cost 3") !=
        std::string::npos);
  CHECK(bcrypt_hash_problem("$2b$32$ZX5JRp1RlXrPcwtVmf2ZW.YnPMvwnarFtlXJROYJxhBRqPirxfv9y"));
  CHECK(bcrypt_hash_problem("$2b$04$ZX5JRp1RlXrPcwtVmf2ZW.YnPMvwnarFtlXJROYJxhBRqPirxfv9")->find("60 characters") !=
        std::string::npos);
  CHECK(bcrypt_hash_problem("$2b$04$ZX5JRp1RlXrPcwtVmf2ZW.YnPMvwnarFtlXJROYJxhBRqPirxfv9!")->find("alphabet") !=
        std::string::npos);
  CHECK(bcrypt_matches("s3cret", kHash));
  CHECK_FALSE(bcrypt_matches("s3cret ", kHash));
  CHECK_FALSE(bcrypt_matches("", kHash));
  CHECK_FALSE(bcrypt_matches(std::string("s3cret\0x", 8), kHash));
  CHECK_FALSE(bcrypt_matches("s3cret", "$2b$04$short"));
}

TEST_CASE("without users every request passes, with them a request without credentials is refused") {
  AuthGate open;
  CHECK_FALSE(open.enabled());
  CHECK(run(open, std::nullopt, "10.0.0.1", kStart) == AuthVerdict::allowed);
  AuthGate gate({{"alice", kHash}}, small_limits());
  for (int i = 0; i < 10; ++i)  // a missing header is a client's first try, not a failure
    CHECK(run(gate, std::nullopt, "10.0.0.1", kStart) == AuthVerdict::unauthorized);
  CHECK(run(gate, kRight, "10.0.0.1", kStart) == AuthVerdict::allowed);
}

TEST_CASE("a proven login is cached for cache_ttl, and a reload forgets it") {
  AuthGate gate({{"alice", kHash}}, small_limits());
  bool checked = false;
  CHECK(run(gate, kRight, "10.0.0.1", kStart, &checked) == AuthVerdict::allowed);
  CHECK(checked);
  CHECK(gate.cached() == 1);
  CHECK(run(gate, kRight, "10.0.0.2", kStart + 299s, &checked) == AuthVerdict::allowed);
  CHECK_FALSE(checked);  // from the cache, without bcrypt
  CHECK(run(gate, kRight, "10.0.0.1", kStart + 300s, &checked) == AuthVerdict::allowed);
  CHECK(checked);  // expired: checked again
  gate.set_users({{"alice", kHash}});
  CHECK(gate.cached() == 0);
  CHECK(run(gate, kRight, "10.0.0.1", kStart + 301s, &checked) == AuthVerdict::allowed);
  CHECK(checked);
  CHECK(run(gate, kWrong, "10.0.0.1", kStart + 302s, &checked) == AuthVerdict::unauthorized);
  CHECK(checked);  // a wrong password is never cached
}

TEST_CASE("an address with max_failures wrong passwords is throttled without bcrypt until the window ends") {
  AuthGate gate({{"alice", kHash}}, small_limits());
  CHECK(run(gate, kRight, "10.0.0.9", kStart) == AuthVerdict::allowed);  // cached before the attack
  bool checked = false;
  for (int i = 0; i < 3; ++i) CHECK(run(gate, kWrong, "10.0.0.1", kStart + 1s, &checked) == AuthVerdict::unauthorized);
  CHECK(gate.throttled("10.0.0.1", kStart + 2s));
  CHECK_FALSE(gate.throttled("10.0.0.2", kStart + 2s));
  CHECK(run(gate, kWrong, "10.0.0.1", kStart + 2s, &checked) == AuthVerdict::throttled);
  CHECK_FALSE(checked);
  CHECK(run(gate, "Basic !!", "10.0.0.1", kStart + 2s) == AuthVerdict::throttled);
  CHECK(run(gate, kStranger, "10.0.0.1", kStart + 2s) == AuthVerdict::throttled);
  // Proven credentials still pass from the throttled address; unproven ones wait, right or not.
  CHECK(run(gate, kRight, "10.0.0.1", kStart + 3s) == AuthVerdict::allowed);
  gate.set_users({{"alice", kHash}});
  CHECK(run(gate, kRight, "10.0.0.1", kStart + 3s, &checked) == AuthVerdict::throttled);
  CHECK_FALSE(checked);
  // Other addresses are not affected.
  CHECK(run(gate, kRight, "10.0.0.2", kStart + 3s) == AuthVerdict::allowed);
  // The window counts from the first failure: then passwords are checked again.
  CHECK(run(gate, kWrong, "10.0.0.1", kStart + 61s, &checked) == AuthVerdict::unauthorized);
  CHECK(checked);
}

TEST_CASE("unknown users are checked against a decoy and fail, malformed headers count as failures") {
  AuthGate gate({{"alice", kHash}}, small_limits());
  bool checked = false;
  CHECK(run(gate, kStranger, "10.0.0.1", kStart, &checked) == AuthVerdict::unauthorized);
  CHECK(checked);  // takes as long as a wrong password
  CHECK(run(gate, "Basic !!", "10.0.0.1", kStart, &checked) == AuthVerdict::unauthorized);
  CHECK_FALSE(checked);
  CHECK(run(gate, "Basic !!", "10.0.0.1", kStart) == AuthVerdict::unauthorized);
  CHECK(run(gate, kRight, "10.0.0.1", kStart) == AuthVerdict::throttled);
  // Even the decoy's own password does not let an unknown user in.
  auto attempt = gate.begin(kStranger, "10.0.0.5", kStart);
  REQUIRE(attempt.verdict == AuthVerdict::verify);
  CHECK(gate.finish(attempt, "10.0.0.5", true, kStart) == AuthVerdict::unauthorized);
}

TEST_CASE("at most max_concurrent_checks run at once; beyond that busy, and the cache still answers") {
  AuthGate gate({{"alice", kHash}}, small_limits());
  CHECK(run(gate, kRight, "10.0.0.9", kStart) == AuthVerdict::allowed);
  const auto a = gate.begin(kWrong, "10.0.0.1", kStart);
  const auto b = gate.begin(kWrong, "10.0.0.2", kStart);
  CHECK(a.verdict == AuthVerdict::verify);
  CHECK(b.verdict == AuthVerdict::verify);
  CHECK(gate.checks_running() == 2);
  CHECK(gate.begin(kWrong, "10.0.0.3", kStart).verdict == AuthVerdict::busy);
  CHECK(gate.begin(kRight, "10.0.0.4", kStart).verdict == AuthVerdict::allowed);
  gate.finish(a, "10.0.0.1", false, kStart);
  CHECK(gate.checks_running() == 1);
  CHECK(gate.begin(kWrong, "10.0.0.3", kStart).verdict == AuthVerdict::verify);
}

TEST_CASE("a reload that removes the user or changes the hash during a check refuses its result") {
  AuthGate gate({{"alice", kHash}}, small_limits());
  const auto attempt = gate.begin(kRight, "10.0.0.1", kStart);
  REQUIRE(attempt.verdict == AuthVerdict::verify);
  gate.set_users({{"bob", kHash}});
  CHECK(gate.finish(attempt, "10.0.0.1", true, kStart) == AuthVerdict::unauthorized);
  CHECK(gate.cached() == 0);
}

TEST_CASE("the gate counts its answers, an unknown user as wrong, and the addresses it throttles") {
  AuthGate open;
  run(open, std::nullopt, "10.0.0.1", kStart);
  CHECK(open.counts().missing == 0);  // without users nothing is checked, so nothing is counted
  AuthGate gate({{"alice", kHash}}, small_limits());
  CHECK(run(gate, kRight, "10.0.0.9", kStart) == AuthVerdict::allowed);
  CHECK(run(gate, kRight, "10.0.0.9", kStart + 1s) == AuthVerdict::allowed);
  run(gate, std::nullopt, "10.0.0.1", kStart + 1s);
  run(gate, kWrong, "10.0.0.1", kStart + 1s);
  run(gate, kStranger, "10.0.0.1", kStart + 1s);
  CHECK(gate.throttled_addresses(kStart + 1s) == 0);
  run(gate, "Basic !!", "10.0.0.1", kStart + 1s);
  CHECK(gate.throttled_addresses(kStart + 1s) == 1);
  CHECK(run(gate, kWrong, "10.0.0.1", kStart + 2s) == AuthVerdict::throttled);
  CHECK(run(gate, "Basic !!", "10.0.0.1", kStart + 2s) == AuthVerdict::throttled);
  const auto a = gate.begin(kWrong, "10.0.0.2", kStart + 2s);
  const auto b = gate.begin(kWrong, "10.0.0.3", kStart + 2s);
  CHECK(gate.begin(kWrong, "10.0.0.4", kStart + 2s).verdict == AuthVerdict::busy);
  gate.finish(a, "10.0.0.2", false, kStart + 2s);
  gate.finish(b, "10.0.0.3", false, kStart + 2s);
  const auto& c = gate.counts();
  CHECK(c.ok == 1);
  CHECK(c.cached == 1);
  CHECK(c.missing == 1);
  CHECK(c.wrong == 4);  // alice's wrong password and mallory alike: the names stay secret
  CHECK(c.malformed == 1);
  CHECK(c.throttled == 2);
  CHECK(c.busy == 1);
  CHECK(gate.throttled_addresses(kStart + 60s) == 1);
  CHECK(gate.throttled_addresses(kStart + 61s) == 0);  // the window is over
  gate.set_users({{"alice", kHash}});
  CHECK(gate.counts().ok == 1);  // a reload keeps the counts: they are counters
}

namespace {

const std::string kCert(test_pem::kCertificate);
const std::string kKey(test_pem::kKey);
const std::string kOtherKey(test_pem::kOtherKey);

const char* kHead = R"(state_db: ./db
output_dir: ./out
accounts:
  main:
    base_url: http://127.0.0.1:1
    client_id: id
    client_secret: s
exports: {}
)";

apsis::config::LoadResult load_web(const std::string& tail) {
  apsis::config::LoadOptions options;
  options.env = [](const std::string&) { return std::optional<std::string>(); };
  const std::map<std::string, std::string> files{
      {"/etc/x/cert.pem", kCert}, {"/etc/x/key.pem", kKey}, {"/etc/x/other.pem", kOtherKey}};
  options.files.read_text = [files](const std::filesystem::path& path, std::size_t, std::string* error) {
    const auto file = files.find(path.string());
    if (file != files.end()) return std::optional<std::string>(file->second);
    *error = "No such file or directory";
    return std::optional<std::string>();
  };
  return apsis::config::load_config_string(kHead + tail, "/etc/x/exportd.yaml", options);
}

std::string errors_of(const apsis::config::LoadResult& result) {
  std::string text;
  for (const auto& e : result.errors) text += e.to_string() + "\n";
  return text;
}

}  // namespace

TEST_CASE("admin_web loads TLS files and bcrypt users") {
  const auto result = load_web("admin_allow_remote: true\nadmin_listen: 0.0.0.0:9464\nadmin_web:\n"
                               "  tls_server_config: {cert_file: cert.pem, key_file: key.pem, min_version: TLS13}\n"
                               "  basic_auth_users:\n    alice: '" + kHash + "'\n");
  REQUIRE_MESSAGE(result.config, errors_of(result));
  const auto& web = result.config->admin_web;
  REQUIRE(web.tls);
  CHECK(web.tls->cert_file == "/etc/x/cert.pem");
  CHECK(web.tls->key_file == "/etc/x/key.pem");
  CHECK(web.tls->tls13_only);
  CHECK(web.basic_auth_users == std::map<std::string, std::string>{{"alice", kHash}});
  CHECK_FALSE(load_web("").config->admin_web.tls);
  CHECK(result.warnings.empty());
  const auto unused = load_web("admin_web: {basic_auth_users: {alice: '" + kHash + "'}}\n");
  REQUIRE(unused.warnings.size() == 1);
  CHECK(unused.warnings[0].to_string() == "/etc/x/exportd.yaml:9:1: warning: admin_web: has no effect without "
                                          "admin_listen (there is no admin endpoint)");
}

TEST_CASE("admin_web errors point at the line") {
  const auto other = load_web("admin_web:\n  tls_server_config: {cert_file: cert.pem, key_file: other.pem}\n");
  CHECK(errors_of(other).find("exportd.yaml:10:54: admin_web.tls_server_config.key_file: /etc/x/other.pem is not "
                              "the private key of the certificate") != std::string::npos);
  const auto swapped = load_web("admin_web:\n  tls_server_config: {cert_file: key.pem, key_file: cert.pem}\n");
  CHECK(errors_of(swapped).find("cert_file: /etc/x/key.pem: not a PEM certificate") != std::string::npos);
  CHECK(errors_of(swapped).find("key_file: /etc/x/cert.pem: not an unencrypted PEM private key") != std::string::npos);
  const auto missing = load_web("admin_web:\n  tls_server_config: {cert_file: nope.pem, key_file: key.pem}\n");
  CHECK(errors_of(missing).find("cannot read /etc/x/nope.pem: No such file or directory") != std::string::npos);
  const auto old = load_web("admin_web:\n  tls_server_config: {cert_file: cert.pem, key_file: key.pem, "
                            "min_version: TLS10}\n");
  CHECK(errors_of(old).find("min_version") != std::string::npos);
  const auto no_key = load_web("admin_web:\n  tls_server_config: {cert_file: cert.pem}\n");
  CHECK(errors_of(no_key).find("key_file") != std::string::npos);
  const auto plain = load_web("admin_web:\n  basic_auth_users:\n    alice: s3cret\n");
  CHECK(errors_of(plain).find("exportd.yaml:11:12: admin_web.basic_auth_users.alice: not a bcrypt hash") !=
        std::string::npos);
  CHECK(errors_of(plain).find("s3cret") == std::string::npos);  // never quoted
  const auto colon = load_web("admin_web:\n  basic_auth_users:\n    'a:b': '" + kHash + "'\n");
  CHECK(errors_of(colon).find("a user name must be non-empty") != std::string::npos);
  const auto empty = load_web("admin_web:\n  basic_auth_users:\n    '': '" + kHash + "'\n");
  CHECK(errors_of(empty).find("a user name must be non-empty") != std::string::npos);
  const auto none = load_web("admin_web:\n  basic_auth_users: {}\n");
  CHECK(errors_of(none).find("no users") != std::string::npos);
  const auto unknown = load_web("admin_web:\n  client_ca_file: ca.pem\n");
  CHECK(errors_of(unknown).find("client_ca_file") != std::string::npos);
}

TEST_CASE("admin_allow_remote: true needs basic_auth_users, and says how to make a hash") {
  const auto open = load_web("admin_allow_remote: true\nadmin_listen: 0.0.0.0:9464\n");
  CHECK_FALSE(open.config);
  CHECK(errors_of(open).find("exportd.yaml:9:21: admin_allow_remote: other machines may read the admin endpoint "
                             "only with a password") != std::string::npos);
  CHECK(errors_of(open).find("htpasswd -nBC 10 USER") != std::string::npos);
  const auto tls_only = load_web("admin_allow_remote: true\nadmin_web:\n"
                                 "  tls_server_config: {cert_file: cert.pem, key_file: key.pem}\n");
  CHECK(errors_of(tls_only).find("admin_allow_remote: needs admin_web.basic_auth_users") != std::string::npos);
  CHECK(load_web("admin_allow_remote: false\nadmin_listen: 127.0.0.1:9464\n").config);
}
