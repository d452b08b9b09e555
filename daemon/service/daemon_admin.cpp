// The daemon's admin endpoint: /metrics, /healthz and /jobs, answered on the event loop from the
// daemon's own counters, its schedules, its running jobs and the job table.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "admin/auth_service.hpp"
#include "admin/listen_address.hpp"
#include "admin/tls_context.hpp"
#include "jobs/job_steps.hpp"
#include "metrics/prometheus.hpp"
#include "service/daemon.hpp"
#include "service/daemon_internal.hpp"

namespace apsis::service {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using metrics::MetricType;
using metrics::PrometheusText;

// Timer lateness buckets, in milliseconds: from "on time" to "the loop is in trouble".
constexpr std::array<std::int64_t, 10> kLatenessBoundsMs{1, 5, 10, 25, 50, 100, 250, 500, 1000, 4000};
constexpr std::size_t kMaxRunningListed = 1000;  // /jobs stays small with 100 000 jobs in flight
constexpr int kRecentJobs = 20;
// PostgreSQL: how often the admin pages' view of the job table is read, and when /healthz calls an
// unanswered read a failing database.
constexpr auto kTableViewInterval = std::chrono::seconds(5);
constexpr auto kTableViewStale = std::chrono::seconds(20);
// A write waiting out another connection's lock for longer than this makes /healthz answer 503.
constexpr Milliseconds kBusyUnhealthyAfter{2000};

double seconds_since_epoch(TimePoint t) {
  return static_cast<double>(std::chrono::duration_cast<Milliseconds>(t.time_since_epoch()).count()) / 1000.0;
}

json::value optional_time(const std::optional<TimePoint>& t) {
  return t ? json::value(format_iso8601(*t)) : json::value(nullptr);
}

json::object job_json(const store::Job& job) {
  return {{"id", job.id},
          {"export", job.export_name},
          {"scheduled_for", format_iso8601(job.scheduled_for)},
          {"state", store::to_string(job.state)},
          {"polls", job.polls},
          {"last_http_status", job.last_http_status ? json::value(*job.last_http_status) : json::value(nullptr)},
          {"next_poll_at", optional_time(job.next_poll_at)},
          {"finished_at", optional_time(job.finished_at)},
          {"error", job.error ? json::value(*job.error) : json::value(nullptr)},
          {"output_path", job.output_path ? json::value(*job.output_path) : json::value(nullptr)},
          {"bytes", job.bytes ? json::value(*job.bytes) : json::value(nullptr)},
          {"hook_result", job.hook_result ? json::value(*job.hook_result) : json::value(nullptr)}};
}

// A job in flight as /jobs shows it: its row's protocol columns, and what it waits for — its
// account's API budget, APSIS One to make the file, or nothing (a step runs: polling, downloading,
// finishing).
json::object running_json(const jobs::ActiveJob& job, bool waiting_for_budget) {
  const auto& row = job.row;
  json::value waiting_for = nullptr;
  if (waiting_for_budget)
    waiting_for = "budget";
  else if (!job.working && row.state == store::JobState::submitted)
    waiting_for = "apsis";
  return {{"id", row.id},
          {"export", job.definition->name},
          {"scheduled_for", format_iso8601(row.scheduled_for)},
          {"state", store::to_string(row.state)},
          {"polls", row.polls},
          {"last_http_status", row.last_http_status ? json::value(row.last_http_status) : json::value(nullptr)},
          {"next_poll_at", optional_time(row.next_poll_at)},
          {"bytes_received", job.bytes_received},
          {"waiting_for", std::move(waiting_for)}};
}

admin::AdminResponse json_response(unsigned status, const json::value& body) {
  return {status, "application/json", json::serialize(body) + "\n"};
}

void write_counters(PrometheusText& out, const metrics::Metrics& m) {
  out.family("apsis_submissions_total", "Export requests (POST) sent to APSIS One, retries included",
             MetricType::counter)
      .sample(static_cast<double>(m.submissions));
  out.family("apsis_polls_total", "GET requests on poll URLs", MetricType::counter).sample(static_cast<double>(m.polls));
  out.family("apsis_http_responses_total", "APSIS One answers by request and HTTP status code", MetricType::counter);
  for (const auto& [key, count] : m.http_responses)
    out.sample({{"request", std::string(metrics::to_string(key.first))}, {"code", std::to_string(key.second)}},
               static_cast<double>(count));
  out.family("apsis_token_renewals_total", "Access tokens fetched from the token endpoint", MetricType::counter)
      .sample(static_cast<double>(m.token_renewals));
  out.family("apsis_downloaded_bytes_total", "Body bytes of export files received", MetricType::counter)
      .sample(static_cast<double>(m.bytes_downloaded));
  out.family("apsis_downloads_total", "Export files published", MetricType::counter)
      .sample(static_cast<double>(m.downloads));
  out.family("apsis_download_seconds_total", "Time from a file's first body byte to its publish, summed",
             MetricType::counter)
      .sample(m.download_seconds);
  out.family("apsis_hook_runs_total", "on_success commands run, by result (ok, failed, timeout)", MetricType::counter);
  for (const auto& [result, count] : m.hook_runs) out.sample({{"result", result}}, static_cast<double>(count));
  out.family("apsis_retention_deleted_files_total", "Published files deleted by keep: rules", MetricType::counter)
      .sample(static_cast<double>(m.files_removed));
  out.family("apsis_job_row_writes_total", "Job table row updates by running jobs", MetricType::counter)
      .sample(static_cast<double>(m.job_row_writes));
}

// Someone guessing passwords shows as `wrong` and `throttled` rising. Written only while users are
// configured: without them every request passes unchecked and there is nothing to count.
void write_admin_auth(PrometheusText& out, const admin::AuthService& auth) {
  const auto& c = auth.counts();
  out.family("apsis_admin_auth_total",
             "Admin endpoint requests by authentication result (an unknown user counts as wrong)",
             MetricType::counter);
  for (const auto& [result, count] : {std::pair{"ok", c.ok}, std::pair{"cached", c.cached},
                                      std::pair{"wrong", c.wrong}, std::pair{"malformed", c.malformed},
                                      std::pair{"missing", c.missing}, std::pair{"throttled", c.throttled},
                                      std::pair{"busy", c.busy}})
    out.sample({{"result", result}}, static_cast<double>(count));
  out.family("apsis_admin_auth_throttled_addresses", "Client addresses refused with 429 for too many wrong passwords",
             MetricType::gauge)
      .sample(static_cast<double>(auth.throttled_addresses()));
}

void write_lateness(PrometheusText& out, const metrics::MillisecondHistogram& lateness) {
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;
  for (const auto ms : kLatenessBoundsMs) {
    bounds.push_back(static_cast<double>(ms) / 1000.0);
    counts.push_back(lateness.count_at_most(Milliseconds(ms)));
  }
  out.family("apsis_poll_timer_lateness_seconds", "How late back-off timers woke their jobs", MetricType::histogram)
      .histogram({}, bounds, counts, static_cast<double>(lateness.sum().count()) / 1000.0, lateness.count());
}

// Every JobStore call blocks the loop: the longest is the longest the loop waited on SQLite.
void write_store_calls(PrometheusText& out, const store::CallTimes& times) {
  const auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  out.family("apsis_store_call_seconds_max", "Longest job table call so far (the event loop waits on each)",
             MetricType::gauge)
      .sample(seconds(times.max()));
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;
  for (std::size_t i = 0; i < store::CallTimes::kBounds.size(); ++i) {
    bounds.push_back(seconds(store::CallTimes::kBounds[i]));
    counts.push_back(times.count_at_most(i));
  }
  out.family("apsis_store_call_seconds", "Time the event loop spent in each job table call", MetricType::histogram)
      .histogram({}, bounds, counts, seconds(times.total()), times.calls());
}

}  // namespace

