#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <csignal>
#include <cstdio>
#include <random>

#include "apsis/apsis_client.hpp"
#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "jobs/definition_json.hpp"
#include "jobs/job_lifecycle.hpp"

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
  jobs::Random random(std::random_device{}());
  const service::Logger log;
  auto client = std::make_shared<apsis_one::ApsisClient>(io.get_executor(), configuration->accounts.at(definition.account),
                                                         configuration->retry, system_now(), random);
  const auto now = Clock::now();
  auto job = store.create(definition.name, now, jobs::definition_to_json(definition), now);
  asio::thread_pool blocking(1);
  jobs::JobLifecycle lifecycle({io.get_executor(), store, client, configuration, system_now(), random, log, nullptr, &blocking},
                               std::make_shared<const config::ExportDefinition>(definition), job);

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
  asio::co_spawn(io, lifecycle.run(), asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr error) {
                   signals.cancel();
                   if (error)
                     failure = error;
                   else
                     result = lifecycle.job();
                 }));
  io.run();

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
  } else {
    std::fprintf(stderr, "apsis-exportd once: job %lld %s: %s\n", static_cast<long long>(result->id),
                 std::string(store::to_string(result->state)).c_str(), result->error.value_or("").c_str());
  }
  return exit_code_for(*result);
}

}  // namespace apsis::cli
