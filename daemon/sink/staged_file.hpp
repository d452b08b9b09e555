// A file that becomes visible under its final name only when complete and durable:
// write to a temporary file beside the target, fsync, move it into place without replacing anything,
// fsync the directory. Destroying an unpublished StagedFile removes the temporary file, so a failed
// or cut download never leaves a partial file behind under any name a loader would pick up.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace apsis::sink {

// Temporary files start with this, so a restart can find and remove orphans of a crash.
inline constexpr std::string_view kTempPrefix = ".apsis-part-";

// The process a temporary file belongs to, written into its name: on a shared output directory a
// starting daemon removes only its own host's temporary files whose process no longer runs. The start
// time (clock ticks after boot, /proc/PID/stat) tells a reused pid from the process that wrote the file.
struct TempOwner {
  std::string host;
  pid_t pid{0};
  std::uint64_t start_time{0};

  bool operator==(const TempOwner&) const = default;
};

// This process, on this host.
const TempOwner& this_process();
// A running process's start time; nullopt when no process has that pid.
std::optional<std::uint64_t> process_start_time(pid_t pid);
// ".apsis-part-TARGET-PID-START-RANDOM@HOST": TARGET (the final file name, shortened to fit 255
// bytes) only helps a human; the owner is read back by parse_temp_owner.
std::string temp_file_name(const TempOwner& owner, std::string_view random, std::string_view target_name);
std::optional<TempOwner> parse_temp_owner(std::string_view file_name);

class StagedFile {
 public:
  // Creates the target's directory if needed and a new temporary file (mode 0640) beside it.
  explicit StagedFile(std::filesystem::path final_path);
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  void write(std::span<const char> bytes);
  // A name that some file already holds: true when that file holds exactly these bytes.
  using SameFile = std::function<bool(const std::filesystem::path& existing)>;
  // fsync → move into place under the first free name of final_path() and then `alternatives` (all in
  // the same directory) → fsync(directory). A file already there is never replaced: renameat2 with
  // RENAME_NOREPLACE, or link + unlink where the file system lacks it (both fail with EEXIST
  // atomically). A taken name that `same_file` recognises counts as published (this job's own file of
  // an earlier attempt cut short by a crash), and the temporary file goes. Returns the name used.
  // After a failed fsync the data is treated as lost: the temporary file is removed and the error
  // thrown, never retried on the same descriptor; after a failed fsync of the directory, the file just
  // moved into place is removed (its name may not survive a crash) and the error thrown. Every name taken: std::system_error(EEXIST).
  std::filesystem::path publish(std::span<const std::filesystem::path> alternatives = {},
                                const SameFile& same_file = {});

  // The name published under, once published; the preferred name before.
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

// Removes the temporary files under `dir` whose owner is gone: written on this host by a process
// that no longer runs (or whose pid now belongs to another process). Files of a running process or of
// another host stay; so do files without an owner in their name (an older version's) until they are
// a day old. Returns how many were removed.
int remove_orphaned_temp_files(const std::filesystem::path& dir);

// Throws std::runtime_error when `dir` (below `root`, existing or not) would lead out of `root`
// through a symbolic link: the deepest part of `dir` that exists must resolve to a place inside root.
void check_inside(const std::filesystem::path& root, const std::filesystem::path& dir);

}  // namespace apsis::sink
