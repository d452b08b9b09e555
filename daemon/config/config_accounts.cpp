// accounts: API endpoints and credentials, one entry per APSIS One account.
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <memory>

#include "config/loader_sections.hpp"
#include "http/url.hpp"

namespace apsis::config::detail {
namespace {

constexpr std::array<std::string_view, 11> kAccountKeys{
    "base_url",   "client_id", "client_secret",   "client_secret_file", "ca_file",        "token_path",
    "paths",      "request_timeout", "max_connections", "poll_url_field", "budget"};
constexpr std::array<RetiredKey, 1> kRetiredAccountKeys{
    {{"max_requests_per_second",
      "the account's API budget is set per call kind under budget: (submits, event_submits, polls, tokens), "
      "e.g. budget: {polls: 30/1m}"}}};
constexpr std::array<std::string_view, 4> kPathKeys{"duplicates", "consents", "segments", "events"};
constexpr std::array<ExportKind, 4> kPathKinds{ExportKind::duplicates, ExportKind::consents, ExportKind::segments,
                                               ExportKind::events};
constexpr std::array<std::string_view, 4> kBudgetKeys{"submits", "event_submits", "polls", "tokens"};
constexpr std::array<std::string_view, 2> kPollUrlFields{"file_download_url", "file_download_url_v2"};
constexpr std::size_t kMaxSecretBytes = 64 * 1024;
// Debian's whole system bundle is about 220 KiB.
constexpr std::size_t kMaxCaBundleBytes = 16 * 1024 * 1024;

// scheme://host[:port], the port only when it is not the scheme's default.
std::string base_url_text(const http::Url& url) {
  const bool v6 = url.host.find(':') != std::string::npos;
  std::string text = url.scheme + "://" + (v6 ? "[" + url.host + "]" : url.host);
  if (url.port != (url.is_tls() ? "443" : "80")) text += ":" + url.port;
  return text;
}

void read_base_url(LoadContext& ctx, const Field& field, Account& account) {
  const auto text = read_nonempty_string(ctx, field);
  if (!text) return;
  const auto shown = http::redact_userinfo(*text);  // never the credential of a user:password@ URL
  std::string error;
  const auto url = http::parse_url(*text, &error);
  if (!url) {
    ctx.errors.add(field.mark(), field.path + ": invalid URL '" + shown + "': " + error);
  } else if (url->target != "/" || text->find('#') != std::string::npos) {
    ctx.errors.add(field.mark(), field.path + ": expected scheme://host[:port] without a path or query, got '" + shown +
                                     "' (paths per export kind go under paths:)");
  } else if (!url->is_tls() && !http::is_loopback_host(url->host)) {
    ctx.errors.add(field.mark(), field.path + ": plain http is only allowed to localhost, 127.0.0.0/8 or ::1, got '" +
                                     shown + "': use https://");
  } else {
    account.base_url = base_url_text(*url);
  }
}

// The secret's value must never appear in a message: only paths and OS reasons do.
std::optional<std::string> read_secret_file(LoadContext& ctx, const Field& field) {
  const auto path = read_path(ctx, field);
  if (!path) return std::nullopt;
  std::string reason;
  auto secret = ctx.options.files.read_text(*path, kMaxSecretBytes, &reason);
  if (!secret) {
    ctx.errors.add(field.mark(), field.path + ": cannot read " + path->string() + ": " + reason);
    return std::nullopt;
  }
  secret->erase(secret->find_last_not_of(" \t\r\n") + 1);
  if (secret->empty()) {
    ctx.errors.add(field.mark(), field.path + ": " + path->string() + " is empty: expected the API client secret");
    return std::nullopt;
  }
  if (std::ranges::any_of(*secret, [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    ctx.errors.add(field.mark(),
                   field.path + ": " + path->string() +
                       " holds more than one line or control characters: expected only the client secret");
    return std::nullopt;
  }
  return secret;
}

void read_secret(LoadContext& ctx, const Mapping& mapping, Account& account) {
  const auto inline_secret = mapping.get("client_secret");
  const auto secret_file = mapping.get("client_secret_file");
  if (inline_secret && secret_file) {
    ctx.errors.add(secret_file->key.Mark(),
                   mapping.path() + ": both client_secret and client_secret_file are set: expected exactly one");
  } else if (!inline_secret && !secret_file && mapping.is_mapping()) {
    ctx.errors.add(mapping.mark(), mapping.path() +
                                       ": missing client_secret_file: expected the path of a file "
                                       "holding the API client secret (or client_secret)");
  } else if (inline_secret && !secret_file) {
    if (auto secret = read_nonempty_string(ctx, *inline_secret)) account.client_secret = std::move(*secret);
  } else if (secret_file) {
    if (auto secret = read_secret_file(ctx, *secret_file)) account.client_secret = std::move(*secret);
  }
}

// What OpenSSL says when `pem` is not a CA bundle it would load: nullopt when it holds at least one
// certificate (or CRL) and nothing it cannot parse. The same reading as the TLS client's
// load_verify_file, so a file check accepts never throws later, in a reload.
std::optional<std::string> ca_bundle_problem(const std::string& pem) {
  ERR_clear_error();
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                       &BIO_free);
  if (!bio) return "out of memory";
  STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr);
  if (!infos) {
    const auto code = ERR_get_error();
    ERR_clear_error();
    char reason[256] = "unreadable";
    if (code) ERR_error_string_n(code, reason, sizeof reason);
    return std::string("not a PEM CA bundle (") + reason + ")";
  }
  int usable = 0;
  for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
    const X509_INFO* info = sk_X509_INFO_value(infos, i);
    if (info->x509 || info->crl) ++usable;
  }
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  ERR_clear_error();
  if (usable == 0) return std::string("no PEM certificate in it (expected -----BEGIN CERTIFICATE----- blocks)");
  return std::nullopt;
}

void read_ca_file(LoadContext& ctx, const Field& field, Account& account) {
  auto path = read_path(ctx, field);
  if (!path) return;
  std::string reason;
  const auto pem = ctx.options.files.read_text(*path, kMaxCaBundleBytes, &reason);
  if (!pem) {
    ctx.errors.add(field.mark(), field.path + ": cannot read " + path->string() + ": " + reason);
    return;
  }
  if (const auto problem = ca_bundle_problem(*pem)) {
    ctx.errors.add(field.mark(), field.path + ": " + path->string() + ": " + *problem);
    return;
  }
  account.ca_file = std::move(*path);
}

void read_export_paths(LoadContext& ctx, const Field& field, Account& account) {
  const Mapping paths(ctx, field, kPathKeys);
  for (std::size_t i = 0; i < kPathKeys.size(); ++i)
    if (const auto path = paths.get(kPathKeys[i]))
      if (auto value = read_url_path(ctx, *path)) account.export_paths[kPathKinds[i]] = std::move(*value);
}

// Keys left out keep the defaults of AccountBudget.
void read_budget(LoadContext& ctx, const Field& field, Account& account) {
  const Mapping budget(ctx, field, kBudgetKeys);
  RateBudget* targets[] = {&account.budget.submits, &account.budget.event_submits, &account.budget.polls,
                           &account.budget.tokens};
  for (std::size_t i = 0; i < kBudgetKeys.size(); ++i)
    if (const auto entry = budget.get(kBudgetKeys[i]))
      if (const auto value = read_rate_budget(ctx, *entry)) *targets[i] = *value;
}

void read_poll_url_field(LoadContext& ctx, const Field& field, Account& account) {
  if (const auto index = read_choice(ctx, field, kPollUrlFields))
    account.poll_url_field = *parse_poll_url_field(kPollUrlFields[*index]);
}

Account read_account(LoadContext& ctx, const Field& field) {
  const Mapping mapping(ctx, field, kAccountKeys, kRetiredAccountKeys);
  Account account;
  account.name = field.key.Scalar();
  if (const auto url = mapping.require("base_url", "the API's URL, e.g. https://api.apsis.one"))
    read_base_url(ctx, *url, account);
  if (const auto id = mapping.require("client_id", "the API client ID, e.g. ${APSIS_CLIENT_ID}"))
    if (auto value = read_nonempty_string(ctx, *id)) account.client_id = std::move(*value);
  read_secret(ctx, mapping, account);
  if (const auto ca = mapping.get("ca_file")) read_ca_file(ctx, *ca, account);
  if (const auto token = mapping.get("token_path"))
    if (auto value = read_url_path(ctx, *token)) account.token_path = std::move(*value);
  if (const auto paths = mapping.get("paths")) read_export_paths(ctx, *paths, account);
  if (const auto timeout = mapping.get("request_timeout"))
    if (const auto value = read_duration(ctx, *timeout)) account.request_timeout = *value;
  if (const auto connections = mapping.get("max_connections"))
    if (const auto value = read_int(ctx, *connections, 0)) account.max_connections = *value;
  if (const auto poll_url = mapping.get("poll_url_field")) read_poll_url_field(ctx, *poll_url, account);
  if (const auto budget = mapping.get("budget")) read_budget(ctx, *budget, account);
  return account;
}

}  // namespace

AccountsSection read_accounts(LoadContext& ctx, const Field& field, bool may_be_empty) {
  const auto names = Mapping::of_names(ctx, field, "account name");
  AccountsSection section;
  if (!may_be_empty && names.fields().empty() && (field.value.IsMap() || field.value.IsNull()))
    ctx.errors.add(field.mark(), field.path + ": at least one account is required");
  for (const auto& entry : names.fields()) {
    const std::string& name = entry.key.Scalar();
    if (!is_valid_name(name))
      ctx.errors.add(entry.key.Mark(),
                     "invalid account name '" + name +
                         "': expected letters, digits, '.', '_' and '-', starting with a letter or digit");
    section.names.push_back(name);
    section.accounts.emplace(name, read_account(ctx, entry));
  }
  return section;
}

}  // namespace apsis::config::detail
