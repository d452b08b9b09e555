#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <unistd.h>

#include <pthread.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>

#include "apsis/apsis_client.hpp"
#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "cli/hand_off.hpp"
#include "cli/progress.hpp"
#include "jobs/definition_json.hpp"
#include "dispatch/dispatcher.hpp"
#include "jobs/job_row.hpp"
#include "lease/holders.hpp"
#include "pg/settings.hpp"
#include "config/env_expand.hpp"
#include "service/once_lock.hpp"
#include "store/open_store.hpp"
#include "store/ownership.hpp"

namespace apsis::cli {
namespace {

namespace asio = boost::asio;

std::string export_names(const config::Config& config) {
  std::string names;
  for (const auto& [name, definition] : config.exports) names += (names.empty() ? "" : ", ") + name;
  return names.empty() ? "none" : names;
}

int exit_code_for(const store::Job& job) {
  switch (job.state) {
    case store::JobState::succeeded: return kExitOk;
    case store::JobState::expired: return kExitJobExpired;
    default: return kExitJobFailed;
  }
}

// What `once` says about its job on stderr: "apsis-exportd once: ..." lines, or, with --log-format json,
// entries of the JSON log, so that every line a log shipper reads is JSON.
class Report {
 public:
  Report(const Logger& log, bool as_log_entries) : log_(log), as_log_entries_(as_log_entries) {}

  void say(Level level, const std::string& text, const LogFields& fields = {}) const {
    if (as_log_entries_) return log_.log(level, text, fields);
    std::fprintf(stderr, "apsis-exportd once: %s\n", text.c_str());
  }

 private:
  const Logger& log_;
  bool as_log_entries_;
};

LogFields job_fields(const store::Job& job) { return {.export_name = job.export_name, .job_id = job.id}; }

// The published path on stdout, or why there is none on stderr; the exit code says which.
int report_final(const store::Job& job, const Report& report) {
  if (job.state == store::JobState::succeeded) {
    std::printf("%s\n", job.output_path.value_or("").c_str());
    if (job.hook_result) report.say(Level::info, "on_success: " + *job.hook_result, job_fields(job));
  } else {
    report.say(Level::error,
               "job " + std::to_string(job.id) + " " + std::string(store::to_string(job.state)) + ": " +
                   job.error.value_or(""),
               job_fields(job));
  }
  return exit_code_for(job);
}

// A person is watching: redraw one status line on stderr until the job ends.
bool wants_progress() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDERR_FILENO) == 1 && !(term && std::string_view(term) == "dumb");
}

constexpr Milliseconds kProgressInterval{250};

// The in-memory row as `status` would show it, for the progress line.
store::Job progress_row(const jobs::ActiveJob& job) {
  store::Job row;
  row.id = job.row.id;
  row.state = job.row.state;
  row.polls = job.row.polls;
  row.next_poll_at = job.row.next_poll_at;
  return row;
}

asio::awaitable<void> show_progress(const dispatch::Dispatcher& dispatcher, std::int64_t id, asio::steady_timer& timer,
                                    const bool& done) {
  const TimePoint started = Clock::now();
  while (!done) {
    if (const auto* job = dispatcher.find(id)) {
      const auto line =
          describe_progress({progress_row(*job), job->bytes_received, job->download_started, started, Clock::now()});
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
    }
    timer.expires_after(kProgressInterval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
}

// The oldest unfinished job of `export_name` whose `once` is gone, with its lock now held here.
std::pair<store::Job, std::optional<service::OnceLock>> resume_abandoned(store::JobStore& store,
                                                                         const std::filesystem::path& state_db,
                                                                         const std::string& export_name) {
  for (auto& job : store.unfinished())
    if (job.export_name == export_name)
      if (auto lock = service::OnceLock::take_abandoned(state_db, job.id)) return {std::move(job), std::move(lock)};
  return {store::Job{}, std::nullopt};
}

// SIGINT and SIGTERM held back while this lives, and waited for by `wait`: following a row needs no
// handler and no event loop.
class SignalWait {
 public:
  SignalWait() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, &previous_);
  }
  ~SignalWait() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  SignalWait(const SignalWait&) = delete;
  SignalWait& operator=(const SignalWait&) = delete;

  // False when a signal came within `timeout`.
  bool wait(Milliseconds timeout) const {
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
    const timespec span{static_cast<std::time_t>(seconds.count()),
                        static_cast<long>(std::chrono::nanoseconds(timeout - seconds).count())};
    return ::sigtimedwait(&signals_, nullptr, &span) < 0;  // EAGAIN: timed out; EINTR: another signal
  }

 private:
  sigset_t signals_{};
  sigset_t previous_{};
};

