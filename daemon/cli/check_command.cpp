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

namespace {

constexpr OptionHelp kCheckOptions[] = {
    {"--config FILE", "the configuration file to check (see apsis-exportd.yaml(5))"},
    {"--list-exports", "print only the export names, one per line (for shell completion)"}};

}  // namespace

const CommandHelp kCheckHelp{
    .name = "check",
    .synopsis = "--config FILE [--list-exports]",
    .summary = "validate the configuration; print every error as file:line:col and exit 2",
    .details = "Reads the file as `run` would (accounts' secrets and CA files included, and the drop-in files\n"
               "its include: names) without any network request, prints every warning and error of every file\n"
               "at once and exits 0 when there is no error.",
    .options = kCheckOptions};

int check_command(const std::vector<std::string>& args) {
  const auto arguments = parse_arguments(args, {"config"}, {"list-exports"});
  if (!arguments.positional.empty()) throw UsageError("check takes no positional arguments");
  const auto path = arguments.required("config");
  const auto config = load_config_or_report(path);
  if (!config) return kExitBadConfig;
  if (arguments.flag("list-exports")) {
    for (const auto& [name, definition] : config->exports) std::printf("%s\n", name.c_str());
    return kExitOk;
  }
  std::printf("%s: OK (%zu account%s, %zu export%s", path.c_str(), config->accounts.size(),
              config->accounts.size() == 1 ? "" : "s", config->exports.size(), config->exports.size() == 1 ? "" : "s");
  if (!config->drop_ins.empty())
    std::printf("; %zu drop-in%s", config->drop_ins.size(), config->drop_ins.size() == 1 ? "" : "s");
  std::printf(")\n");
  for (const auto& drop_in : config->drop_ins) std::printf("  included %s\n", drop_in.c_str());
  return kExitOk;
}

}  // namespace apsis::cli
