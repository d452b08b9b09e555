// One job's whole life as one coroutine: submit → poll with back-off → download → publish.
// Every state change is written to the job table before the next network step, so a crash at any
// point leaves a row that says exactly where the job stood.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>

#include "apsis/apsis_client.hpp"
#include "config/config.hpp"
#include "jobs/backoff.hpp"
#include "service/log.hpp"
#include "sink/download.hpp"
#include "store/job_store.hpp"
#include "util/async_semaphore.hpp"

namespace apsis::jobs {

// What a job needs from the daemon around it; all owned elsewhere and outliving the job.
struct JobEnvironment {
  store::JobStore& store;
  std::shared_ptr<apsis_one::ApsisClient> client;  // of the export's account; outlives a reload
  std::shared_ptr<const config::Config> config;    // the configuration the job started under
  NowFunction now;
  Random& random;
  const service::Logger& log;
  AsyncSemaphore* transfers{nullptr};  // max_concurrent_downloads; null = unlimited
  boost::asio::thread_pool* blocking{nullptr};  // writes, hashes and fsyncs downloads; null = on the loop
};

class JobLifecycle {
 public:
  JobLifecycle(JobEnvironment environment, config::ExportDefinition definition, store::Job job);

  // Runs the job from wherever its row says it stands to a final state and returns the final row.
  // Cancellation (shutdown) ends it early with the row left resumable.
  boost::asio::awaitable<store::Job> run();

  // Where the job stands now (for status lines).
  const store::Job& job() const { return job_; }

 private:
  boost::asio::awaitable<void> submit();
  boost::asio::awaitable<void> poll_once();
  void on_file_ready(const http::Response& head);
  void on_answer(const apsis_one::PollAnswer& answer);
  boost::asio::awaitable<void> publish();
  void poll_again_after(Milliseconds delay, store::JobState state);
  void expire(std::string why);
  void finish(store::JobState state, std::string error);
  void save();
  std::filesystem::path output_path() const;

  JobEnvironment env_;
  boost::asio::any_io_executor executor_;  // the event loop the job runs on
  config::ExportDefinition definition_;
  store::Job job_;
  std::unique_ptr<sink::Download> download_;
};

}  // namespace apsis::jobs
