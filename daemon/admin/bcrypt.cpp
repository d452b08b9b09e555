#include "admin/bcrypt.hpp"

#include <crypt.h>
#include <openssl/crypto.h>

#include <cstring>
#include <memory>

namespace apsis::admin {
namespace {

constexpr std::string_view kAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::size_t kPrefixLength = 7;   // "$2b$10$"
constexpr std::size_t kEncodedLength = 53;  // 22 characters of salt, 31 of digest

}  // namespace

std::optional<std::string> bcrypt_hash_problem(std::string_view hash) {
  const std::string expected = "; expected a bcrypt hash such as htpasswd -nBC 10 USER or mkpasswd -m bcrypt write "
                               "($2y$10$ followed by 53 characters)";
  if (hash.size() < kPrefixLength || hash[0] != '$' || hash[1] != '2' || hash[3] != '$' || hash[6] != '$' ||
      (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y'))
    return "not a bcrypt hash (it does not start with $2a$, $2b$ or $2y$)" + expected;
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(hash[4]) || !digit(hash[5])) return "the bcrypt cost is not two digits" + expected;
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) return "bcrypt cost " + std::to_string(cost) + " is outside 04..31";
  const auto encoded = hash.substr(kPrefixLength);
  if (encoded.size() != kEncodedLength)
    return "a bcrypt hash has 60 characters, this one " + std::to_string(hash.size()) + expected;
  if (encoded.find_first_not_of(kAlphabet) != std::string_view::npos)
    return "the bcrypt hash has a character outside bcrypt's alphabet (./A-Za-z0-9)";
  return std::nullopt;
}

bool bcrypt_matches(std::string_view password, const std::string& hash) {
  // crypt(3) takes a C string: a password with a NUL in it cannot be the one hashed.
  if (password.find('\0') != std::string_view::npos) return false;
  const std::string phrase(password);
  // crypt_data is 32 KiB: on the heap, not on a pool thread's stack.
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  // crypt_rn returns null on an invalid setting instead of a "*0" string that could be compared.
  const char* out = crypt_rn(phrase.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  if (!out) return false;
  const std::size_t length = std::strlen(out);
  if (length != hash.size()) return false;
  return CRYPTO_memcmp(out, hash.data(), length) == 0;
}

}  // namespace apsis::admin
