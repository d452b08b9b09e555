#include <cstdio>

#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "cli/hand_off.hpp"
#include "service/daemon.hpp"
#include "store/open_store.hpp"
#include "store/job_store.hpp"
#include "store/ownership.hpp"

namespace apsis::cli {
namespace {

constexpr OptionHelp kConfigOption[] = {{"--config FILE", "the configuration file (see apsis-exportd.yaml(5))"}};
constexpr OptionHelp kRunOptions[] = {
    {"--config FILE", "the configuration file (see apsis-exportd.yaml(5))"},
    {"--log-format text|json", "json lines on stderr; text (default): lines, or journal entries under systemd"}};

}  // namespace

const CommandHelp kRunHelp{
    .name = "run",
    .synopsis = "--config FILE [--log-format text|json]",
    .summary = "the service: run every export on its schedule until SIGTERM",
    .details = "Resumes every unfinished job of the state database, then starts jobs on their schedules.\n"
               "SIGHUP re-reads the configuration (a broken file is logged and the running one kept);\n"
               "SIGTERM or SIGINT stop it within a second and leave every job row resumable (exit 0).\n"
               "Under systemd it reports READY=1, STATUS= and WATCHDOG=1 (Type=notify).",
    .options = kRunOptions};

const CommandHelp kTriggerHelp{
    .name = "trigger",
    .synopsis = "--config FILE EXPORT",
    .summary = "queue a job of EXPORT; the running service starts it within a second",
    .details = "Writes a pending row into the job table and prints its id; a stopped service starts it\n"
               "at its next start. Needs no socket, only the permissions of `jobs`.",
    .options = kConfigOption};

int run_command(const std::vector<std::string>& args, const LogEnvironment& log_environment) {
  const auto arguments = parse_arguments(args, {"config", "log-format"}, {});
  const auto log_format = requested_log_format(arguments);
  if (!arguments.positional.empty()) throw UsageError("run takes no positional arguments");
  const auto path = arguments.required("config");
  auto config = load_config_or_report(path);
  if (!config) return kExitBadConfig;
  const auto logger = make_logger(log_format, log_environment);
  const Logger& log = *logger;
  // Before the daemon opens anything: a second service on one SQLite file would run every row twice.
  // On PostgreSQL several services share the table, each running the accounts it leases.
  std::optional<store::ServiceOwnership> ownership;
  try {
    if (!config->state_db_url) ownership.emplace(store::acquire_service_ownership(config->state_db, Clock::now()));
  } catch (const store::ServiceRunning& e) {
    log.log(Level::error, std::string("not starting: ") + e.what());
    return kExitServiceRunning;
  }
  service::Daemon daemon(path, std::move(*config), log);
  return daemon.run();
}

// Adds a pending row; the running service picks it up within a second (and a stopped one at its
// next start). Going through the database needs no socket and works with the same permissions as `jobs`.
int trigger_command(const std::vector<std::string>& args) {
  const auto arguments = parse_arguments(args, {"config"}, {});
  if (arguments.positional.size() != 1) throw UsageError("trigger needs exactly one EXPORT name");
  const auto config = load_config_or_report(arguments.required("config"));
  if (!config) return kExitBadConfig;
  const auto found = config->exports.find(arguments.positional[0]);
  if (found == config->exports.end()) {
    std::fprintf(stderr, "apsis-exportd trigger: no export named '%s'\n", arguments.positional[0].c_str());
    return kExitBadConfig;
  }
  auto store = store::open_job_store({config->state_db, config->state_db_url});
  const auto job = queue_for_service(*store, found->second, Clock::now());
  std::printf("job %lld queued for export %s\n", static_cast<long long>(job.id), found->first.c_str());
  return kExitOk;
}

}  // namespace apsis::cli