// Follows a job handed to a running service (or to its account's lease holder) to its end, as `once`
// would have run it. `owner_running` says whether something still runs the job.
int follow_handed_job(const store::Job& job, store::JobStore& reader, const std::function<bool()>& owner_running,
                      bool progress, const Report& report) {
  const TimePoint started = Clock::now();
  const SignalWait signals;
  const auto outcome = follow_row(
      job.id, {[&] { return reader.find(job.id); }, owner_running,
               [&](Milliseconds timeout) { return signals.wait(timeout); },
               [&](const store::Job& row) {
                 if (!progress) return;
                 const auto line = describe_progress({row, 0, std::nullopt, started, Clock::now()});
                 std::fprintf(stderr, "\r\033[K%s", line.c_str());
                 std::fflush(stderr);
               }});
  if (progress) std::fputs("\r\033[K", stderr);
  const auto state = std::string(store::to_string(outcome.row.state));
  switch (outcome.end) {
    case FollowOutcome::End::final_state: return report_final(outcome.row, report);
    case FollowOutcome::End::interrupted:
      report.say(Level::notice,
                 "interrupted; job " + std::to_string(job.id) + " continues in the service (state '" + state + "')",
                 job_fields(job));
      return kExitInterrupted;
    case FollowOutcome::End::service_gone: break;
  }
  report.say(Level::warning,
             "the service stopped; job " + std::to_string(job.id) + " stays '" + state + "' until a service starts",
             job_fields(job));
  return kExitInterrupted;
}

// A service owns the database: it runs the job (a `once` beside it would run the row twice), and this
// process follows the row to its end.
int hand_to_service(store::JobStore& store, const config::ExportDefinition& definition,
                    const store::ServiceHolder& holder, const std::filesystem::path& state_db, bool progress,
                    const Report& report) {
  const auto job = queue_for_service(store, definition, Clock::now());
  report.say(Level::info,
             "job " + std::to_string(job.id) + " handed to the running service (pid " + std::to_string(holder.pid) +
                 "); following it",
             job_fields(job));
  auto reader = store::open_job_store({state_db, std::nullopt}, {.read_only = true});
  return follow_handed_job(
      job, *reader, [&] { return store::service_owner(state_db).has_value(); }, progress, report);
}

// PostgreSQL: instances share the accounts by lease, and only the account's holder may run its jobs
// (its writes are fenced by the lease; ours would not be). So `once` hands the job to the holder and
// follows it, or refuses when no live instance holds the account.
int hand_to_lease_holder(store::JobStore& store, const config::Config& configuration,
                         const config::ExportDefinition& definition, bool progress, const Report& report) {
  const auto settings = pg::parse_database_url(*configuration.state_db_url, config::process_environment());
  const auto view = lease::read_leases(settings);
  const auto* holder = view.holder_of(definition.account);
  if (!holder || !holder->live) {
    report.say(Level::error,
               "no running instance holds account '" + definition.account + "' of export '" + definition.name +
                   "' (start `apsis-exportd run` with this configuration); nothing queued",
               {.export_name = definition.name, .account = definition.account});
    return kExitServiceNotRunning;
  }
  const auto* instance = view.instance(*holder->owner);
  const auto job = queue_for_service(store, definition, Clock::now());
  report.say(Level::info,
             "job " + std::to_string(job.id) + " handed to instance " + *holder->owner + " (" +
                 (instance ? instance->host : std::string("?")) + ", pid " +
                 std::to_string(instance ? instance->pid : 0) + "), which holds account '" + definition.account +
                 "'; following it",
             {.export_name = definition.name, .job_id = job.id, .account = definition.account});
  auto reader = store::open_job_store({configuration.state_db, configuration.state_db_url}, {.read_only = true});
  // Some instance must keep holding the account; a hand-over between instances is no reason to stop.
  return follow_handed_job(job, *reader, [&] {
    try {
      const auto now = lease::read_leases(settings);  // holder_of points into it: it must outlive the check
      const auto* now_held = now.holder_of(definition.account);
      return now_held && now_held->live;
    } catch (const std::exception&) {
      return false;  // the database is away: the grace period decides
    }
  }, progress, report);
}

