// Every job this process runs, and one queue per account that sends their work at the account's
// budget pace. A waiting job is a row in memory and an entry in its account's queue: a FIFO of jobs
// to submit, and a PollPlanner of jobs to poll. When the budget grants a request, the dispatcher
// starts the job's next step (jobs/job_steps.hpp) as a short coroutine with that ticket; the step's
// decision puts the job back in a queue, or ends it.
//
// Single-threaded: use from the event loop it runs on.
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "apsis/export_api.hpp"
#include "dispatch/poll_planner.hpp"
#include "jobs/job_steps.hpp"

namespace apsis::dispatch {

class Dispatcher {
 public:
  explicit Dispatcher(jobs::JobContext context);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // The accounts' APIs, each with its budget. A reload hands in the new set: an account's queue
  // keeps its jobs when its API object stays the same or is replaced.
  void set_accounts(std::map<std::string, std::shared_ptr<apsis_one::ExportApi>> accounts);
  // The configuration new steps run with (steps under way keep theirs).
  void set_config(std::shared_ptr<const config::Config> config);

  // Takes a job in: a pending one waits for a submit, any other for its next poll. Throws if its
  // account has no API.
  void add(jobs::JobRow row, std::shared_ptr<const config::ExportDefinition> definition);
  bool contains(std::int64_t id) const { return jobs_.contains(id); }
  const jobs::ActiveJob* find(std::int64_t id) const;
  std::size_t size() const { return jobs_.size(); }
  int running_of_export(const std::string& name) const;
  template <class Visit>
  void for_each(Visit&& visit) const {
    for (const auto& [id, job] : jobs_) visit(job);
  }

  struct Waiting {
    std::size_t for_budget{0};  // due, waiting for the account's budget to allow the request
    std::size_t for_apsis{0};   // waiting out a back-off: APSIS One is still preparing the file
    std::size_t working{0};     // a step runs now
  };
  Waiting waiting() const;
  // Requests of `kind` waiting in `account`'s queue for its budget: jobs to submit (plain or event
  // exports), or jobs due for a poll.
  std::size_t queued(const std::string& account, budget::CallKind kind) const;
  // Whether this job waits for its account's budget right now (rather than for APSIS or a step).
  bool waiting_for_budget(std::int64_t id) const;

  // Called when a job reached its final state (after its after-publish work).
  std::function<void(const jobs::ActiveJob&, const jobs::Decision&)> on_finished;

  // The account's lease went to another instance (PostgreSQL): its jobs leave this process without a
  // write, since the new owner resumes them from their rows. Steps under way are cancelled and
  // forgotten when they end. Returns how many jobs left.
  std::size_t release_account(const std::string& account);

  // Cancels every step and every queue's timer; the rows stay resumable.
  void stop();

 private:
  struct AccountQueue;
  AccountQueue& queue_of(const std::string& account);
  void pump(AccountQueue& queue);
  void arm(AccountQueue& queue, TimePoint now);
  void start(AccountQueue& queue, jobs::ActiveJob& job, budget::AccountBudget::Ticket ticket);
  void step_done(std::int64_t id, std::exception_ptr error, jobs::Decision decision);
  void enqueue(AccountQueue& queue, jobs::ActiveJob& job);
  // A job whose account left the configuration (a reload) ends failed, saying so, instead of
  // waiting for a budget that no longer exists.
  void fail_orphan(std::int64_t id);
  boost::asio::awaitable<void> record_orphan(std::int64_t id, std::string account);
  void forget(std::unordered_map<std::int64_t, jobs::ActiveJob>::iterator job, const jobs::Decision& decision);
  // Removes a job that another instance now runs: no row written, no on_finished.
  void let_go(std::unordered_map<std::int64_t, jobs::ActiveJob>::iterator job);
  std::optional<Milliseconds> typical_duration(const std::string& export_name);

  jobs::JobContext context_;
  std::unordered_map<std::int64_t, jobs::ActiveJob> jobs_;  // node-based: a step holds a reference
  std::map<std::string, std::unique_ptr<AccountQueue>, std::less<>> queues_;
  // Steps under way. Asio 1.26 throws out of the event loop when a coroutine is cancelled before its
  // first resumption, so a step is only cancelled once it has started (and one that starts after
  // stop() ends at once).
  struct Working {
    boost::asio::cancellation_signal signal;
    bool started{false};
  };
  std::unordered_map<std::int64_t, std::unique_ptr<Working>> working_;
  boost::asio::awaitable<jobs::Decision> step(std::int64_t id, jobs::ActiveJob& job, apsis_one::ExportApi& api,
                                              budget::AccountBudget::Ticket ticket);
  std::unordered_map<std::string, int> per_export_;
  std::unordered_set<std::int64_t> released_;  // steps of released accounts, forgotten when they end
  std::unordered_map<std::string, std::pair<TimePoint, std::optional<Milliseconds>>> typical_;  // cached, with when
  bool stopping_{false};
};

}  // namespace apsis::dispatch
