// A job's steps: the short coroutines that do its I/O while it works. Between steps a job is data
// (its JobRow and an entry in its account's queue, dispatch/dispatcher.hpp); it holds no coroutine.
//
// One step runs from a budget ticket to the next wait: submit (the POST and its retries), or poll
// (one GET; on a 200 the same step drains the body into the file, publishes it, and runs the
// after-publish work). Every outcome goes through decide() and is written to the job table before
// the next network step; the step returns the decision, which says where the job waits next.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <optional>

#include "apsis/export_api.hpp"
#include "budget/account_budget.hpp"
#include "config/config.hpp"
#include "jobs/decide.hpp"
#include "metrics/metrics.hpp"
#include "store/job_store.hpp"
#include "store/store_writer.hpp"
#include "util/async_semaphore.hpp"
#include "util/log.hpp"

namespace apsis::jobs {

// What the steps need from around them; all owned elsewhere and outliving every step.
// How stale a polling job's row may get (poll count, next poll time) between "still in progress"
// answers: losing them in a crash costs one early poll; writing each one would cost a row write per poll.
inline constexpr Milliseconds kProgressNoteInterval{60'000};

struct JobContext {
  boost::asio::any_io_executor executor;
  store::JobStore& store;
  store::StoreWriter& writer;
  std::shared_ptr<const config::Config> config;
  NowFunction now;
  Random& random;
  const Logger& log;
  AsyncSemaphore* transfers{nullptr};           // max_concurrent_downloads; null = unlimited
  boost::asio::thread_pool* blocking{nullptr};  // writes, hashes and fsyncs downloads; null = on the loop
  metrics::Metrics* metrics{nullptr};           // null = not measured
  std::string instance{};                       // this process's instance id (manifests, leases)
};

// A job in memory: its row, its export's definition (shared by all its jobs), and how its download
// is going while it has one.
struct ActiveJob {
  JobRow row;
  std::shared_ptr<const config::ExportDefinition> definition;
  std::uint64_t bytes_received{0};
  std::optional<TimePoint> download_started;
  std::optional<TimePoint> last_polled_at;  // since this process runs it
  std::optional<TimePoint> row_written_at;  // the last write of its row (a 404 is noted at most once a minute)
  bool working{false};  // a step runs now
};

// The job's export, id and account, for its log entries.
inline LogFields log_fields(const ActiveJob& job) {
  return {.export_name = job.definition->name, .job_id = job.row.id, .account = job.definition->account};
}

// Runs the job's next step with a ticket of its account's budget (for a pending job a submit, else
// a poll). The context is taken by value: a coroutine keeps its parameters, and a reference to a
// caller's temporary would dangle at the first suspension. Never throws but for cancellation (shutdown: the row stays resumable); every other
// failure ends as a decision, written to the table.
boost::asio::awaitable<Decision> run_step(JobContext context, ActiveJob& job, apsis_one::ExportApi& api,
                                          budget::AccountBudget::Ticket ticket);

// Where the file goes for this job, before any collision.
std::filesystem::path output_path(const config::Config& config, const config::ExportDefinition& definition,
                                  const JobRow& row);

}  // namespace apsis::jobs