void Daemon::start_admin() {
  if (!config_->admin_listen) return;
  const auto endpoint = admin::parse_listen_address(*config_->admin_listen);
  if (!endpoint) throw std::runtime_error("admin_listen: invalid address " + *config_->admin_listen);
  admin::AdminServer::Options options;
  options.on_error = [this](std::string problem) { log_.log(Level::warning, "admin endpoint: " + problem); };
  admin_auth_ = std::make_shared<admin::AuthService>(
      config_->admin_web.basic_auth_users, admin::AuthLimits{}, admin::AuthService::Now{},
      [this](std::string what) { log_.log(Level::warning, "admin endpoint: " + what); });
  options.auth = admin_auth_;
  options.tls = admin_tls_context(*config_);
  admin_ = std::make_unique<admin::AdminServer>(
      io_.get_executor(), *endpoint,
      std::map<std::string, admin::AdminHandler>{{"/metrics", [this] { return metrics_page(); }},
                                                 {"/healthz", [this] { return health_page(); }},
                                                 {"/jobs", [this] { return jobs_page(); }}},
      std::move(options));
  admin_->start();
  const auto bound = admin_->local_endpoint();
  const auto host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
  const auto& web = config_->admin_web;
  log_.log(Level::notice, std::string("admin endpoint on ") + (web.tls ? "https://" : "http://") + host + ":" +
                              std::to_string(bound.port()) + " (/metrics, /healthz, /jobs)" +
                              (web.basic_auth_users.empty()
                                   ? ""
                                   : ", basic auth for " + std::to_string(web.basic_auth_users.size()) + " user(s)"));
}

