// Directories the daemon creates carry an explicit mode: std::filesystem::create_directories uses
// 0777 minus the umask, which under a permissive umask opens job data to every user.
#pragma once

#include <filesystem>
#include <sys/types.h>

namespace apsis {

// Creates `dir` and any missing parents with `mode` (still narrowed by the umask, never widened).
// Existing directories are left as they are. Throws std::filesystem::filesystem_error.
void create_directories(const std::filesystem::path& dir, mode_t mode);

}  // namespace apsis
