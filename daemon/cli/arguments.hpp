// A small command-line reader: `apsis-exportd COMMAND [--flag value]... [POSITIONAL]...`.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace apsis::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Arguments {
  std::map<std::string, std::string> options;  // --name value
  std::set<std::string> flags;                 // --name (no value)
  std::vector<std::string> positional;

  std::optional<std::string> option(const std::string& name) const;
  std::string required(const std::string& name) const;
  bool flag(const std::string& name) const { return flags.contains(name); }
};

// `valued` names the options that take a value; `switches` those that do not. Anything else is a UsageError.
Arguments parse_arguments(const std::vector<std::string>& args, const std::set<std::string>& valued,
                          const std::set<std::string>& switches);

}  // namespace apsis::cli