std::shared_ptr<asio::ssl::context> admin_tls_context(const config::Config& config) {
  if (!config.admin_listen || !config.admin_web.tls) return nullptr;
  const auto& tls = *config.admin_web.tls;
  return admin::make_tls_server_context({tls.cert_file, tls.key_file, tls.tls13_only});
}

void Daemon::apply_admin_web(const std::shared_ptr<asio::ssl::context>& tls) {
  if (!admin_) return;
  admin_->set_tls(tls);
  admin_auth_->set_users(config_->admin_web.basic_auth_users);  // and forgets every cached login
}

admin::AdminResponse Daemon::metrics_page() {
  PrometheusText out;
  out.family("apsis_exportd_start_time_seconds", "When this daemon started, Unix time", MetricType::gauge)
      .sample(seconds_since_epoch(started_at_));
  out.family("apsis_jobs", "Jobs in the job table by export and state", MetricType::gauge);
  for (const auto& row : job_counts())
    out.sample({{"export", row.export_name}, {"state", std::string(store::to_string(row.state))}},
               static_cast<double>(row.count));
  auto running = running_by_state();
  out.family("apsis_jobs_running", "Jobs this daemon is running now, by state", MetricType::gauge);
  for (const auto state : {store::JobState::pending, store::JobState::submitted, store::JobState::downloading})
    out.sample({{"state", std::string(store::to_string(state))}}, running[state]);
  write_waiting(out);
  write_counters(out, metrics_);
  write_lateness(out, metrics_.poll_timer_lateness);
  write_store_calls(out, store_.call_times());
  out.family("apsis_store_writes_queued", "Still-in-progress row updates waiting for the next batch",
             MetricType::gauge)
      .sample(static_cast<double>(writer_.queued()));
  out.family("apsis_export_last_success_timestamp_seconds", "When each export last published a file, Unix time",
             MetricType::gauge);
  for (const auto& [name, when] : last_successes())
    out.sample({{"export", name}}, seconds_since_epoch(when));
  out.family("apsis_export_next_run_timestamp_seconds", "Each scheduled export's next slot, Unix time",
             MetricType::gauge);
  for (const auto& [name, task] : schedules_) out.sample({{"export", name}}, seconds_since_epoch(task->next));
  if (keeper_) write_leases(out);
  if (admin_auth_ && admin_auth_->enabled()) write_admin_auth(out, *admin_auth_);
  return {200, std::string(PrometheusText::kContentType), out.str()};
}

