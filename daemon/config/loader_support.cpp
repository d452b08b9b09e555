#include "config/loader_support.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <map>
#include <system_error>

#include "util/duration.hpp"
#include "config/spelling.hpp"

namespace apsis::config::detail {
namespace {

std::string type_name(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a single value";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

void type_error(LoadContext& ctx, const Field& field, std::string_view expected) {
  ctx.errors.add(field.mark(), field.path + ": expected " + std::string(expected) + ", got " + type_name(field.value));
}

// The scalar's text after ${VAR} expansion; reports a non-scalar or a failed expansion.
std::optional<std::string> scalar_text(LoadContext& ctx, const Field& field, std::string_view expected) {
  if (!field.value.IsScalar()) {
    type_error(ctx, field, expected);
    return std::nullopt;
  }
  std::string error;
  auto text = expand_env(field.value.Scalar(), ctx.options.env, &error);
  if (!text) ctx.errors.add(field.mark(), field.path + ": " + error);
  return text;
}

// Numbers must be plain YAML numbers, or come from an environment variable.
std::optional<std::string> number_text(LoadContext& ctx, const Field& field, std::string_view expected) {
  if (field.value.IsScalar() && field.value.Tag() != "?" && field.value.Scalar().find("${") == std::string::npos) {
    ctx.errors.add(field.mark(), field.path + ": expected " + std::string(expected) + ", got a quoted string");
    return std::nullopt;
  }
  return scalar_text(ctx, field, expected);
}

std::string format_number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

}  // namespace

void ErrorSink::add(const YAML::Mark& mark, std::string message) {
  // yaml-cpp has no position for an empty document: point at its start.
  const int line = mark.line < 0 ? 1 : mark.line + 1;
  const int column = mark.column < 0 ? 1 : mark.column + 1;
  errors_.push_back({file_, line, column, std::move(message)});
}

void ErrorSink::add_whole_file(std::string message) { errors_.push_back({file_, 0, 0, std::move(message)}); }

void ErrorSink::warn(const YAML::Mark& mark, std::string message) {
  warnings_.push_back({file_, mark.line < 0 ? 1 : mark.line + 1, mark.column < 0 ? 1 : mark.column + 1,
                       "warning: " + std::move(message)});
}

namespace {

std::vector<ConfigError> in_file_order(std::vector<ConfigError>& list) {
  std::ranges::stable_sort(list, [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  return std::move(list);
}

}  // namespace

std::vector<ConfigError> ErrorSink::take() { return in_file_order(errors_); }

std::vector<ConfigError> ErrorSink::take_warnings() { return in_file_order(warnings_); }

std::string describe(const YAML::Mark& mark) {
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
  const auto best = closest_spelling(word, candidates, std::max<std::size_t>(1, word.size() / 3));
  return best ? " (did you mean '" + std::string(*best) + "'?)" : std::string();
}

std::string join_or(std::span<const std::string_view> words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += words[i];
  }
  return out;
}

YAML::Mark Field::mark() const { return value.IsNull() || !value.IsDefined() ? key.Mark() : value.Mark(); }

Mapping::Mapping(LoadContext& ctx, const YAML::Node& root, std::span<const std::string_view> keys)
    : Mapping(ctx, root, root.Mark(), root.Mark(), "", keys, "key", true) {}

Mapping::Mapping(LoadContext& ctx, const Field& field, std::span<const std::string_view> keys,
                 std::span<const RetiredKey> retired)
    : Mapping(ctx, field.value, field.mark(), field.key.Mark(), field.path, keys, "key", true, retired) {}

Mapping Mapping::of_names(LoadContext& ctx, const Field& field, std::string_view what) {
  return Mapping(ctx, field.value, field.mark(), field.key.Mark(), field.path, {}, what, false);
}

Mapping::Mapping(LoadContext& ctx, const YAML::Node& node, const YAML::Mark& value_mark, const YAML::Mark& owner_mark,
                 std::string path, std::span<const std::string_view> keys, std::string_view what, bool fixed_keys,
                 std::span<const RetiredKey> retired)
    : ctx_(ctx), path_(std::move(path)), mark_(owner_mark) {
  if (node.IsNull() || !node.IsDefined()) return;
  if (!node.IsMap()) {
    is_mapping_ = false;
    if (path_.empty()) {
      ctx.errors.add(
          value_mark,
          "expected a mapping at the top level (with state_db, output_dir, accounts, ...), got " + type_name(node));
    } else {
      ctx.errors.add(value_mark, path_ + ": expected a mapping, got " + type_name(node));
    }
    return;
  }
  std::map<std::string, YAML::Mark, std::less<>> seen;
  for (const auto& entry : node) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) {
      ctx.errors.add(key.Mark(),
                     "expected a string as " + std::string(what) + " " + where() + ", got " + type_name(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (const auto [first, inserted] = seen.emplace(name, key.Mark()); !inserted) {
      ctx.errors.add(key.Mark(), "duplicate " + std::string(what) + " '" + name + "' " + where() +
                                     " (first defined at " + describe(first->second) + ")");
      continue;
    }
    const std::string full_path = path_.empty() ? name : path_ + "." + name;
    if (const auto old = std::ranges::find(retired, name, &RetiredKey::key); fixed_keys && old != retired.end()) {
      ctx.errors.add(key.Mark(), full_path + ": no longer supported: " + std::string(old->reason));
      continue;
    }
    if (fixed_keys && std::ranges::find(keys, name) == keys.end()) {
      ctx.errors.add(key.Mark(), "unknown key '" + name + "' " + where() + " (expected one of: " + join_or(keys) + ")" +
                                     did_you_mean(name, keys));
      continue;
    }
    fields_.push_back({full_path, key, entry.second});
  }
}

std::string Mapping::where() const { return path_.empty() ? "at the top level" : "in " + path_; }

std::optional<Field> Mapping::get(std::string_view key) const {
  for (const auto& field : fields_)
    if (field.key.Scalar() == key) return field;
  return std::nullopt;
}

std::optional<Field> Mapping::require(std::string_view key, std::string_view expected) const {
  auto field = get(key);
  if (!field && is_mapping_)
    ctx_.errors.add(
        mark_, "missing required key '" + std::string(key) + "' " + where() + ": expected " + std::string(expected));
  return field;
}

std::optional<std::string> read_string(LoadContext& ctx, const Field& field) {
  return scalar_text(ctx, field, "a string");
}

std::optional<std::string> read_nonempty_string(LoadContext& ctx, const Field& field) {
  auto text = read_string(ctx, field);
  if (text && text->empty()) {
    ctx.errors.add(field.mark(), field.path + ": must not be empty");
    return std::nullopt;
  }
  return text;
}

std::optional<std::filesystem::path> read_path(LoadContext& ctx, const Field& field) {
  auto text = scalar_text(ctx, field, "a path");
  if (!text) return std::nullopt;
  if (text->empty() || text->find('\0') != std::string::npos) {
    ctx.errors.add(field.mark(), field.path + (text->empty() ? ": must not be empty" : ": contains a NUL character") +
                                     " (expected a path)");
    return std::nullopt;
  }
  std::filesystem::path path(*text);
  if (path.is_relative()) path = ctx.base_dir / path;
  return path.lexically_normal();
}

std::optional<std::string> read_url_path(LoadContext& ctx, const Field& field) {
  auto text = read_string(ctx, field);
  if (!text) return std::nullopt;
  const bool clean = std::ranges::none_of(*text, [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
  if (!text->starts_with('/') || !clean) {
    ctx.errors.add(field.mark(),
                   field.path + ": expected a URL path starting with '/' without spaces, got '" + *text + "'");
    return std::nullopt;
  }
  return text;
}

std::optional<Duration> read_duration(LoadContext& ctx, const Field& field) {
  auto text = scalar_text(ctx, field, "a duration (e.g. 10s, 5m, 1h30m)");
  if (!text) return std::nullopt;
  std::string error;
  const auto duration = parse_duration(*text, &error);
  if (!duration) {
    ctx.errors.add(field.mark(), field.path + ": " + error);
    return std::nullopt;
  }
  if (duration->count() == 0) {
    ctx.errors.add(field.mark(), field.path + ": must be greater than 0 (e.g. 10s)");
    return std::nullopt;
  }
  return duration;
}

std::optional<RateBudget> read_rate_budget(LoadContext& ctx, const Field& field) {
  constexpr std::string_view kExpected = "COUNT/DURATION such as 30/1m";
  auto text = scalar_text(ctx, field, kExpected);
  if (!text) return std::nullopt;
  const auto slash = text->find('/');
  const std::string_view count_text = std::string_view(*text).substr(0, slash);
  const bool digits =
      !count_text.empty() && std::ranges::all_of(count_text, [](char c) { return c >= '0' && c <= '9'; });
  if (slash == std::string::npos || !digits) {
    ctx.errors.add(field.mark(), field.path + ": expected " + std::string(kExpected) + ", got '" + *text + "'");
    return std::nullopt;
  }
  long long count = 0;
  const auto [end, ec] = std::from_chars(count_text.data(), count_text.data() + count_text.size(), count);
  if (ec != std::errc{} || end != count_text.data() + count_text.size() || count < 1 || count > INT_MAX) {
    ctx.errors.add(field.mark(), field.path + ": the count must be between 1 and " + std::to_string(INT_MAX) +
                                     ", got '" + *text + "'");
    return std::nullopt;
  }
  std::string error;
  const auto window = parse_duration(std::string_view(*text).substr(slash + 1), &error);
  if (!window) {
    ctx.errors.add(field.mark(), field.path + ": " + error + " (expected " + std::string(kExpected) + ")");
    return std::nullopt;
  }
  if (window->count() == 0) {
    ctx.errors.add(field.mark(), field.path + ": the duration must be greater than 0, got '" + *text + "'");
    return std::nullopt;
  }
  return RateBudget{static_cast<int>(count), *window};
}

std::optional<double> read_number(LoadContext& ctx, const Field& field, double minimum) {
  auto text = number_text(ctx, field, "a number");
  if (!text) return std::nullopt;
  double value = 0;
  const char* first = text->data() + (text->starts_with('+') ? 1 : 0);
  const char* last = text->data() + text->size();
  const auto [end, ec] = std::from_chars(first, last, value);
  if (ec != std::errc{} || end != last || !std::isfinite(value)) {
    ctx.errors.add(field.mark(), field.path + ": expected a number, got '" + *text + "'");
    return std::nullopt;
  }
  if (value < minimum) {
    ctx.errors.add(field.mark(), field.path + ": must be at least " + format_number(minimum) + ", got " + *text);
    return std::nullopt;
  }
  return value;
}

std::optional<int> read_int(LoadContext& ctx, const Field& field, int minimum) {
  auto text = number_text(ctx, field, "a whole number");
  if (!text) return std::nullopt;
  long long value = 0;
  const char* first = text->data() + (text->starts_with('+') ? 1 : 0);
  const char* last = text->data() + text->size();
  const auto [end, ec] = std::from_chars(first, last, value);
  if (ec != std::errc{} || end != last) {
    ctx.errors.add(field.mark(), field.path + ": expected a whole number, got '" + *text + "'");
    return std::nullopt;
  }
  if (value < minimum || value > INT_MAX) {
    ctx.errors.add(field.mark(), field.path + ": must be between " + std::to_string(minimum) + " and " +
                                     std::to_string(INT_MAX) + ", got " + *text);
    return std::nullopt;
  }
  return static_cast<int>(value);
}

std::optional<bool> read_bool(LoadContext& ctx, const Field& field) {
  constexpr std::array<std::string_view, 2> kBooleans{"true", "false"};
  const auto index = read_choice(ctx, field, kBooleans);
  if (!index) return std::nullopt;
  return *index == 0;
}

std::optional<std::size_t> read_choice(LoadContext& ctx, const Field& field,
                                       std::span<const std::string_view> choices) {
  auto text = scalar_text(ctx, field, "one of " + join_or(choices));
  if (!text) return std::nullopt;
  const auto it = std::ranges::find(choices, *text);
  if (it == choices.end()) {
    ctx.errors.add(field.mark(), field.path + ": unknown value '" + *text + "' (expected " + join_or(choices) + ")" +
                                     did_you_mean(*text, choices));
    return std::nullopt;
  }
  return static_cast<std::size_t>(it - choices.begin());
}

namespace {

std::string_view file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory (Is a directory)";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a file";
}

}  // namespace

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever. Anything but a
// regular file is refused before a byte is read, so read() cannot block either.
int open_regular_file(const std::filesystem::path& path, std::string* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (error) *error = std::generic_category().message(errno);
    return -1;
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    if (error) *error = "not a regular file but " + std::string(file_type_name(info.st_mode));
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

std::optional<std::string> read_text_file(const std::filesystem::path& path, std::size_t max_bytes,
                                          std::string* error) {
  auto fail = [error](std::string message) -> std::optional<std::string> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  const int fd = open_regular_file(path, error);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      return fail(std::generic_category().message(saved));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > max_bytes) {
      ::close(fd);
      return fail("larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  return text;
}

std::optional<std::string> check_readable_file(const std::filesystem::path& path) {
  std::string reason;
  const int fd = open_regular_file(path, &reason);
  if (fd < 0) return reason;
  ::close(fd);
  return std::nullopt;
}

bool is_valid_name(std::string_view name) {
  auto alnum = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (name.empty() || !alnum(name.front())) return false;
  return std::ranges::all_of(name, [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

}  // namespace apsis::config::detail
