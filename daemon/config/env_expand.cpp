#include "config/env_expand.hpp"

#include <cstdlib>

namespace apsis::config {
namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

bool valid_name(std::string_view name) {
  if (name.empty() || !is_name_start(name.front())) return false;
  for (char c : name)
    if (!is_name_char(c)) return false;
  return true;
}

std::optional<std::string> fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return std::nullopt;
}

}  // namespace

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

std::optional<std::string> expand_env(std::string_view text, const EnvLookup& env, std::string* error) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    if (c != '$' || (next != '$' && next != '{')) {
      out += c;
      continue;
    }
    if (next == '$') {
      out += '$';
      ++i;
      continue;
    }
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos)
      return fail(error, "unterminated '${': expected ${NAME} (write $$ for a literal '$')");
    const std::string name(text.substr(i + 2, close - i - 2));
    if (!valid_name(name))
      return fail(error,
                  "invalid environment variable name in '${...}': expected letters, digits and '_', not starting with "
                  "a digit (write $$ for a literal '$')");
    const auto value = env ? env(name) : std::nullopt;
    if (!value) return fail(error, "environment variable " + name + " is not set");
    out += *value;
    i = close;
  }
  return out;
}

}  // namespace apsis::config
