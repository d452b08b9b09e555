// `apsis-exportd run`: the long-running service. One io_context, one thread: each export's schedule
// is a timer, each job a coroutine. Resumes unfinished jobs at start, picks up triggered jobs, reloads
// on SIGHUP, stops cleanly on SIGTERM with every row left resumable.
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin/admin_server.hpp"
#include "apsis/apsis_client.hpp"
#include "config/config.hpp"
#include "dispatch/dispatcher.hpp"
#include "lease/keeper.hpp"
#include "http/client.hpp"
#include "util/backoff.hpp"
#include "metrics/metrics.hpp"
#include "metrics/prometheus.hpp"
#include "schedule/schedule.hpp"
#include "util/log.hpp"
#include "service/systemd_notifier.hpp"
#include "store/fence.hpp"
#include "store/job_store.hpp"
#include "store/store_writer.hpp"
#include "util/async_semaphore.hpp"

namespace apsis::service {

class Daemon {
 public:
  Daemon(std::filesystem::path config_path, config::Config config, const Logger& log);
  ~Daemon();
  // Runs until SIGTERM/SIGINT; returns the process exit code.
  int run();

 private:
  struct ScheduleTask;

  void start();
  void resume_unfinished();
  // `may_have_once_lock` false: the caller knows no `once` lock file exists for the row (start-up
  // reads the lock files once instead of opening one per row: a million rows, a million opens).
  void adopt(store::Job job, bool may_have_once_lock = true);
  // Jobs of a `once` that died while this service ran: taken over from their rows.
  void adopt_abandoned_onces();
  // Every export's schedule task, built from `config` without touching the running ones; throws if
  // the job table cannot say where a schedule stands.
  std::map<std::string, std::shared_ptr<ScheduleTask>> make_schedules(const config::Config& config, bool at_start,
                                                                      const std::optional<std::string>& only_account = {});
  void start_schedules(std::map<std::string, std::shared_ptr<ScheduleTask>> schedules);
  void spawn_schedule(const std::string& name, const std::shared_ptr<ScheduleTask>& task);
  void stop_schedules();
  boost::asio::awaitable<void> schedule_loop(std::shared_ptr<ScheduleTask> task);
  // Starts what is due of one schedule and says how long to sleep before looking again.
  Milliseconds advance_schedule(ScheduleTask& task);
  std::vector<std::string> stuck_schedules() const;
  void start_slot(const config::ExportDefinition& definition, TimePoint slot);
  void spawn(store::Job job, std::shared_ptr<const config::ExportDefinition> definition);
  void fail_unrunnable(const store::Job& job, const std::string& why);
  // The row's export and id, and the account its export has in the running configuration.
  LogFields job_fields(const store::Job& job) const;
  std::shared_ptr<const config::ExportDefinition> shared_definition(const std::string& json);
  boost::asio::awaitable<void> signal_loop();
  boost::asio::awaitable<void> trigger_loop();
  boost::asio::awaitable<void> status_loop();
  boost::asio::awaitable<void> maintenance_loop();
  // Account leases (PostgreSQL; daemon_leases.cpp). With SQLite this process holds every account.
  bool shares_accounts() const { return leases_ != nullptr; }
  bool holds(const std::string& account) const;
  void start_leases();
  void account_gained(const std::string& account, const store::Tenure& tenure);
  void account_lost(const std::string& account, lease::LossReason reason);
  boost::asio::awaitable<void> resume_account(std::string account);
  // Starts the schedules of `account`'s exports (at start-up rules: catch-up decides missed slots).
  void start_schedules_of(const std::string& account);
  void stop_schedules_of(const std::string& account);
  boost::asio::awaitable<void> shut_down();
  void prune_history();
  // The admin endpoint (daemon_admin.cpp).
  void start_admin();
  // admin_web as of the running configuration: the users now, the TLS context to build (or null).
  void apply_admin_web(const std::shared_ptr<boost::asio::ssl::context>& tls);
  admin::AdminResponse metrics_page();
  admin::AdminResponse health_page();
  admin::AdminResponse jobs_page();
  void write_waiting(metrics::PrometheusText& out) const;
  void write_leases(metrics::PrometheusText& out) const;
  // PostgreSQL: what the admin pages show of the job table, read on the database thread every few
  // seconds (an admin request must not wait on the network to the database on the loop).
  struct TableView {
    std::vector<store::ExportStateCount> counts;
    std::map<std::string, TimePoint> last_success;
    std::vector<store::Job> recent;
    std::optional<std::chrono::steady_clock::time_point> read_at;  // the last successful read
    std::string error;                                             // why the last read failed
  };
  boost::asio::awaitable<void> table_view_loop();
  std::vector<store::ExportStateCount> job_counts();
  std::map<std::string, TimePoint> last_successes();
  std::vector<store::Job> recent_jobs();
  std::optional<std::string> database_problem();
  void reload();
  void stop();
  // The clients `config` needs: existing ones kept, new ones built (which may throw: a CA bundle);
  // nothing running changes until commit_clients.
  struct ClientSet;
  ClientSet make_clients(const config::Config& config);
  void commit_clients(ClientSet clients);
  std::string status_line() const;
  std::map<store::JobState, int> running_by_state() const;  // the jobs in flight here, by their row's state

