// Internal to the config loader: collecting errors, and reading YAML mappings into typed values.
// Every reader reports its own problems to the ErrorSink and returns nullopt; callers just skip.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_loader.hpp"
#include "config/yaml_json.hpp"

namespace apsis::config::detail {

// Collects errors for one file; positions come from yaml-cpp (0-based) and leave 1-based.
class ErrorSink {
 public:
  explicit ErrorSink(std::string file) : file_(std::move(file)) {}

  void add(const YAML::Mark& mark, std::string message);
  void add_whole_file(std::string message);  // line 0, column 0
  // A problem that does not stop the load: reported as "FILE:LINE:COL: warning: MESSAGE".
  void warn(const YAML::Mark& mark, std::string message);
  bool empty() const { return errors_.empty(); }
  const std::string& file() const { return file_; }
  std::vector<ConfigError> take();           // in file order
  std::vector<ConfigError> take_warnings();  // in file order

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
  std::vector<ConfigError> warnings_;
};

// "line 3, column 5" for messages that point at a second place.
std::string describe(const YAML::Mark& mark);

// " (did you mean 'x'?)" when one candidate is a close spelling of `word`, else "".
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);

// "a, b or c"
std::string join_or(std::span<const std::string_view> words);

inline constexpr std::size_t kMaxFileJsonValues = 1'000'000;

struct LoadContext {
  ErrorSink& errors;
  const LoadOptions& options;
  std::filesystem::path base_dir;  // relative paths in the file resolve against it
  // Each request body may hold kMaxJsonValues; all of them together this many, so aliases of whole
  // exports cannot multiply a small file into billions of values either.
  std::size_t json_values_left{kMaxFileJsonValues};
  bool json_values_exhausted{false};  // reported once
};

// One entry of a mapping. `path` names it in messages: "accounts.main.base_url".
struct Field {
  std::string path;
  YAML::Node key;
  YAML::Node value;

  // The value's position, or the key's when the value is empty (yaml-cpp then marks the next token).
  YAML::Mark mark() const;
};

// A key a mapping used to take: refused with `reason` (what replaced it) instead of "unknown key".
struct RetiredKey {
  std::string_view key;
  std::string_view reason;
};

// A YAML mapping read key by key. Construction reports a value that is not a mapping (an empty value
// counts as an empty mapping), keys that are not strings, duplicate keys, and, for a mapping with
// fixed keys, unknown and retired keys.
class Mapping {
 public:
  // The top level of the document.
  Mapping(LoadContext& ctx, const YAML::Node& root, std::span<const std::string_view> keys);
  // A mapping with fixed keys, the value of `field`; a retired key is reported at its position as
  // "PATH.KEY: no longer supported: REASON".
  Mapping(LoadContext& ctx, const Field& field, std::span<const std::string_view> keys,
          std::span<const RetiredKey> retired = {});
  // A mapping from names the user chooses (accounts, exports); `what` names a key: "export name".
  static Mapping of_names(LoadContext& ctx, const Field& field, std::string_view what);

  std::optional<Field> get(std::string_view key) const;
  // As get(), reporting "missing required key" when absent from a mapping (not when the value was no
  // mapping at all: that is one error already).
  std::optional<Field> require(std::string_view key, std::string_view expected) const;
  const std::vector<Field>& fields() const { return fields_; }
  const std::string& path() const { return path_; }
  const YAML::Mark& mark() const { return mark_; }  // the owning key: where to report a missing key
  bool is_mapping() const { return is_mapping_; }   // false when a non-mapping value was reported

 private:
  // `value_mark` is reported when the node is not a mapping, `owner_mark` (its key) for missing keys.
  Mapping(LoadContext& ctx, const YAML::Node& node, const YAML::Mark& value_mark, const YAML::Mark& owner_mark,
          std::string path, std::span<const std::string_view> keys, std::string_view what, bool fixed_keys,
          std::span<const RetiredKey> retired = {});
  std::string where() const;  // "in accounts.main" or "at the top level"

  LoadContext& ctx_;
  std::string path_;
  YAML::Mark mark_;
  bool is_mapping_{true};
  std::vector<Field> fields_;
};

// Readers. Strings go through ${VAR} expansion. None of them quotes the value of a string it rejects
// for being empty or of the wrong type, so they are safe for secrets.
std::optional<std::string> read_string(LoadContext& ctx, const Field& field);
std::optional<std::string> read_nonempty_string(LoadContext& ctx, const Field& field);
// A non-empty path; relative paths are resolved against ctx.base_dir.
std::optional<std::filesystem::path> read_path(LoadContext& ctx, const Field& field);
// An absolute URL path: starts with '/', no spaces or control characters.
std::optional<std::string> read_url_path(LoadContext& ctx, const Field& field);
// A duration > 0.
std::optional<Duration> read_duration(LoadContext& ctx, const Field& field);
// COUNT/DURATION, e.g. 30/1m: COUNT a whole number >= 1, DURATION > 0 as read_duration reads it.
std::optional<RateBudget> read_rate_budget(LoadContext& ctx, const Field& field);
// A finite number >= minimum.
std::optional<double> read_number(LoadContext& ctx, const Field& field, double minimum);
// A whole number in [minimum, INT_MAX].
std::optional<int> read_int(LoadContext& ctx, const Field& field, int minimum);
// true or false.
std::optional<bool> read_bool(LoadContext& ctx, const Field& field);
// The index of the value in `choices`.
std::optional<std::size_t> read_choice(LoadContext& ctx, const Field& field, std::span<const std::string_view> choices);

template <typename Enum>
std::optional<Enum> read_enum(LoadContext& ctx, const Field& field,
                              std::initializer_list<std::pair<std::string_view, Enum>> choices) {
  std::vector<std::string_view> names;
  for (const auto& choice : choices) names.push_back(choice.first);
  const auto index = read_choice(ctx, field, names);
  if (!index) return std::nullopt;
  return std::data(choices)[*index].second;
}

// Opens `path` for reading without blocking on a FIFO or device, and only if it is a regular file;
// else -1 with the reason in *error ("No such file or directory", "not a regular file but a FIFO ...").
int open_regular_file(const std::filesystem::path& path, std::string* error);

// The whole file, at most max_bytes; a regular file only. nullopt with the reason in *error.
std::optional<std::string> read_text_file(const std::filesystem::path& path, std::size_t max_bytes, std::string* error);

// nullopt when `path` is a regular file this process can open for reading, else the OS reason.
std::optional<std::string> check_readable_file(const std::filesystem::path& path);

// Account and export names: [A-Za-z0-9][A-Za-z0-9._-]*
bool is_valid_name(std::string_view name);

}  // namespace apsis::config::detail
