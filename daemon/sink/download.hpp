// One download attempt's destination: a staged file, hashed as it is written and, for gzip, checked
// to the last trailer byte. Either publish() makes a complete file visible, or destruction leaves nothing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "sink/gzip_check.hpp"
#include "sink/sha256.hpp"
#include "sink/staged_file.hpp"

namespace apsis::sink {

struct Published {
  std::filesystem::path path;
  std::uint64_t bytes{0};
  std::string sha256;
};

class Download {
 public:
  Download(std::filesystem::path final_path, bool verify_gzip);
  void write(std::span<const char> bytes);
  // Throws std::runtime_error (the file is then discarded) if the gzip stream is incomplete or corrupt.
  Published publish();

 private:
  StagedFile file_;
  Sha256 hash_;
  std::optional<GzipCheck> gzip_;
};

}  // namespace apsis::sink
