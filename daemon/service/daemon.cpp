#include "service/daemon.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <csignal>
#include <random>
#include <unordered_set>

#include "config/config_loader.hpp"
#include "jobs/definition_json.hpp"
#include "jobs/job_row.hpp"
#include "service/daemon_internal.hpp"
#include "service/once_lock.hpp"
#include "sink/staged_file.hpp"
#include "store/open_store.hpp"

namespace apsis::service {
namespace {

namespace asio = boost::asio;

// PostgreSQL: the loop's few direct store calls wait this long for the database thread's call, then
// count as Busy (and are tried again), instead of queueing behind its retries while the database is away.
constexpr Milliseconds kStoreLockWait{100};
using namespace std::chrono_literals;

constexpr Milliseconds kTriggerCheckInterval = 1s;
// Every this many trigger checks, lock files of `once` jobs are looked at for one whose `once` died.
constexpr std::uint64_t kAbandonedCheckTurns = 5;
constexpr Milliseconds kStatusInterval = 5s;
// history_days is counted in days: pruning once an hour keeps the table within an hour of the limit.
constexpr Milliseconds kMaintenanceInterval = 1h;

std::string timer_lateness_line(const metrics::MillisecondHistogram& lateness) {
  return "poll timers: " + std::to_string(lateness.count()) + " fired; lateness p50 " +
         std::to_string(lateness.quantile(0.5).count()) + " ms, p99 " + std::to_string(lateness.quantile(0.99).count()) +
         " ms, max " + std::to_string(lateness.max().count()) + " ms";
}

}  // namespace

std::string seconds_text(Milliseconds delay) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(delay).count()) + " s";
}

struct Daemon::ClientSet {
  std::map<std::string, std::shared_ptr<apsis_one::ApsisClient>> clients;
  std::vector<std::pair<std::shared_ptr<apsis_one::ApsisClient>, config::AccountBudget>> new_budgets;
};

Daemon::Daemon(std::filesystem::path config_path, config::Config config, const Logger& log)
    : config_path_(std::move(config_path)),
      config_(std::make_shared<const config::Config>(std::move(config))),
      log_(log),
      leases_(config_->state_db_url ? std::make_shared<store::LeaseBook>() : nullptr),
      store_owner_(store::open_job_store({config_->state_db, config_->state_db_url}, {.read_only = false, .leases = leases_, .lock_wait = kStoreLockWait})),
      store_(*store_owner_),
      database_(config_->state_db_url ? std::make_unique<asio::thread_pool>(1) : nullptr),
      writer_(io_.get_executor(), store_, std::chrono::seconds(1),
              {.report = [&log](std::string_view problem) { log.log(Level::warning, problem); },
               .database = database_ ? std::optional(database_->get_executor()) : std::nullopt}),
      random_(std::random_device{}()),
      transfers_(static_cast<std::size_t>(std::max(0, config_->max_concurrent_downloads))),
      signals_(io_, SIGTERM, SIGINT, SIGHUP),
      trigger_timer_(io_),
      status_timer_(io_),
      maintenance_timer_(io_) {
  instance_id_ = lease::random_instance_id(random_);
  dispatcher_ = std::make_unique<dispatch::Dispatcher>(jobs::JobContext{io_.get_executor(), store_, writer_, config_,
                                                                        system_now(), random_, log_, &transfers_,
                                                                        &blocking_, &metrics_, instance_id_});
}

Daemon::~Daemon() = default;

int Daemon::run() {
  start();
  io_.run();
  log_.log(Level::notice, "stopped; unfinished jobs resume at the next start");
  log_.log(Level::info, timer_lateness_line(metrics_.poll_timer_lateness) + "; job rows written: " +
                            std::to_string(metrics_.job_row_writes));
  return 0;
}

