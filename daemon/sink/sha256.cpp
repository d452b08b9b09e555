#include "sink/sha256.hpp"

#include <memory>
#include <stdexcept>

namespace apsis::sink {
namespace {

// Given EVP_sha256(), OpenSSL 3 looks the algorithm up again on every init (dozens of allocations
// per download); fetched once, it is not. An immutable handle, freed at exit.
const EVP_MD* sha256_algorithm() {
  static const std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> algorithm(EVP_MD_fetch(nullptr, "SHA256", nullptr),
                                                                         &EVP_MD_free);
  return algorithm.get();
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
  if (!ctx_ || !sha256_algorithm() || EVP_DigestInit_ex(ctx_.get(), sha256_algorithm(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: cannot initialise SHA-256");
}

void Sha256::update(std::span<const char> bytes) {
  if (EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1) throw std::runtime_error("OpenSSL: SHA-256 update");
}

std::string Sha256::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), digest, &length) != 1) throw std::runtime_error("OpenSSL: SHA-256 final");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace apsis::sink