// PostgreSQL: which accounts this instance runs, how many instances share them, and whether they
// run the same configuration.
void Daemon::write_leases(PrometheusText& out) const {
  const auto lease = keeper_->snapshot();
  out.family("apsis_lease_held", "Accounts whose lease this instance holds (1 per account)", MetricType::gauge);
  for (const auto& account : lease.held) out.sample({{"account", account}, {"instance", lease.instance_id}}, 1);
  out.family("apsis_lease_accounts_held", "How many accounts this instance runs", MetricType::gauge)
      .sample(static_cast<double>(lease.held.size()));
  out.family("apsis_lease_instances_live", "Instances sharing the job table, as of the last lease renewal",
             MetricType::gauge)
      .sample(static_cast<double>(lease.live_instances.size()));
  out.family("apsis_lease_config_mismatches", "Live instances running a configuration file different from this one's",
             MetricType::gauge)
      .sample(static_cast<double>(lease.config_mismatches.size()));
  out.family("apsis_lease_connected", "Whether the lease keeper's database connection is up (1) or not (0)",
             MetricType::gauge)
      .sample(lease.connected ? 1 : 0);
  if (lease.last_renewal)
    out.family("apsis_lease_last_renewal_timestamp_seconds", "When this instance last renewed its leases, Unix time",
               MetricType::gauge)
        .sample(seconds_since_epoch(*lease.last_renewal));
}

// Jobs held back by the account's budget apart from jobs waiting for APSIS to make the file, and
// each account's budget: who waits, what is under way, how far a 429 slowed it.
void Daemon::write_waiting(PrometheusText& out) const {
  const auto waiting = dispatcher_->waiting();
  out.family("apsis_jobs_waiting", "Running jobs waiting for the account's API budget or for APSIS One to make the file",
             MetricType::gauge);
  out.sample({{"for", "budget"}}, static_cast<double>(waiting.for_budget));
  out.sample({{"for", "apsis"}}, static_cast<double>(waiting.for_apsis));
  using budget::CallKind;
  constexpr std::array kinds{CallKind::submit, CallKind::event_submit, CallKind::poll, CallKind::token};
  const auto per_call = [&](const char* name, const char* help, MetricType type, auto value) {
    out.family(name, help, type);
    for (const auto& [account, client] : clients_)
      for (const auto kind : kinds)
        out.sample({{"account", account}, {"call", std::string(budget::to_string(kind))}},
                   static_cast<double>(value(client->budget(), kind)));
  };
  out.family("apsis_budget_waiting", "Requests waiting for their turn in the account's budget", MetricType::gauge);
  for (const auto& [account, client] : clients_)
    for (const auto kind : kinds)
      out.sample({{"account", account}, {"call", std::string(budget::to_string(kind))}},
                 static_cast<double>(client->budget().waiting(kind) + dispatcher_->queued(account, kind)));
  per_call("apsis_budget_in_flight", "Requests sent and not yet answered", MetricType::gauge,
           [](const budget::AccountBudget& b, CallKind k) { return b.in_flight(k); });
  per_call("apsis_budget_pace_ratio", "Share of the configured budget in use after 429 slowdowns (1 = all of it)",
           MetricType::gauge, [](const budget::AccountBudget& b, CallKind k) { return b.pace(k); });
  per_call("apsis_budget_throttled_total", "429 answers to the account's requests (how far they slowed it: pace)",
           MetricType::counter,
           [](const budget::AccountBudget& b, CallKind k) { return b.throttles(k); });
}

// With SQLite the admin pages read the table directly (a local file); with PostgreSQL they read what
// table_view_loop last read on the database thread.
std::vector<store::ExportStateCount> Daemon::job_counts() {
  return shares_accounts() ? table_view_.counts : store_.count_by_export_and_state();
}

