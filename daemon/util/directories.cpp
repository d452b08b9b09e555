#include "util/directories.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <system_error>

namespace apsis {

void create_directories(const std::filesystem::path& dir, mode_t mode) {
  if (dir.empty() || std::filesystem::is_directory(dir)) return;
  create_directories(dir.parent_path(), mode);
  if (::mkdir(dir.c_str(), mode) == 0 || (errno == EEXIST && std::filesystem::is_directory(dir))) return;
  throw std::filesystem::filesystem_error("cannot create directory", dir, std::error_code(errno, std::generic_category()));
}

}  // namespace apsis
