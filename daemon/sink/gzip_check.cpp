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
  std::array<unsigned char, 64 * 1024> scratch;
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs_.avail_in = static_cast<uInt>(bytes.size());
  bool output_full = false;  // inflate may hold more output than fitted: call it again
  while (zs_.avail_in > 0 || output_full) {
    if (finished_) {
      if (zs_.avail_in == 0) break;
      // Bytes after a trailer start another member, which must be a whole gzip member itself
      // (its header is checked like the first one's): no trailing garbage is accepted.
      inflateReset(&zs_);
      finished_ = false;
    }
    zs_.next_out = scratch.data();
    zs_.avail_out = static_cast<uInt>(scratch.size());
    const int rc = inflate(&zs_, Z_NO_FLUSH);
    uncompressed_ += scratch.size() - zs_.avail_out;
    output_full = zs_.avail_out == 0;
    if (rc == Z_STREAM_END) {
      finished_ = true;
      output_full = false;
      continue;
    }
    if (rc == Z_BUF_ERROR) break;  // no progress possible: needs more input
    if (rc != Z_OK) {
      error_ = std::string("gzip stream is corrupt: ") + (zs_.msg ? zs_.msg : "inflate failed");
      return false;
    }
  }
  return true;
}

}  // namespace apsis::sink
