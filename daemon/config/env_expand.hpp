// ${VAR} expansion of configuration strings. Pure apart from process_environment().
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace apsis::config {

// The value of an environment variable, nullopt when it is not set. Injected so tests need no setenv.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Looks names up with getenv.
EnvLookup process_environment();

// Replaces every ${NAME} (NAME matching [A-Za-z_][A-Za-z0-9_]*) with env(NAME); "$$" is a literal '$'
// and a '$' followed by anything else stays as it is. Variable values are not expanded again.
// Returns nullopt with a message in *error for an unset variable, an unterminated "${" or a bad name.
// The message never quotes `text` itself (it may be a secret), only the variable name.
std::optional<std::string> expand_env(std::string_view text, const EnvLookup& env, std::string* error = nullptr);

}  // namespace apsis::config
