// Verifies a gzip stream as it is stored compressed: the bytes are kept as they arrive, and this
// inflates them into a scratch buffer only to prove the CRC-32/size trailer matches. A cut or
// corrupted .gz must never be published.
#pragma once

#include <zlib.h>

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
  // True when the whole stream, trailer included, was seen and is valid, with nothing after it.
  bool complete() const { return finished_ && error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  z_stream zs_{};
  bool finished_{false};
  std::string error_;
};

}  // namespace apsis::sink