  boost::asio::io_context io_;
  std::filesystem::path config_path_;
  std::shared_ptr<const config::Config> config_;
  const Logger& log_;
  // PostgreSQL: the account leases this instance holds, which fence the store's writes.
  std::shared_ptr<store::LeaseBook> leases_;
  std::unique_ptr<store::JobStore> store_owner_;
  store::JobStore& store_;
  // PostgreSQL: the one thread the store's calls run on, so the loop never waits on the network.
  std::unique_ptr<boost::asio::thread_pool> database_;
  store::StoreWriter writer_;  // the jobs' writes: Busy retried off the loop's critical path
  Random random_;
  SystemdNotifier systemd_;
  AsyncSemaphore transfers_;
  metrics::Metrics metrics_;
  boost::asio::thread_pool blocking_{1};  // fsync of published files
  // One HTTP client (idle connections, TLS context) per CA bundle, shared by the accounts using it.
  http::ClientPool http_clients_{io_.get_executor()};
  std::map<std::string, std::shared_ptr<apsis_one::ApsisClient>> clients_;
  std::map<std::string, std::shared_ptr<ScheduleTask>> schedules_;
  // Every job this process runs: waiting ones as rows in their account's queue, working ones with a step.
  std::unique_ptr<dispatch::Dispatcher> dispatcher_;
  // Resumed rows of one export usually carry the same definition text: parse it once, share it.
  std::map<std::string, std::weak_ptr<const config::ExportDefinition>, std::less<>> definitions_;
  std::int64_t last_seen_job_id_{0};  // highest id read from the table; trigger rows come above it
  boost::asio::signal_set signals_;  // registered at construction: a SIGTERM during start-up is ours
  boost::asio::steady_timer trigger_timer_;
  boost::asio::steady_timer status_timer_;
  boost::asio::steady_timer maintenance_timer_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::shared_ptr<admin::AuthService> admin_auth_;  // admin_web.basic_auth_users; shared with admin_
  // PostgreSQL: claims and renews this instance's share of the accounts (daemon_leases.cpp).
  std::unique_ptr<lease::LeaseKeeper> keeper_;
  TimePoint started_at_{Clock::now()};
  std::chrono::steady_clock::time_point started_steady_{std::chrono::steady_clock::now()};
  std::string instance_id_;
  TableView table_view_;
  boost::asio::steady_timer table_view_timer_{io_};  // names this process in manifests and, on PostgreSQL, in `instances` and `leases`
  bool stopping_{false};
};

}  // namespace apsis::service
