// Loads and validates the daemon's YAML configuration into config::Config values.
//
// Validation is complete: every problem in the file is reported, each at FILE:LINE:COL with what is
// wrong and what is expected, and a Config is returned only when there is none. The file format is
// documented by config/example.yaml.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/env_expand.hpp"

namespace apsis::config {

struct ConfigError {
  std::string file;
  int line{0};    // 1-based; 0 when the error is about the whole file (unreadable)
  int column{0};  // 1-based; 0 with line 0
  std::string message;

  // "FILE:LINE:COL: MESSAGE", or "FILE: MESSAGE" when line is 0.
  std::string to_string() const;
};

struct LoadResult {
  std::optional<Config> config;         // set exactly when `errors` is empty
  std::vector<ConfigError> errors;      // the main file's in file order, then each drop-in's
  std::vector<ConfigError> warnings{};  // in file order; messages start with "warning: "
};

// How the loader opens the files a configuration names (client_secret_file, ca_file, include:). Injected
// so a fuzzer never opens what its input names: a FIFO or /dev/stdin would block the load forever.
struct FileAccess {
  // The whole file, at most max_bytes; nullopt with the reason in *error.
  std::function<std::optional<std::string>(const std::filesystem::path&, std::size_t max_bytes, std::string* error)>
      read_text;
  // nullopt when the path is a regular file this process can open for reading, else the reason.
  std::function<std::optional<std::string>(const std::filesystem::path&)> check_readable;
  // The paths a glob(7) pattern matches, in any order (none is no error); nullopt with the reason in
  // *error when a directory on the way cannot be read.
  std::function<std::optional<std::vector<std::filesystem::path>>(const std::string& pattern, std::string* error)>
      glob;
};

// The real file system.
FileAccess system_files();

struct LoadOptions {
  // Resolves ${NAME} in string values.
  EnvLookup env = process_environment();
  // Time zone names must name a file below this directory; not checked if it does not exist.
  std::filesystem::path zoneinfo_dir = "/usr/share/zoneinfo";
  FileAccess files = system_files();
};

// Reads `file` and validates it, with the drop-in files its include: names (config_include.cpp has the
// rules). Relative paths resolve against the directory of the file that holds them. Reads the account
// secrets (client_secret_file) and checks ca_file is readable; touches nothing else.
LoadResult load_config_file(const std::filesystem::path& file, const LoadOptions& options = {});

// As load_config_file for YAML text already in memory; errors name `file_name_for_errors`, and
// relative paths resolve against its parent directory (made absolute against the working directory).
LoadResult load_config_string(std::string_view yaml, const std::filesystem::path& file_name_for_errors,
                              const LoadOptions& options = {});

}  // namespace apsis::config