void Daemon::start() {
  if (const int removed = sink::remove_orphaned_temp_files(config_->output_dir); removed > 0)
    log_.log(Level::notice, "removed " + std::to_string(removed) + " temporary file(s) left by an earlier crash");
  start_admin();  // first: a port already taken stops the start before any job runs
  commit_clients(make_clients(*config_));
  if (!shares_accounts()) resume_unfinished();  // with leases, each account's jobs resume as it is gained
  start_schedules(make_schedules(*config_, true));
  const auto log_failure = [this](const char* what) {
    return [this, what](std::exception_ptr error) {
      if (error && !is_cancellation(error)) log_.log(Level::error, std::string(what) + " stopped: " + describe(error));
    };
  };
  asio::co_spawn(io_, signal_loop(), log_failure("signal handling"));
  asio::co_spawn(io_, trigger_loop(), log_failure("trigger watch"));
  asio::co_spawn(io_, status_loop(), log_failure("status reporting"));
  asio::co_spawn(io_, maintenance_loop(), log_failure("job history pruning"));
  if (shares_accounts()) {
    start_leases();
    asio::co_spawn(io_, table_view_loop(), log_failure("reading the job table for the admin endpoint"));
  }
  systemd_.ready();
  log_.log(Level::notice, "started: " + std::to_string(config_->exports.size()) + " exports, " +
                              std::to_string(dispatcher_->size()) + " jobs resumed; instance " + instance_id_);
}

Daemon::ClientSet Daemon::make_clients(const config::Config& config) {
  ClientSet next;
  for (const auto& [name, account] : config.accounts) {
    const auto existing = clients_.find(name);
    if (existing != clients_.end() && existing->second->account() == account) {
      next.clients[name] = existing->second;  // keeps its token and connections
    } else if (existing != clients_.end() && existing->second->same_endpoint(account)) {
      // A new budget: one account keeps one budget, or old and new jobs would spend it twice.
      next.clients[name] = existing->second;
      next.new_budgets.emplace_back(existing->second, account.budget);
    } else
      next.clients[name] = std::make_shared<apsis_one::ApsisClient>(http_clients_.client_for(account.ca_file), account,
                                                                    config.retry, system_now(), random_, &metrics_);
  }
  return next;
}

void Daemon::commit_clients(ClientSet next) {
  for (auto& [client, budget] : next.new_budgets) client->set_budget(budget);
  clients_ = std::move(next.clients);
  std::map<std::string, std::shared_ptr<apsis_one::ExportApi>> accounts(clients_.begin(), clients_.end());
  dispatcher_->set_accounts(std::move(accounts));  // jobs in flight keep their own reference to a removed client
}

void Daemon::resume_unfinished() {
  constexpr int kPage = 1000;  // bounds the rows held in memory at once, beside the jobs they become
  // A `once` creates its lock file before its row is committed: rows up to `listed_through` have
  // theirs in this listing; a row committed later is checked on its own.
  const auto listed_through = store_.max_id();
  const auto locks = OnceLock::jobs_with_lock_files(config_->state_db);
  const std::unordered_set<std::int64_t> locked(locks.begin(), locks.end());
  for (std::int64_t after = 0;;) {
    auto page = store_.unfinished(after, kPage);
    if (page.empty()) return;
    after = page.back().id;
    for (auto& job : page) {
      const bool may_have_lock = job.id > listed_through || locked.contains(job.id);
      adopt(std::move(job), may_have_lock);
    }
  }
}

void Daemon::adopt(store::Job job, bool may_have_once_lock) {
  last_seen_job_id_ = std::max(last_seen_job_id_, job.id);
  if (dispatcher_->contains(job.id)) return;
  // A job `once` started: left to it while it runs; taken over if it was killed. (With leases a
  // `once` never runs a job itself: it hands it to the account's owner.)
  if (may_have_once_lock && !shares_accounts()) {
    if (auto abandoned = OnceLock::take_abandoned(config_->state_db, job.id)) {
      abandoned->remove();
      log_.log(Level::notice, "taken over from a `once` that did not finish", job_fields(job));
    } else if (OnceLock::owner(config_->state_db, job.id) == OnceLock::Owner::alive) {
      log_.log(Level::info, "left to the `once` running it", job_fields(job));
      return;
    }
  }
  std::shared_ptr<const config::ExportDefinition> definition;
  try {
    definition = shared_definition(job.definition_json);
  } catch (const std::exception& e) {
    fail_unrunnable(job, std::string("cannot resume: ") + e.what());
    return;
  }
  if (!holds(definition->account)) return;  // another instance's: its owner runs it
  log_.log(Level::info, "picked up in state " + std::string(store::to_string(job.state)), job_fields(job));
  spawn(std::move(job), std::move(definition));
}

