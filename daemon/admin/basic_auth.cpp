#include "admin/basic_auth.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace apsis::admin {
namespace {

// Checked against when the user is unknown, so an unknown name costs as long as a wrong password
// and the answer's timing does not tell which names exist. Its password is never accepted.
constexpr std::string_view kDecoyHash = "$2b$10$CSBXUV4P9WVA13YquI4LX.hQzz/hO.k.3nY4Kw939Y8Fgdwe0e0/S";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with padding, as RFC 7617 uses; nullopt for anything else.
std::optional<std::string> decode_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  while (padding < 2 && text[text.size() - 1 - padding] == '=') ++padding;
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (std::size_t i = 0; i < text.size() - padding; ++i) {
    const int value = base64_value(text[i]);
    if (value < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<unsigned>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xFFu));
    }
  }
  if ((bits & ((1u << count) - 1u)) != 0) return std::nullopt;  // non-canonical trailing bits
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

Sha256 digest(const std::string& user, const std::string& password, const std::string& hash) {
  std::string input = user;
  input.push_back('\0');
  input += password;
  input.push_back('\0');
  input += hash;
  Sha256 out{};
  unsigned int length = 0;
  if (EVP_Digest(input.data(), input.size(), out.data(), &length, EVP_sha256(), nullptr) != 1 || length != out.size())
    throw std::runtime_error("SHA-256 failed");
  OPENSSL_cleanse(input.data(), input.size());
  return out;
}

}  // namespace

std::optional<BasicCredentials> parse_basic_authorization(std::string_view header) {
  const auto space = header.find(' ');
  if (space == std::string_view::npos || !iequals(header.substr(0, space), "Basic")) return std::nullopt;
  auto encoded = header.substr(space + 1);
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
  const auto decoded = decode_base64(encoded);
  if (!decoded) return std::nullopt;
  const auto colon = decoded->find(':');  // a user name cannot hold one; a password can
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

AuthGate::AuthGate(Users users, AuthLimits limits) : users_(std::move(users)), limits_(limits) {}

void AuthGate::set_users(Users users) {
  users_ = std::move(users);
  cache_.clear();
}

AuthAttempt AuthGate::begin(std::optional<std::string_view> authorization, const std::string& client, TimePoint now) {
  AuthAttempt attempt;
  if (!enabled()) {
    attempt.verdict = AuthVerdict::allowed;
    return attempt;
  }
  if (!authorization) {  // a client's first try, as browsers do: not a failure
    ++counts_.missing;
    return attempt;
  }
  auto credentials = parse_basic_authorization(*authorization);
  if (!credentials) {
    if (is_throttled(client, now)) {
      ++counts_.throttled;
      attempt.verdict = AuthVerdict::throttled;
      return attempt;
    }
    ++counts_.malformed;
    count_failure(client, now);
    return attempt;
  }
  const auto user = users_.find(credentials->user);
  attempt.known_user = user != users_.end();
  attempt.hash = attempt.known_user ? user->second : std::string(kDecoyHash);
  attempt.key = digest(credentials->user, credentials->password, attempt.hash);
  if (attempt.known_user) {
    const auto hit = cache_.find(attempt.key);
    if (hit != cache_.end() && hit->second > now) {
      ++counts_.cached;
      attempt.verdict = AuthVerdict::allowed;
      return attempt;
    }
  }
  if (is_throttled(client, now)) {
    ++counts_.throttled;
    attempt.verdict = AuthVerdict::throttled;
    return attempt;
  }
  if (running_ >= limits_.max_concurrent_checks) {
    ++counts_.busy;
    attempt.verdict = AuthVerdict::busy;
    return attempt;
  }
  ++running_;
  attempt.verdict = AuthVerdict::verify;
  attempt.user = std::move(credentials->user);
  attempt.password = std::move(credentials->password);
  return attempt;
}

AuthVerdict AuthGate::finish(const AuthAttempt& attempt, const std::string& client, bool matched, TimePoint now) {
  if (running_ > 0) --running_;
  // A reload while the check ran may have removed the user or changed the hash.
  const auto user = users_.find(attempt.user);
  if (matched && attempt.known_user && user != users_.end() && user->second == attempt.hash) {
    remember_success(attempt.key, now);
    ++counts_.ok;
    return AuthVerdict::allowed;
  }
  ++counts_.wrong;
  count_failure(client, now);
  return AuthVerdict::unauthorized;
}

bool AuthGate::is_throttled(const std::string& client, TimePoint now) {
  const auto entry = failures_.find(client);
  if (entry == failures_.end()) return false;
  if (now - entry->second.since >= limits_.failure_window) {
    failures_.erase(entry);
    return false;
  }
  return entry->second.count >= limits_.max_failures;
}

bool AuthGate::refuses(const Failures& failures, TimePoint now) const {
  return now - failures.since < limits_.failure_window && failures.count >= limits_.max_failures;
}

bool AuthGate::throttled(const std::string& client, TimePoint now) const {
  const auto entry = failures_.find(client);
  return entry != failures_.end() && refuses(entry->second, now);
}

std::size_t AuthGate::throttled_addresses(TimePoint now) const {
  return static_cast<std::size_t>(
      std::count_if(failures_.begin(), failures_.end(), [&](const auto& entry) { return refuses(entry.second, now); }));
}

void AuthGate::remember_success(const Sha256& key, TimePoint now) {
  if (cache_.size() >= limits_.max_cached && !cache_.contains(key)) {
    std::erase_if(cache_, [&](const auto& entry) { return entry.second <= now; });
    if (cache_.size() >= limits_.max_cached)
      cache_.erase(std::min_element(cache_.begin(), cache_.end(),
                                    [](const auto& a, const auto& b) { return a.second < b.second; }));
  }
  cache_[key] = now + limits_.cache_ttl;
}

void AuthGate::count_failure(const std::string& client, TimePoint now) {
  auto entry = failures_.find(client);
  if (entry != failures_.end() && now - entry->second.since >= limits_.failure_window) {
    failures_.erase(entry);
    entry = failures_.end();
  }
  if (entry == failures_.end()) {
    if (failures_.size() >= limits_.max_clients_tracked)
      std::erase_if(failures_, [&](const auto& e) { return now - e.second.since >= limits_.failure_window; });
    // Still full: a flood from many addresses goes uncounted, and the cap on running checks holds it.
    if (failures_.size() >= limits_.max_clients_tracked) return;
    entry = failures_.emplace(client, Failures{0, now}).first;
  }
  ++entry->second.count;
}

}  // namespace apsis::admin
