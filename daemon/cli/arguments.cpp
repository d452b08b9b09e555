#include "cli/arguments.hpp"

namespace apsis::cli {

std::optional<std::string> Arguments::option(const std::string& name) const {
  const auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  return it->second;
}

std::string Arguments::required(const std::string& name) const {
  auto value = option(name);
  if (!value) throw UsageError("missing --" + name);
  return *value;
}

Arguments parse_arguments(const std::vector<std::string>& args, const std::set<std::string>& valued,
                          const std::set<std::string>& switches) {
  Arguments out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& arg = args[i];
    if (!arg.starts_with("--")) {
      out.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (switches.contains(name) && !inline_value) {
      out.flags.insert(name);
    } else if (valued.contains(name)) {
      if (inline_value) {
        out.options[name] = *inline_value;
      } else {
        if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value");
        out.options[name] = args[++i];
      }
    } else {
      throw UsageError("unknown option --" + name);
    }
  }
  return out;
}

}  // namespace apsis::cli
