// Verifies a gzip stream as it is stored compressed: the bytes are kept as they arrive, and this
// inflates them into a scratch buffer only to prove the CRC-32/size trailer matches. A stream may
// hold several members one after another (RFC 1952 2.2), each with its own trailer, all checked.
// A cut or corrupted .gz must never be published.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <span>
#include <string>

namespace apsis::sink {

class GzipCheck {
 public:
  GzipCheck();
  ~GzipCheck();
  GzipCheck(const GzipCheck&) = delete;
  GzipCheck& operator=(const GzipCheck&) = delete;

  // False once the stream is known to be broken; error() says why.
  bool update(std::span<const char> bytes);
  // True when the stream ends right after a member's trailer and every member was valid.
  bool complete() const { return finished_ && error_.empty(); }
  const std::string& error() const { return error_; }
  // The bytes the members hold, uncompressed (0 for a valid stream of an empty file).
  std::uint64_t uncompressed_bytes() const { return uncompressed_; }

 private:
  z_stream zs_{};
  bool finished_{false};  // at a member's end: more bytes start the next member
  std::uint64_t uncompressed_{0};
  std::string error_;
};

}  // namespace apsis::sink
