// A file that becomes visible under its final name only when complete and durable:
// write to a temporary file beside the target, fsync, rename into place, fsync the directory.
// Destroying an unpublished StagedFile removes the temporary file, so a failed or cut download
// never leaves a partial file behind under any name a loader would pick up.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>

namespace apsis::sink {

// Temporary files start with this, so a restart can find and remove orphans of a crash.
inline constexpr std::string_view kTempPrefix = ".apsis-part-";

class StagedFile {
 public:
  // Creates the target's directory if needed and a new temporary file (mode 0640) beside it.
  explicit StagedFile(std::filesystem::path final_path);
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  void write(std::span<const char> bytes);
  // fsync → rename → fsync(directory). After a failed fsync the data is treated as lost: the
  // temporary file is removed and the error thrown, never retried on the same descriptor.
  void publish();

  const std::filesystem::path& final_path() const { return final_path_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }
  std::uint64_t bytes_written() const { return bytes_written_; }

 private:
  void discard() noexcept;

  std::filesystem::path final_path_;
  std::filesystem::path temp_path_;
  int fd_{-1};
  std::uint64_t bytes_written_{0};
  bool published_{false};
};

// Removes temporary files left by a crash anywhere under `dir`; returns how many were removed.
int remove_orphaned_temp_files(const std::filesystem::path& dir);

}  // namespace apsis::sink
