// The apsis-exportd commands. Each returns the process exit code.
#pragma once

#include <string>
#include <vector>

#include "cli/help.hpp"
#include "cli/log_setup.hpp"
#include "util/time.hpp"

namespace apsis::cli {

// Exit codes shared by the commands, documented in README.md.
inline constexpr int kExitOk = 0;
inline constexpr int kExitJobFailed = 1;
inline constexpr int kExitBadConfig = 2;
inline constexpr int kExitJobExpired = 3;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitServiceRunning = 75;  // `run`: another service owns the state database
// `once` on PostgreSQL: no running instance holds the export's account, so nothing would run the job.
inline constexpr int kExitServiceNotRunning = 69;  // EX_UNAVAILABLE
inline constexpr int kExitInterrupted = 130;

// Each command's --help text, beside its code.
extern const CommandHelp kCheckHelp;
extern const CommandHelp kOnceHelp;
extern const CommandHelp kJobsHelp;
extern const CommandHelp kRunHelp;
extern const CommandHelp kTriggerHelp;
extern const CommandHelp kStatusHelp;
extern const CommandHelp kNextHelp;

int check_command(const std::vector<std::string>& args);
int once_command(const std::vector<std::string>& args, const LogEnvironment& log_environment);
int jobs_command(const std::vector<std::string>& args);
int run_command(const std::vector<std::string>& args, const LogEnvironment& log_environment);
int trigger_command(const std::vector<std::string>& args);
int status_command(const std::vector<std::string>& args);
// `now` is where the slots start unless --from says otherwise.
int next_command(const std::vector<std::string>& args, const NowFunction& now);

}  // namespace apsis::cli

#include <optional>

#include "config/config.hpp"

namespace apsis::cli {

// Loads and validates the file; on errors prints each as "file:line:col: message" and returns nullopt.
// `read_private_files` false: secret, certificate and key files are named but not opened (commands
// that only show the configuration work for an operator outside the service's group).
std::optional<config::Config> load_config_or_report(const std::string& path, bool read_private_files = true);

}  // namespace apsis::cli
