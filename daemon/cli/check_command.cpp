#include <algorithm>
#include <cstdio>

#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "config/config_loader.hpp"

namespace apsis::cli {

std::optional<config::Config> load_config_or_report(const std::string& path) {
  auto result = config::load_config_file(path);
  for (const auto& warning : result.warnings) std::fprintf(stderr, "%s\n", warning.to_string().c_str());
  for (const auto& error : result.errors) std::fprintf(stderr, "%s\n", error.to_string().c_str());
  const bool in_drop_ins = std::ranges::any_of(result.errors, [&](const auto& error) { return error.file != path; });
  if (!result.errors.empty())
    std::fprintf(stderr, "%zu error%s in %s%s\n", result.errors.size(), result.errors.size() == 1 ? "" : "s",
                 path.c_str(), in_drop_ins ? " and the files it includes" : "");
  return std::move(result.config);
}

int check_command(const std::vector<std::string>& args) {
  const auto arguments = parse_arguments(args, {"config"}, {});
  if (!arguments.positional.empty()) throw UsageError("check takes no positional arguments");
  const auto path = arguments.required("config");
  const auto config = load_config_or_report(path);
  if (!config) return kExitBadConfig;
  std::printf("%s: OK (%zu account%s, %zu export%s", path.c_str(), config->accounts.size(),
              config->accounts.size() == 1 ? "" : "s", config->exports.size(), config->exports.size() == 1 ? "" : "s");
  if (!config->drop_ins.empty())
    std::printf("; %zu drop-in%s", config->drop_ins.size(), config->drop_ins.size() == 1 ? "" : "s");
  std::printf(")\n");
  for (const auto& drop_in : config->drop_ins) std::printf("  included %s\n", drop_in.c_str());
  return kExitOk;
}

}  // namespace apsis::cli
