// apsis-exportd: runs APSIS One profile exports and delivers the files to disk.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "cli/commands.hpp"

namespace {

constexpr const char* kUsage = R"(usage: apsis-exportd COMMAND [options]

commands:
  run   --config FILE [--log-format text|json]
                                            the service: run every export on its schedule until SIGTERM
  check --config FILE                       validate the configuration; exit 0, or print every error and exit 2
  once  --config FILE EXPORT [--log-format text|json]
                                            run one job of EXPORT now, in the foreground, and print the file's path
  trigger --config FILE EXPORT              make the running service start a job of EXPORT now
  jobs  --config FILE [--export NAME] [--state STATE] [--limit N] [--json]
                                            show the job table
  status --config FILE [--json]             every export: schedule, next run, last result, jobs in flight
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace apsis::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? kExitUsage : kExitOk;
  }
  const std::string command = args[0];
  const auto log_environment = LogEnvironment::from_process();
  args.erase(args.begin());
  try {
    if (command == "check") return check_command(args);
    if (command == "once") return once_command(args, log_environment);
    if (command == "jobs") return jobs_command(args);
    if (command == "run") return run_command(args, log_environment);
    if (command == "trigger") return trigger_command(args);
    if (command == "status") return status_command(args);
    std::fprintf(stderr, "apsis-exportd: unknown command '%s'\n%s", command.c_str(), kUsage);
    return kExitUsage;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "apsis-exportd %s: %s\n%s", command.c_str(), e.what(), kUsage);
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "apsis-exportd %s: %s\n", command.c_str(), e.what());
    return kExitJobFailed;
  }
}
