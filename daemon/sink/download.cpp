#include "sink/download.hpp"

#include <stdexcept>

namespace apsis::sink {

Download::Download(std::filesystem::path final_path, bool verify_gzip) : file_(std::move(final_path)) {
  if (verify_gzip) gzip_.emplace();
}

void Download::write(std::span<const char> bytes) {
  file_.write(bytes);
  hash_.update(bytes);
  if (gzip_) gzip_->update(bytes);
}

Published Download::publish() {
  if (gzip_ && !gzip_->complete())
    throw std::runtime_error(gzip_->error().empty() ? "gzip stream ended before its trailer (download incomplete)"
                                                    : gzip_->error());
  file_.publish();
  return Published{file_.final_path(), file_.bytes_written(), hash_.hex_digest()};
}

}  // namespace apsis::sink
