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

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "apsis/apsis_client.hpp"
#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "cli/progress.hpp"
#include "jobs/definition_json.hpp"
#include "jobs/job_lifecycle.hpp"
#include "service/once_lock.hpp"

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

// A person is watching: redraw one status line on stderr until the job ends.
bool wants_progress() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDERR_FILENO) == 1 && !(term && std::string_view(term) == "dumb");
}

constexpr Milliseconds kProgressInterval{250};

asio::awaitable<void> show_progress(const jobs::JobLifecycle& lifecycle, asio::steady_timer& timer, const bool& done) {
  const TimePoint started = Clock::now();
  while (!done) {
    const auto line = describe_progress(
        {lifecycle.job(), lifecycle.bytes_received(), lifecycle.download_started(), started, Clock::now()});
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
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

}  // namespace

int once_command(const std::vector<std::string>& args) {
  const auto arguments = parse_arguments(args, {"config"}, {});
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

  auto store = store::JobStore::open(configuration->state_db);
  asio::io_context io;
  Random random(std::random_device{}());
  const bool progress = wants_progress();
  const Logger log(stderr, Logger::stderr_is_journal(), Level::info, progress);
  // A job of this export whose `once` was killed resumes here, with the definition it started with
  // (no second export at APSIS One); otherwise a new job. Either way this process holds its lock.
  auto resumed = resume_abandoned(store, configuration->state_db, definition.name);
  store::Job job = std::move(resumed.first);
  std::optional<service::OnceLock> lock = std::move(resumed.second);
  auto job_definition = std::make_shared<const config::ExportDefinition>(definition);
  if (lock) {
    std::fprintf(stderr, "apsis-exportd once: resuming job %lld, left in state '%s' by a `once` that did not finish\n",
                 static_cast<long long>(job.id), std::string(store::to_string(job.state)).c_str());
    job_definition = std::make_shared<const config::ExportDefinition>(jobs::definition_from_json(job.definition_json));
  } else {
    const auto now = Clock::now();
    job = store.create_asked_for(definition.name, now, jobs::definition_to_json(definition), now);
    lock.emplace(service::OnceLock::create(configuration->state_db, job.id));
  }
  const auto account = configuration->accounts.find(job_definition->account);
  if (account == configuration->accounts.end())
    throw std::runtime_error("job " + std::to_string(job.id) + ": account '" + job_definition->account +
                             "' is no longer in the configuration");
  auto client = std::make_shared<apsis_one::ApsisClient>(io.get_executor(), account->second, configuration->retry,
                                                         system_now(), random);
  asio::thread_pool blocking(1);
  jobs::JobLifecycle lifecycle({io.get_executor(), store, client, configuration, system_now(), random, log, nullptr, &blocking},
                               job_definition, job);

  // Ctrl-C or SIGTERM cancels the job's coroutine; its row stays resumable.
  asio::cancellation_signal cancel;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  bool interrupted = false;
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    interrupted = true;
    cancel.emit(asio::cancellation_type::terminal);
  });
  std::optional<store::Job> result;
  std::exception_ptr failure;
  bool done = false;
  asio::steady_timer progress_timer(io);
  if (progress) asio::co_spawn(io, show_progress(lifecycle, progress_timer, done), asio::detached);
  asio::co_spawn(io, lifecycle.run(), asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr error) {
                   signals.cancel();
                   done = true;
                   progress_timer.cancel();
                   if (error)
                     failure = error;
                   else
                     result = lifecycle.job();
                 }));
  io.run();

  // A final row needs no owner; an unfinished one keeps its lock file for the next `once` or `run`.
  if (result && store::is_final(result->state)) lock->remove();
  if (!result) {
    const auto row = store.find(job.id);
    std::fprintf(stderr, "apsis-exportd once: %s; job %lld left in state '%s'\n",
                 interrupted ? "interrupted" : "stopped", static_cast<long long>(job.id),
                 row ? std::string(store::to_string(row->state)).c_str() : "unknown");
    if (failure && !interrupted) std::rethrow_exception(failure);
    return kExitInterrupted;
  }
  if (result->state == store::JobState::succeeded) {
    std::printf("%s\n", result->output_path.value_or("").c_str());
    if (result->hook_result) std::fprintf(stderr, "apsis-exportd once: on_success: %s\n", result->hook_result->c_str());
  } else {
    std::fprintf(stderr, "apsis-exportd once: job %lld %s: %s\n", static_cast<long long>(result->id),
                 std::string(store::to_string(result->state)).c_str(), result->error.value_or("").c_str());
  }
  return exit_code_for(*result);
}

}  // namespace apsis::cli