void Daemon::adopt_abandoned_onces() {
  if (shares_accounts()) return;
  for (const auto id : OnceLock::jobs_with_lock_files(config_->state_db)) {
    if (dispatcher_->contains(id) || OnceLock::named_holder_may_live(config_->state_db, id)) continue;
    if (OnceLock::owner(config_->state_db, id) != OnceLock::Owner::gone) continue;
    auto job = store_.find(id);
    if (!job || store::is_final(job->state)) continue;  // a `once` that died after its job ended
    adopt(std::move(*job));
  }
}

std::shared_ptr<const config::ExportDefinition> Daemon::shared_definition(const std::string& json) {
  if (const auto known = definitions_.find(json); known != definitions_.end())
    if (auto definition = known->second.lock()) return definition;
  std::erase_if(definitions_, [](const auto& entry) { return entry.second.expired(); });
  auto definition = std::make_shared<const config::ExportDefinition>(jobs::definition_from_json(json));
  definitions_[json] = definition;
  return definition;
}

void Daemon::spawn(store::Job job, std::shared_ptr<const config::ExportDefinition> definition) {
  try {
    dispatcher_->add(jobs::to_job_row(job), std::move(definition));
  } catch (const std::exception& e) {
    fail_unrunnable(job, e.what());
  }
}

LogFields Daemon::job_fields(const store::Job& job) const {
  const auto definition = config_->exports.find(job.export_name);
  return {.export_name = job.export_name,
          .job_id = job.id,
          .account = definition == config_->exports.end() ? std::string() : definition->second.account};
}

// A row this process cannot run (its definition or account is gone) ends failed, saying why.
void Daemon::fail_unrunnable(const store::Job& job, const std::string& why) {
  store_.record_finished(job.id, {store::JobState::failed, Clock::now(), why, std::nullopt, std::nullopt, std::nullopt, {}, {}, {}, {}});
  log_.log(Level::error, why, job_fields(job));
}

// Each loop below outlives its errors: it logs them and goes on (a reload that fails keeps the running
// configuration; a table that does not answer is asked again at the next turn).
asio::awaitable<void> Daemon::signal_loop() {
  for (;;) {
    auto [ec, number] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    if (number != SIGHUP) {
      stop();
      co_return;
    }
    try {
      reload();
    } catch (const std::exception& e) {
      log_.log(Level::error, std::string("reload failed: ") + e.what());
      log_.log(Level::warning, "keeping the running configuration");
      systemd_.ready();
    }
  }
}

asio::awaitable<void> Daemon::trigger_loop() {
  Milliseconds interval = kTriggerCheckInterval;
  std::uint64_t turns = 0;
  while (!stopping_) {
    trigger_timer_.expires_after(interval);
    co_await trigger_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopping_) co_return;
    try {
      // Rows that `apsis-exportd trigger` inserted: an indexed look at ids we have not seen yet.
      std::function<std::vector<store::Job>(store::JobStore&)> read = [after = last_seen_job_id_](store::JobStore& store) {
        return store.pending_after(after);
      };
      auto triggered = co_await writer_.call(std::move(read));
      for (auto& job : triggered) adopt(std::move(job));
      if (++turns % kAbandonedCheckTurns == 0) adopt_abandoned_onces();
      interval = kTriggerCheckInterval;
    } catch (const std::exception& e) {
      interval = std::min(std::max(interval * 2, kRetryFirst), kRetryMax);
      log_.log(Level::error,
               std::string("trigger watch: ") + e.what() + "; looking again in " + seconds_text(interval));
    }
  }
}

