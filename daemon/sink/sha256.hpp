// Incremental SHA-256 (OpenSSL EVP) of a download, computed as the bytes stream past.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <span>
#include <string>

namespace apsis::sink {

class Sha256 {
 public:
  Sha256();
  void update(std::span<const char> bytes);
  std::string hex_digest();  // finishes the hash; call once

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

}  // namespace apsis::sink