// No service owns the database: this process runs the job. A service starting meanwhile leaves it
// alone (OnceLock).
int run_here(store::JobStore& store, const std::shared_ptr<const config::Config>& configuration,
             const config::ExportDefinition& definition, const Logger& log, bool progress, const Report& report) {
  asio::io_context io;
  Random random(std::random_device{}());
  // A job of this export whose `once` was killed resumes here, with the definition it started with
  // (no second export at APSIS One); otherwise a new job. Either way this process holds its lock.
  auto resumed = resume_abandoned(store, configuration->state_db, definition.name);
  store::Job job = std::move(resumed.first);
  std::optional<service::OnceLock> lock = std::move(resumed.second);
  auto job_definition = std::make_shared<const config::ExportDefinition>(definition);
  if (lock) {
    report.say(Level::notice,
               "resuming job " + std::to_string(job.id) + ", left in state '" + std::string(store::to_string(job.state)) +
                   "' by a `once` that did not finish",
               job_fields(job));
    job_definition = std::make_shared<const config::ExportDefinition>(jobs::definition_from_json(job.definition_json));
  } else {
    // The lock is taken before the row is committed: a `run` starting now never sees the row unowned.
    const auto now = Clock::now();
    try {
      job = store.create_asked_for(definition.name, now, jobs::definition_to_json(definition), now,
                                   [&](std::int64_t id) { lock.emplace(service::OnceLock::create(configuration->state_db, id)); });
    } catch (...) {
      if (lock) lock->remove();  // the row was rolled back: its id may be given again
      throw;
    }
  }
  const auto account = configuration->accounts.find(job_definition->account);
  if (account == configuration->accounts.end())
    throw std::runtime_error("job " + std::to_string(job.id) + ": account '" + job_definition->account +
                             "' is no longer in the configuration");
  http::ClientPool http_clients(io.get_executor());
  auto client = std::make_shared<apsis_one::ApsisClient>(http_clients.client_for(account->second.ca_file),
                                                         account->second, configuration->retry, system_now(), random);
  asio::thread_pool blocking(1);
  store::StoreWriter writer(io.get_executor(), store, std::chrono::seconds(1),
                            {.report = [&log](std::string_view problem) { log.log(Level::warning, problem); }});
  dispatch::Dispatcher dispatcher(
      {io.get_executor(), store, writer, configuration, system_now(), random, log, nullptr, &blocking, nullptr});
  dispatcher.set_accounts({{account->first, client}});

  // Ctrl-C or SIGTERM cancels the job's step; its row stays resumable.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer progress_timer(io);
  bool interrupted = false;
  bool done = false;
  const auto wind_down = [&] {
    done = true;
    signals.cancel();
    progress_timer.cancel();
    dispatcher.stop();
    writer.stop();
    asio::co_spawn(io, writer.flush(), [&log](std::exception_ptr error) {
      if (error) log.log(Level::warning, "writing the last poll notes failed; the next run polls a little early");
    });
  };
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    interrupted = true;
    wind_down();
  });
  bool finished = false;
  dispatcher.on_finished = [&](const jobs::ActiveJob&, const jobs::Decision&) {
    finished = true;
    wind_down();
  };
  if (progress) asio::co_spawn(io, show_progress(dispatcher, job.id, progress_timer, done), asio::detached);
  dispatcher.add(jobs::to_job_row(job), job_definition);
  io.run();

  // The row as the job left it: the file's path, the hook's result and the error are in the table only.
  const auto row = store.find(job.id);
  const bool final_state = row && store::is_final(row->state);
  // A final row needs no owner; an unfinished one keeps its lock file for the next `once` or `run`.
  if (final_state) lock->remove();
  if (!finished || !final_state) {
    report.say(Level::notice,
               std::string(interrupted ? "interrupted" : "stopped") + "; job " + std::to_string(job.id) +
                   " left in state '" + (row ? std::string(store::to_string(row->state)) : std::string("unknown")) + "'",
               job_fields(job));
    return kExitInterrupted;
  }
  return report_final(*row, report);
}

constexpr OptionHelp kOnceOptions[] = {
    {"--config FILE", "the configuration file (see apsis-exportd.yaml(5))"},
    {"--log-format text|json", "json lines on stderr; text (default): lines, or journal entries under systemd"}};

}  // namespace

const CommandHelp kOnceHelp{
    .name = "once",
    .synopsis = "--config FILE [--log-format text|json] EXPORT",
    .summary = "run one job of EXPORT now, in the foreground, and print the published file's path",
    .details = "Beside a running service (or on PostgreSQL, the instance holding the export's account) the\n"
               "job is handed over and followed until it ends. Ctrl-C leaves the job row resumable (exit 130).",
    .options = kOnceOptions};

int once_command(const std::vector<std::string>& args, const LogEnvironment& log_environment) {
  const auto arguments = parse_arguments(args, {"config", "log-format"}, {});
  const auto log_format = requested_log_format(arguments);
  if (arguments.positional.size() != 1) throw UsageError("once needs exactly one EXPORT name");
  const auto loaded = load_config_or_report(arguments.required("config"));
  if (!loaded) return kExitBadConfig;
  const auto configuration = std::make_shared<const config::Config>(*loaded);
  const auto found = configuration->exports.find(arguments.positional[0]);
  if (found == configuration->exports.end()) {
    std::fprintf(stderr, "apsis-exportd once: no export named '%s' (defined: %s)\n", arguments.positional[0].c_str(),
                 export_names(*configuration).c_str());
    return kExitBadConfig;
  }
  const auto& definition = found->second;

  // No progress line among JSON lines: whatever reads them wants JSON only.
  const bool progress = wants_progress() && log_format != LogFormat::json;
  const auto log = make_logger(log_format, log_environment, progress);
  const Report report(*log, log_format == LogFormat::json);

  auto store = store::open_job_store({configuration->state_db, configuration->state_db_url});
  if (configuration->state_db_url) return hand_to_lease_holder(*store, *configuration, definition, progress, report);
  if (const auto holder = store::service_owner(configuration->state_db))
    return hand_to_service(*store, definition, *holder, configuration->state_db, progress, report);
  return run_here(*store, configuration, definition, *log, progress, report);
}

}  // namespace apsis::cli
