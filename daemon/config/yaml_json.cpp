#include "config/yaml_json.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>

namespace apsis::config {
namespace {

std::string core_tag(std::string_view type) { return "tag:yaml.org,2002:" + std::string(type); }

// Deeper than any request body, and shallow enough for the stack: an alias used inside the node it
// names ("&a [*a]") makes an endless nesting.
constexpr int kMaxDepth = 100;

struct Converter {
  const EnvLookup& env;
  std::vector<YamlJsonError>& errors;
  std::size_t& values_left;
  bool truncated = false;  // a value was left out for want of values_left
  bool too_deep = false;   // a value was left out for being nested deeper than kMaxDepth
  int depth = 0;

  void fail(const YAML::Node& node, std::string_view path, std::string message) {
    errors.push_back({node.Mark(), std::string(path) + ": " + std::move(message)});
  }

  boost::json::value convert(const YAML::Node& node, const std::string& path);
  boost::json::value mapping(const YAML::Node& node, const std::string& path);
  boost::json::value sequence(const YAML::Node& node, const std::string& path);
  boost::json::value scalar(const YAML::Node& node, const std::string& path);
  // Untagged: typed by the core schema.
  boost::json::value plain(const YAML::Node& node, const std::string& path);
  // Explicit !!bool, !!int or !!float: the text must have that form.
  boost::json::value tagged(const YAML::Node& node, const std::string& path, std::string_view type);
  boost::json::value string(const YAML::Node& node, const std::string& path);
};

std::optional<bool> core_bool(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool all_of(std::string_view s, bool (*pred)(char)) { return !s.empty() && std::ranges::all_of(s, pred); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_octal(char c) { return c >= '0' && c <= '7'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Leading digits of `s`, removed from it.
std::size_t take_digits(std::string_view& s) {
  std::size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  s.remove_prefix(n);
  return n;
}

// Core schema integers: [-+]?[0-9]+, 0o[0-7]+ or 0x[0-9a-fA-F]+. nullopt when `s` is none of these;
// then `out_of_range` tells a well-formed integer that int64 cannot hold.
std::optional<std::int64_t> core_integer(std::string_view s, bool& out_of_range) {
  int base = 10;
  if (s.starts_with("0o") && all_of(s.substr(2), is_octal)) {
    base = 8;
    s.remove_prefix(2);
  } else if (s.starts_with("0x") && all_of(s.substr(2), is_hex)) {
    base = 16;
    s.remove_prefix(2);
  } else {
    if (s.starts_with('+')) s.remove_prefix(1);
    if (!all_of(s.starts_with('-') ? s.substr(1) : s, is_digit)) return std::nullopt;
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  out_of_range = ec == std::errc::result_out_of_range;
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_core_float(std::string_view s) {
  if (s.starts_with('-') || s.starts_with('+')) s.remove_prefix(1);
  const std::size_t whole = take_digits(s);
  if (s.starts_with('.')) {
    s.remove_prefix(1);
    if (take_digits(s) == 0 && whole == 0) return false;
  } else if (whole == 0) {
    return false;
  }
  if (s.starts_with('e') || s.starts_with('E')) {
    s.remove_prefix(1);
    if (s.starts_with('-') || s.starts_with('+')) s.remove_prefix(1);
    if (take_digits(s) == 0) return false;
  }
  return s.empty();
}

// Core schema floats. nullopt when `s` is none; then `not_finite` tells .inf, .nan or an overflowing
// number, which JSON cannot carry.
std::optional<double> core_float(std::string_view s, bool& not_finite) {
  const std::string_view unsigned_part = s.starts_with('-') || s.starts_with('+') ? s.substr(1) : s;
  if (unsigned_part == ".inf" || unsigned_part == ".Inf" || unsigned_part == ".INF" || s == ".nan" || s == ".NaN" ||
      s == ".NAN") {
    not_finite = true;
    return std::nullopt;
  }
  if (!is_core_float(s)) return std::nullopt;
  if (s.starts_with('+')) s.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(value)) {
    not_finite = true;
    return std::nullopt;
  }
  return value;
}

boost::json::value Converter::convert(const YAML::Node& node, const std::string& path) {
  if (values_left == 0) {
    truncated = true;  // reported once, by yaml_to_json
    return nullptr;
  }
  --values_left;
  if ((node.IsMap() || node.IsSequence()) && depth == kMaxDepth) {
    too_deep = true;  // reported once, by yaml_to_json
    return nullptr;
  }
  switch (node.Type()) {
    case YAML::NodeType::Map:
    case YAML::NodeType::Sequence: {
      ++depth;
      auto value = node.IsMap() ? mapping(node, path) : sequence(node, path);
      --depth;
      return value;
    }
    case YAML::NodeType::Scalar:
      return scalar(node, path);
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return nullptr;
}

boost::json::value Converter::mapping(const YAML::Node& node, const std::string& path) {
  boost::json::object object;
  std::map<std::string, YAML::Mark> seen;
  for (const auto& entry : node) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) {
      fail(key, path, "keys must be strings");
      continue;
    }
    const std::string& name = key.Scalar();
    const auto [first, inserted] = seen.emplace(name, key.Mark());
    if (!inserted) {
      fail(key, path,
           "duplicate key '" + name + "' (first at line " + std::to_string(first->second.line + 1) + ", column " +
               std::to_string(first->second.column + 1) + ")");
      continue;
    }
    object[name] = convert(entry.second, path + "." + name);
  }
  return object;
}

boost::json::value Converter::sequence(const YAML::Node& node, const std::string& path) {
  boost::json::array array;
  std::size_t index = 0;
  for (const auto& item : node) array.push_back(convert(item, path + "[" + std::to_string(index++) + "]"));
  return array;
}

boost::json::value Converter::string(const YAML::Node& node, const std::string& path) {
  std::string error;
  if (auto expanded = expand_env(node.Scalar(), env, &error)) return boost::json::string(*expanded);
  fail(node, path, std::move(error));
  return nullptr;
}

boost::json::value Converter::scalar(const YAML::Node& node, const std::string& path) {
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == core_tag("str")) return string(node, path);
  if (tag == "?") return plain(node, path);
  for (const char* type : {"bool", "int", "float"})
    if (tag == core_tag(type)) return tagged(node, path, type);
  fail(node, path, "unsupported tag '" + tag + "' (use plain or quoted values)");
  return nullptr;
}

boost::json::value Converter::plain(const YAML::Node& node, const std::string& path) {
  const std::string& text = node.Scalar();
  if (text.find('$') != std::string::npos) return string(node, path);
  if (const auto flag = core_bool(text)) return *flag;
  bool out_of_range = false;
  if (const auto integer = core_integer(text, out_of_range)) return *integer;
  if (out_of_range) {
    fail(node, path, "integer " + text + " does not fit in 64 bits (quote it to send a string)");
    return nullptr;
  }
  bool not_finite = false;
  if (const auto number = core_float(text, not_finite)) return *number;
  if (not_finite) {
    fail(node, path, "'" + text + "' cannot be sent as JSON (quote it to send a string)");
    return nullptr;
  }
  return string(node, path);
}

boost::json::value Converter::tagged(const YAML::Node& node, const std::string& path, std::string_view type) {
  const std::string& text = node.Scalar();
  bool out_of_range = false;
  bool not_finite = false;
  if (type == "bool") {
    if (const auto flag = core_bool(text)) return *flag;
  } else if (type == "int") {
    if (const auto integer = core_integer(text, out_of_range)) return *integer;
  } else if (const auto number = core_float(text, not_finite)) {
    return *number;
  }
  fail(node, path, "'" + text + "' is not a valid !!" + std::string(type) + " for JSON");
  return nullptr;
}

}  // namespace

boost::json::value yaml_to_json(const YAML::Node& node, std::string_view path, const EnvLookup& env,
                                std::vector<YamlJsonError>& errors, std::size_t& values_left) {
  Converter converter{env, errors, values_left};
  auto json = converter.convert(node, std::string(path));
  if (converter.too_deep)
    errors.push_back({node.Mark(), std::string(path) + ": nested more than " + std::to_string(kMaxDepth) +
                                       " levels deep (is an alias used inside the node it names?)"});
  if (converter.truncated)
    errors.push_back({node.Mark(), std::string(path) +
                                       ": too many values (an alias counts its target each time it is used): "
                                       "expected a request body of ordinary size"});
  return json;
}

boost::json::value yaml_to_json(const YAML::Node& node, std::string_view path, const EnvLookup& env,
                                std::vector<YamlJsonError>& errors) {
  std::size_t values_left = kMaxJsonValues;
  return yaml_to_json(node, path, env, errors, values_left);
}

}  // namespace apsis::config
