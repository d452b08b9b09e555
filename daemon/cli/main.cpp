// apsis-exportd: runs APSIS One profile exports and delivers the files to disk.
#include <array>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "cli/help.hpp"

namespace {

using namespace apsis::cli;

struct Command {
  const CommandHelp* help;
  std::function<int(const std::vector<std::string>&)> run;
};

int usage_error(const std::string& where, const std::string& message, const std::string& command) {
  std::fprintf(stderr, "%s: %s\n%s\n", where.c_str(), message.c_str(), try_help_line(command).c_str());
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // In the order `--help` lists them. A command that needs more than its arguments gets a closure.
  const auto next = [](const std::vector<std::string>& args) { return next_command(args, apsis::system_now()); };
  const auto log_environment = LogEnvironment::from_process();  // read once, here
  const auto run = [&](const std::vector<std::string>& args) { return run_command(args, log_environment); };
  const auto once = [&](const std::vector<std::string>& args) { return once_command(args, log_environment); };
  const std::array<Command, 7> commands{{{&kRunHelp, run},
                                         {&kCheckHelp, check_command},
                                         {&kOnceHelp, once},
                                         {&kTriggerHelp, trigger_command},
                                         {&kJobsHelp, jobs_command},
                                         {&kStatusHelp, status_command},
                                         {&kNextHelp, next}}};
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("apsis-exportd", "missing command", "");
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "--help" || command == "-h" || command == "help") {
    std::array<const CommandHelp*, commands.size()> helps{};
    for (std::size_t i = 0; i < commands.size(); ++i) helps[i] = commands[i].help;
    print_program_help(stdout, helps);
    return kExitOk;
  }
  if (command == "--version" || command == "-V") {
    print_version(stdout);
    return kExitOk;
  }
  const Command* found = nullptr;
  for (const auto& c : commands)
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
