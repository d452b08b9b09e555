#include "sink/gzip_check.hpp"

#include <array>
#include <stdexcept>

namespace apsis::sink {

GzipCheck::GzipCheck() {
  // 16 + MAX_WBITS: gzip wrapper only, so a zlib or raw stream is rejected.
  if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error("zlib: cannot initialise inflate");
}

GzipCheck::~GzipCheck() { inflateEnd(&zs_); }

bool GzipCheck::update(std::span<const char> bytes) {
  if (!error_.empty()) return false;
  if (bytes.empty()) return true;
  if (finished_) {
    error_ = "gzip stream has data after its trailer";
    return false;
  }
  std::array<unsigned char, 64 * 1024> scratch;
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs_.avail_in = static_cast<uInt>(bytes.size());
  while (zs_.avail_in > 0) {
    zs_.next_out = scratch.data();
    zs_.avail_out = static_cast<uInt>(scratch.size());
    const int rc = inflate(&zs_, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      finished_ = true;
      if (zs_.avail_in > 0) error_ = "gzip stream has data after its trailer";
      return error_.empty();
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      error_ = std::string("gzip stream is corrupt: ") + (zs_.msg ? zs_.msg : "inflate failed");
      return false;
    }
    if (rc == Z_BUF_ERROR && zs_.avail_out != 0) break;  // needs more input
  }
  return true;
}

}  // namespace apsis::sink
