// libFuzzer target: the YAML configuration loader (config/config_loader.hpp).
//
// The loader must never crash, hang or leak on any text, and must keep its own promises: a Config
// exactly when there are no errors, every error at a real position and in file order, and a returned
// Config whose schedules and output templates are valid.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "config/config_loader.hpp"
#include "config/output_template.hpp"
#include "schedule/schedule.hpp"

namespace {

using namespace apsis::config;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

// Fixed variables, so a run is reproducible and never depends on the shell that started it.
EnvLookup fixed_environment() {
  static const std::map<std::string, std::string> values{
      {"APSIS_CLIENT_ID", "client-123"},
      {"APSIS_FAKE_PORT", "18080"},
      {"CREDENTIALS_DIRECTORY", "/run/credentials/apsis-exportd.service"},
      {"ATTEMPTS", "3"},
      {"EMPTY", ""},
  };
  return [](const std::string& name) -> std::optional<std::string> {
    const auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

// Paths in the input (include: too) must not reach the real file system: /dev/stdin, /proc/self/fd/0 or any FIFO
// would block open() or read() forever, and results would depend on the machine. Instead a file's
// content is its own name, so the input still steers the secret checks (empty, control characters),
// and names starting with "missing" do not exist.
FileAccess fake_files() {
  auto missing = [](const std::filesystem::path& path) { return path.filename().string().starts_with("missing"); };
  FileAccess files;
  files.read_text = [missing](const std::filesystem::path& path, std::size_t max_bytes,
                              std::string* error) -> std::optional<std::string> {
    std::string content = path.filename().string();
    const char* problem = missing(path) ? "No such file or directory"
                          : content.size() > max_bytes ? "larger than the limit"
                                                       : nullptr;
    if (!problem) return content;
    if (error) *error = problem;
    return std::nullopt;
  };
  files.check_readable = [missing](const std::filesystem::path& path) -> std::optional<std::string> {
    if (missing(path)) return "No such file or directory";
    return std::nullopt;
  };
  // Patterns with wildcards match nothing; a literal include: is read as any other file above.
  files.glob = [](const std::string&, std::string*) -> std::optional<std::vector<std::filesystem::path>> {
    return std::vector<std::filesystem::path>{};
  };
  return files;
}

const LoadOptions& fuzz_options() {
  static const LoadOptions options{fixed_environment(), "/usr/share/zoneinfo", fake_files()};
  return options;
}

void check_errors(const LoadResult& result) {
  require(result.config.has_value() == result.errors.empty());
  for (std::size_t i = 0; i < result.errors.size(); ++i) {
    const auto& error = result.errors[i];
    require(error.line >= 1 && error.column >= 1 && !error.message.empty());
    if (i > 0 && result.errors[i - 1].file == error.file) {  // each file's errors in its own order
      const auto& previous = result.errors[i - 1];
      require(previous.line < error.line || (previous.line == error.line && previous.column <= error.column));
    }
  }
}

// What the daemon relies on without checking again.
void check_config(const Config& config) {
  require(!config.accounts.empty());
  require(config.state_db.is_absolute() && config.output_dir.is_absolute());
  for (const auto& [name, definition] : config.exports) {
    require(name == definition.name && config.accounts.contains(definition.account));
    require(!check_output_template(definition.output_template).has_value());
    if (definition.schedule)
      require(apsis::schedule::Schedule::parse(*definition.schedule, definition.timezone).has_value());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const auto result = load_config_string(yaml, "/fuzz/apsis.yaml", fuzz_options());
  check_errors(result);
  if (result.config) check_config(*result.config);
  return 0;
}