std::map<std::string, TimePoint> Daemon::last_successes() {
  return shares_accounts() ? table_view_.last_success : store_.last_success_by_export();
}

std::vector<store::Job> Daemon::recent_jobs() {
  return shares_accounts() ? table_view_.recent : store_.list({.limit = kRecentJobs});
}

std::optional<std::string> Daemon::database_problem() {
  if (!shares_accounts()) {
    try {
      store_.unfinished(0, 1);  // an indexed read: the job table answers
      return std::nullopt;
    } catch (const std::exception& e) {
      return e.what();
    }
  }
  const auto now = std::chrono::steady_clock::now();
  if (table_view_.read_at && now - *table_view_.read_at < kTableViewStale) return std::nullopt;
  if (!table_view_.read_at && now - started_steady_ < kTableViewStale) return std::nullopt;  // first read under way
  return "the job table has not answered for " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - table_view_.read_at.value_or(started_steady_)).count()) +
         " s" + (table_view_.error.empty() ? std::string() : ": " + table_view_.error);
}

asio::awaitable<void> Daemon::table_view_loop() {
  while (!stopping_) {
    try {
      std::function<TableView(store::JobStore&)> read = [](store::JobStore& store) {
        TableView view;
        view.counts = store.count_by_export_and_state();
        view.last_success = store.last_success_by_export();
        view.recent = store.list({.limit = kRecentJobs});
        return view;
      };
      auto view = co_await writer_.call(std::move(read));
      view.read_at = std::chrono::steady_clock::now();
      table_view_ = std::move(view);
    } catch (const std::exception& e) {
      if (is_cancellation(std::current_exception())) throw;
      table_view_.error = e.what();  // /healthz says so once the view is stale
    }
    table_view_timer_.expires_after(kTableViewInterval);
    co_await table_view_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

admin::AdminResponse Daemon::health_page() {
  json::object body{{"status", "ok"},
                    {"started_at", format_iso8601(started_at_)},
                    {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_at_).count()},
                    {"jobs_running", dispatcher_->size()},
                    {"exports", config_->exports.size()},
                    {"stopping", stopping_}};
  unsigned status = 200;
  if (const auto problem = database_problem()) {
    body["status"] = "failing";
    body["database"] = *problem;
    status = 503;
  } else {
    body["database"] = "ok";
  }
  // Jobs waiting to write their rows past another connection's lock: nothing is lost, but nothing
  // advances either.
  if (const auto since = writer_.busy_since(); since && std::chrono::steady_clock::now() - *since > kBusyUnhealthyAfter) {
    const auto waited = std::chrono::duration_cast<Milliseconds>(std::chrono::steady_clock::now() - *since);
    const auto busy_at = Clock::now() - waited;
    body["status"] = "failing";
    body["database"] = "database busy since " + format_iso8601(busy_at) + " (" + std::to_string(waited.count() / 1000) +
                       " s): another process holds the job table's write lock; writes wait and retry";
    status = 503;
  }
  // A schedule whose due slot has not started (the job table refuses the row, say) is not advancing.
  json::array stuck;
  for (const auto& name : stuck_schedules()) stuck.emplace_back(name);
  if (!stuck.empty()) {
    body["status"] = "failing";
    status = 503;
  }
  body["schedules_stuck"] = std::move(stuck);
  if (stopping_) status = 503;
  return json_response(status, body);
}

admin::AdminResponse Daemon::jobs_page() {
  json::array running;
  dispatcher_->for_each([&](const jobs::ActiveJob& job) {
    if (running.size() < kMaxRunningListed)
      running.push_back(running_json(job, dispatcher_->waiting_for_budget(job.row.id)));
  });
  json::array recent;
  for (const auto& job : recent_jobs())
    if (store::is_final(job.state)) recent.push_back(job_json(job));
  return json_response(200, json::object{{"running_total", dispatcher_->size()},
                                         {"running", std::move(running)},
                                         {"recent", std::move(recent)}});
}

}  // namespace apsis::service
