// apsis-exportd: runs APSIS One profile exports and delivers the files to disk.
#include <array>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "cli/help.hpp"

namespace {

using namespace apsis::cli;

struct Command {
  const CommandHelp* help;
  int (*run)(const std::vector<std::string>&);
};

// In the order `--help` lists them.
const std::array<Command, 6> kCommands{{{&kRunHelp, run_command},
                                        {&kCheckHelp, check_command},
                                        {&kOnceHelp, once_command},
                                        {&kTriggerHelp, trigger_command},
                                        {&kJobsHelp, jobs_command},
                                        {&kStatusHelp, status_command}}};

void print_program_help(std::FILE* out) {
  std::array<const CommandHelp*, kCommands.size()> helps{};
  for (std::size_t i = 0; i < kCommands.size(); ++i) helps[i] = kCommands[i].help;
  apsis::cli::print_program_help(out, helps);
}

int usage_error(const std::string& where, const std::string& message, const std::string& command) {
  std::fprintf(stderr, "%s: %s\n%s\n", where.c_str(), message.c_str(), try_help_line(command).c_str());
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("apsis-exportd", "missing command", "");
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "--help" || command == "-h" || command == "help") {
    print_program_help(stdout);
    return kExitOk;
  }
  if (command == "--version" || command == "-V") {
    print_version(stdout);
    return kExitOk;
  }
  const Command* found = nullptr;
  for (const auto& c : kCommands)
    if (c.help->name == command) found = &c;
  if (!found) {
    if (command.starts_with("-")) return usage_error("apsis-exportd", "unknown option '" + command + "'", "");
    return usage_error("apsis-exportd", "unknown command '" + command + "'", "");
  }
  if (asks_for_help(args)) {
    print_command_help(stdout, *found->help);
    return kExitOk;
  }
  if (asks_for_version(args)) {
    print_version(stdout);
    return kExitOk;
  }
  const std::string where = "apsis-exportd " + command;
  try {
    return found->run(args);
  } catch (const UsageError& e) {
    return usage_error(where, e.what(), command);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", where.c_str(), e.what());
    return kExitJobFailed;
  }
}