asio::awaitable<void> Daemon::status_loop() {
  const auto watchdog = systemd_.watchdog_interval();
  const auto interval = watchdog ? std::min(*watchdog, kStatusInterval) : kStatusInterval;
  while (!stopping_) {
    try {
      systemd_.status(status_line());
      systemd_.watchdog();
    } catch (const std::exception& e) {
      log_.log(Level::error, std::string("status reporting: ") + e.what());
    }
    status_timer_.expires_after(interval);
    co_await status_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> Daemon::maintenance_loop() {
  while (!stopping_) {
    Milliseconds next = kMaintenanceInterval;
    try {
      prune_history();
    } catch (const std::exception& e) {
      next = kRetryMax;
      log_.log(Level::error,
               std::string("job history pruning: ") + e.what() + "; trying again in " + seconds_text(next));
    }
    maintenance_timer_.expires_after(next);
    co_await maintenance_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void Daemon::prune_history() {
  if (!config_->history_days) return;
  // With several instances one prunes: the holder of the first account by name.
  if (shares_accounts() && (config_->accounts.empty() || !holds(config_->accounts.begin()->first))) return;
  const auto cutoff = Clock::now() - std::chrono::days(*config_->history_days);
  if (const auto pruned = store_.prune_finished_before(cutoff); pruned > 0)
    log_.log(Level::info, "history_days: deleted " + std::to_string(pruned) + " job row(s) finished before " +
                              format_iso8601(cutoff));
}

std::map<store::JobState, int> Daemon::running_by_state() const {
  std::map<store::JobState, int> counts;
  dispatcher_->for_each([&](const jobs::ActiveJob& job) { ++counts[job.row.state]; });
  return counts;
}

std::string Daemon::status_line() const {
  auto by_state = running_by_state();
  const int downloading = by_state[store::JobState::downloading];
  const int polling = by_state[store::JobState::pending] + by_state[store::JobState::submitted];
  // Final rows still running: published, with keep: or on_success under way.
  const int finishing = static_cast<int>(dispatcher_->size()) - downloading - polling;
  std::string line = std::to_string(polling) + " jobs polling, " + std::to_string(downloading) + " downloading";
  if (finishing > 0) line += ", " + std::to_string(finishing) + " finishing (keep:, on_success)";
  const ScheduleTask* soonest = nullptr;
  for (const auto& [name, task] : schedules_)
    if (!soonest || task->next < soonest->next) soonest = task.get();
  if (soonest) line += "; next: " + soonest->definition.name + " at " + format_iso8601(soonest->next);
  return line;
}

// The whole new configuration (clients with their CA bundles, schedules) is built before anything
// switches: a step that throws leaves the running configuration as it was.
void Daemon::reload() {
  systemd_.reloading();
  auto result = config::load_config_file(config_path_);
  if (!result.config) {
    for (const auto& error : result.errors) log_.log(Level::error, "reload rejected: " + error.to_string());
    log_.log(Level::warning, "keeping the running configuration");
    systemd_.ready();
    return;
  }
  if (result.config->state_db != config_->state_db || result.config->state_db_url != config_->state_db_url ||
      result.config->lease_ttl != config_->lease_ttl)
    log_.log(Level::warning, "state_db or lease_ttl changed in the file: that takes effect at the next restart");
  if (result.config->admin_listen != config_->admin_listen)
    log_.log(Level::warning, "admin_listen changed in the file: that takes effect at the next restart");
  auto next = std::move(*result.config);
  next.state_db = config_->state_db;
  next.state_db_url = config_->state_db_url;
  next.lease_ttl = config_->lease_ttl;
  next.admin_listen = config_->admin_listen;
  auto config = std::make_shared<const config::Config>(std::move(next));
  auto clients = make_clients(*config);
  auto schedules = make_schedules(*config, false);
  auto admin_tls = admin_tls_context(*config);  // a renewed certificate takes effect here
  // Nothing below throws.
  config_ = std::move(config);
  transfers_.set_capacity(static_cast<std::size_t>(std::max(0, config_->max_concurrent_downloads)));
  commit_clients(std::move(clients));
  apply_admin_web(admin_tls);
  dispatcher_->set_config(config_);
  if (keeper_) keeper_->reconfigure(account_names_of(*config_), config_hash(*config_));
  stop_schedules();
  start_schedules(std::move(schedules));
  log_.log(Level::notice, "configuration reloaded: " + std::to_string(config_->exports.size()) +
                              " exports; jobs in flight keep their definitions");
  systemd_.ready();
}

void Daemon::stop() {
  stopping_ = true;
  systemd_.stopping();
  log_.log(Level::notice, "stopping: " + std::to_string(dispatcher_->size()) + " job(s) left resumable");
  stop_schedules();
  trigger_timer_.cancel();
  status_timer_.cancel();
  maintenance_timer_.cancel();
  table_view_timer_.cancel();
  if (admin_) admin_->stop();
  dispatcher_->stop();
  // "Still in progress" notes not yet written go now; cancelled steps left their rows as last written.
  writer_.stop();
  asio::co_spawn(io_, shut_down(), [this](std::exception_ptr error) {
    if (error) log_.log(Level::warning, "shutting down: " + describe(error));
  });
}

}  // namespace apsis::service
