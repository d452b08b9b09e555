// One job's whole life as one coroutine: submit → poll with back-off → download → publish.
// Every state change is written to the job table before the next network step, so a crash at any
// point leaves a row that says exactly where the job stood.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <map>
#include <memory>
#include <optional>

#include "apsis/apsis_client.hpp"
#include "config/config.hpp"
#include "util/backoff.hpp"
#include "jobs/resubmit_rules.hpp"
#include "metrics/metrics.hpp"
#include "util/log.hpp"
#include "sink/download.hpp"
#include "store/job_store.hpp"
#include "util/async_semaphore.hpp"

namespace apsis::jobs {

// What a job needs from the daemon around it; all owned elsewhere and outliving the job.
struct JobEnvironment {
  boost::asio::any_io_executor executor;  // the event loop the job runs on
  store::JobStore& store;
  std::shared_ptr<apsis_one::ApsisClient> client;  // of the export's account; outlives a reload
  std::shared_ptr<const config::Config> config;    // the configuration the job started under
  NowFunction now;
  Random& random;
  const Logger& log;
  AsyncSemaphore* transfers{nullptr};  // max_concurrent_downloads; null = unlimited
  boost::asio::thread_pool* blocking{nullptr};  // writes, hashes and fsyncs downloads; null = on the loop
  metrics::Metrics* metrics{nullptr};           // null = not measured
};

class JobLifecycle {
 public:
  // How stale a polling job's row may get (poll count, next poll time) between state changes.
  static constexpr Milliseconds kProgressSaveInterval{60'000};

  // Jobs of one export share one definition: with thousands in flight, a copy each would dominate memory.
  JobLifecycle(JobEnvironment environment, std::shared_ptr<const config::ExportDefinition> definition,
               store::Job job);

  // Runs the job from wherever its row says it stands to a final state; job() is then the final row.
  // Cancellation (shutdown) ends it early with the row left resumable. Returns nothing: a returned
  // row would sit in every job's coroutine frame for its whole life.
  boost::asio::awaitable<void> run();

  // Where the job stands now (for status lines), and its final row once run() has returned.
  const store::Job& job() const { return job_; }
  // The download under way: body bytes received so far, and when its first byte came.
  std::uint64_t bytes_received() const { return bytes_received_; }
  std::optional<TimePoint> download_started() const { return download_started_; }
  // Waiting for the account's API budget right now (rather than for APSIS or a timer).
  bool waiting_for_budget() const { return budget_wait_.waiting; }

 private:
  boost::asio::awaitable<void> submit();
  Milliseconds until_next_poll() const;
  void record_timer_lateness();
  boost::asio::awaitable<void> poll_once();
  void on_file_ready(const http::Response& head);
  void on_answer(const apsis_one::PollAnswer& answer);
  boost::asio::awaitable<void> publish();
  boost::asio::awaitable<void> deliver(const sink::Published& published);
  boost::asio::awaitable<void> write_manifest();
  boost::asio::awaitable<void> apply_retention();
  boost::asio::awaitable<void> run_hook();
  std::map<std::string, std::string> hook_environment() const;
  void on_503(const apsis_one::PollAnswer& answer);
  void give_up(GiveUp reason, std::string why);
  void still_in_progress();
  void poll_again_after(Milliseconds delay, store::JobState state);
  void schedule_poll(Milliseconds delay, store::JobState state);  // in memory only
  void finish(store::JobState state, std::string error);
  void save();
  std::filesystem::path output_path() const;

  JobEnvironment env_;
  std::shared_ptr<const config::ExportDefinition> definition_;
  store::Job job_;
  boost::asio::steady_timer poll_timer_;
  std::unique_ptr<sink::Download> download_;
  std::optional<TimePoint> download_started_;
  std::uint64_t bytes_received_{0};
  TimePoint last_saved_{};
  apsis_one::BudgetWait budget_wait_;
};

}  // namespace apsis::jobs
