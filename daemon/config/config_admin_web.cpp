// admin_web: the admin endpoint's TLS files and basic auth users, in the Prometheus exporter
// toolkit's shape. Files are loaded now, with OpenSSL, so `check` and a reload catch a key that
// does not fit its certificate instead of the next start.
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <memory>

#include "admin/bcrypt.hpp"
#include "config/loader_sections.hpp"

namespace apsis::config::detail {
namespace {

constexpr std::array<std::string_view, 2> kWebKeys{"tls_server_config", "basic_auth_users"};
constexpr std::array<std::string_view, 3> kTlsKeys{"cert_file", "key_file", "min_version"};
constexpr std::size_t kMaxPemBytes = 1024 * 1024;

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

std::string openssl_reason() {
  const auto code = ERR_get_error();
  ERR_clear_error();
  char reason[256] = "unreadable";
  if (code) ERR_error_string_n(code, reason, sizeof reason);
  return reason;
}

// An encrypted key would make OpenSSL ask a terminal for its passphrase: refused instead.
int no_passphrase(char*, int, int, void*) { return -1; }

std::optional<std::string> read_pem(LoadContext& ctx, const Field& field, std::filesystem::path& path) {
  auto read = read_path(ctx, field);
  if (!read) return std::nullopt;
  path = std::move(*read);
  std::string reason;
  auto pem = ctx.options.files.read_text(path, kMaxPemBytes, &reason);
  if (!pem) ctx.errors.add(field.mark(), field.path + ": cannot read " + path.string() + ": " + reason);
  return pem;
}

std::unique_ptr<X509, decltype(&X509_free)> load_certificate(LoadContext& ctx, const Field& field,
                                                             const std::string& pem, const std::string& name) {
  ERR_clear_error();
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr) : nullptr, &X509_free);
  if (!cert)
    ctx.errors.add(field.mark(), field.path + ": " + name + ": not a PEM certificate (" + openssl_reason() +
                                     "; expected -----BEGIN CERTIFICATE-----)");
  return cert;
}

std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> load_key(LoadContext& ctx, const Field& field,
                                                             const std::string& pem, const std::string& name) {
  ERR_clear_error();
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr, &EVP_PKEY_free);
  if (!key)
    ctx.errors.add(field.mark(), field.path + ": " + name + ": not an unencrypted PEM private key (" +
                                     openssl_reason() + ")");
  return key;
}

std::optional<AdminWeb::Tls> read_tls(LoadContext& ctx, const Field& field) {
  const Mapping mapping(ctx, field, kTlsKeys);
  if (!mapping.is_mapping()) return std::nullopt;
  const auto cert_field = mapping.require("cert_file", "the PEM file of the server certificate");
  const auto key_field = mapping.require("key_file", "the PEM file of the certificate's private key");
  AdminWeb::Tls tls;
  if (const auto version = mapping.get("min_version")) {
    const auto choice = read_enum<bool>(ctx, *version, {{"TLS12", false}, {"TLS13", true}});
    if (choice) tls.tls13_only = *choice;
  }
  if (!cert_field || !key_field) return std::nullopt;
  if (!ctx.options.read_private_files) {
    const auto cert = read_path(ctx, *cert_field);
    const auto key = read_path(ctx, *key_field);
    if (!cert || !key) return std::nullopt;
    tls.cert_file = *cert;
    tls.key_file = *key;
    return tls;
  }
  const auto cert_pem = read_pem(ctx, *cert_field, tls.cert_file);
  const auto key_pem = read_pem(ctx, *key_field, tls.key_file);
  if (!cert_pem || !key_pem) return std::nullopt;
  const auto cert = load_certificate(ctx, *cert_field, *cert_pem, tls.cert_file.string());
  const auto key = load_key(ctx, *key_field, *key_pem, tls.key_file.string());
  if (!cert || !key) return std::nullopt;
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    ctx.errors.add(key_field->mark(), key_field->path + ": " + tls.key_file.string() +
                                          " is not the private key of the certificate in " + tls.cert_file.string());
    return std::nullopt;
  }
  return tls;
}

std::map<std::string, std::string> read_users(LoadContext& ctx, const Field& field) {
  const auto mapping = Mapping::of_names(ctx, field, "user name");
  std::map<std::string, std::string> users;
  for (const auto& user : mapping.fields()) {
    const auto name = user.key.Scalar();
    if (name.empty() || name.find(':') != std::string::npos) {
      ctx.errors.add(user.key.Mark(), field.path + ": a user name must be non-empty and hold no ':' (basic auth "
                                                   "separates user and password with it)");
      continue;
    }
    const auto hash = read_nonempty_string(ctx, user);
    if (!hash) continue;
    if (const auto problem = admin::bcrypt_hash_problem(*hash)) {
      ctx.errors.add(user.mark(), user.path + ": " + *problem);
      continue;
    }
    users.emplace(name, *hash);
  }
  if (mapping.is_mapping() && mapping.fields().empty())
    ctx.errors.add(field.mark(), field.path + ": no users: expected USER: BCRYPT_HASH entries (or leave the key out)");
  return users;
}

}  // namespace

AdminWeb read_admin_web(LoadContext& ctx, const Field& field) {
  const Mapping mapping(ctx, field, kWebKeys);
  AdminWeb web;
  if (const auto tls = mapping.get("tls_server_config")) web.tls = read_tls(ctx, *tls);
  if (const auto users = mapping.get("basic_auth_users")) web.basic_auth_users = read_users(ctx, *users);
  return web;
}

}  // namespace apsis::config::detail
