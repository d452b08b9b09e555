#include "dispatch/dispatcher.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>

#include "util/errors.hpp"

namespace apsis::dispatch {
namespace {

namespace asio = boost::asio;
using budget::CallKind;
using SteadyClock = std::chrono::steady_clock;

// While the budget waits for an answer before it can say when the next request may go, the
// queue looks again this soon. Each step's end looks at once; this only bounds the wait when an
// answer's head came long before its step ended (a download). Short, it would wake thousands of
// idle accounts many times a second.
constexpr Milliseconds kRecheck{1000};
// The history of an export is read again after this (and whenever one of its jobs succeeds).
constexpr std::chrono::minutes kHistoryRefresh{60};

CallKind submit_kind(const config::ExportDefinition& definition) {
  return definition.kind == config::ExportKind::events ? CallKind::event_submit : CallKind::submit;
}

// A fenced write found the account's lease with another instance (store/fence.hpp).
bool lease_lost(const std::exception_ptr& error) {
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const store::LeaseLost&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

struct Dispatcher::AccountQueue {
  AccountQueue(const asio::any_io_executor& executor, std::string account_name)
      : name(std::move(account_name)), timer(executor) {}
  std::string name;
  std::shared_ptr<apsis_one::ExportApi> api;
  std::deque<std::int64_t> submits;  // pending jobs, first come first served
  PollPlanner planner;
  asio::steady_timer timer;
  std::optional<SteadyClock::time_point> armed_for;
  std::size_t working{0};
};

Dispatcher::Dispatcher(jobs::JobContext context) : context_(std::move(context)) {}

Dispatcher::~Dispatcher() { stop(); }

void Dispatcher::set_accounts(std::map<std::string, std::shared_ptr<apsis_one::ExportApi>> accounts) {
  for (auto& [name, api] : accounts) queue_of(name).api = std::move(api);
  std::vector<std::int64_t> orphans;
  for (auto& [name, queue] : queues_) {
    if (accounts.contains(name) || !queue->api) continue;
    queue->api.reset();  // steps under way keep their own reference until they end
    queue->timer.cancel();
    queue->submits.clear();
    for (const auto& [id, job] : jobs_)
      if (job.definition->account == name && !job.working) orphans.push_back(id);
  }
  for (const auto id : orphans) fail_orphan(id);
  for (auto& [name, queue] : queues_) pump(*queue);
}

void Dispatcher::set_config(std::shared_ptr<const config::Config> config) { context_.config = std::move(config); }

Dispatcher::AccountQueue& Dispatcher::queue_of(const std::string& account) {
  auto found = queues_.find(account);
  if (found == queues_.end())
    found = queues_.emplace(account, std::make_unique<AccountQueue>(context_.executor, account)).first;
  return *found->second;
}

void Dispatcher::add(jobs::JobRow row, std::shared_ptr<const config::ExportDefinition> definition) {
  const auto id = row.id;
  if (jobs_.contains(id)) return;
  auto& queue = queue_of(definition->account);
  if (!queue.api) throw std::runtime_error("account '" + definition->account + "' is not in the configuration");
  ++per_export_[definition->name];
  jobs::ActiveJob active;
  active.row = std::move(row);
  active.definition = std::move(definition);
  auto& job = jobs_.emplace(id, std::move(active)).first->second;
  enqueue(queue, job);
  pump(queue);
}

const jobs::ActiveJob* Dispatcher::find(std::int64_t id) const {
  const auto found = jobs_.find(id);
  return found == jobs_.end() ? nullptr : &found->second;
}

int Dispatcher::running_of_export(const std::string& name) const {
  const auto found = per_export_.find(name);
  return found == per_export_.end() ? 0 : found->second;
}

void Dispatcher::enqueue(AccountQueue& queue, jobs::ActiveJob& job) {
  const auto& row = job.row;
  if (row.state == store::JobState::pending) {
    queue.submits.push_back(row.id);
    return;
  }
  const auto now = context_.now();
  const auto submitted = row.submitted_at.value_or(now);
  queue.planner.add({row.id, submitted, row.next_poll_at.value_or(now), row.poll_expires_at.value_or(TimePoint::max()),
                     job.last_polled_at.value_or(submitted), row.polls, typical_duration(job.definition->name)});
}

void Dispatcher::pump(AccountQueue& queue) {
  if (stopping_ || !queue.api) return;
  auto& budget = queue.api->budget();
  const auto now = context_.now();
  while (!queue.submits.empty()) {
    const auto found = jobs_.find(queue.submits.front());
    if (found == jobs_.end()) {
      queue.submits.pop_front();
      continue;
    }
    auto ticket = budget.try_acquire(submit_kind(*found->second.definition));
    if (!ticket) break;
    queue.submits.pop_front();
    start(queue, found->second, std::move(*ticket));
  }
  if (context_.config) {
    if (const auto account = context_.config->accounts.find(queue.name); account != context_.config->accounts.end()) {
      const auto& polls = account->second.budget.polls;
      const double pace = std::max(0.01, budget.pace(CallKind::poll));
      queue.planner.set_poll_interval(Milliseconds(static_cast<std::int64_t>(
          static_cast<double>(polls.window.count()) / std::max(1, polls.count) / pace)));
    }
  }
  while (queue.planner.next_due(now) == now) {
    auto ticket = budget.try_acquire(CallKind::poll);
    if (!ticket) break;
    const auto next = queue.planner.take_next(now);
    start(queue, jobs_.at(next->job_id), std::move(*ticket));
  }
  arm(queue, now);
}

// One timer per account: for the budget's next opening when work is due, else for the next job's
// earliest poll.
void Dispatcher::arm(AccountQueue& queue, TimePoint now) {
  auto& budget = queue.api->budget();
  const auto steady_now = SteadyClock::now();
  std::optional<SteadyClock::time_point> wake;
  const auto consider = [&](SteadyClock::time_point at) { wake = wake ? std::min(*wake, at) : at; };
  if (!queue.submits.empty()) {
    const auto found = jobs_.find(queue.submits.front());
    const auto kind = found == jobs_.end() ? CallKind::submit : submit_kind(*found->second.definition);
    consider(budget.next_allowed(kind).value_or(steady_now + kRecheck));
  }
  if (const auto due = queue.planner.next_due(now)) {
    if (*due <= now)
      consider(budget.next_allowed(CallKind::poll).value_or(steady_now + kRecheck));
    else
      consider(steady_now + std::chrono::duration_cast<SteadyClock::duration>(*due - now));
  }
  if (!wake) {
    // Nothing to wait for: an armed timer would keep a stopping event loop alive.
    if (queue.armed_for) queue.timer.cancel();
    queue.armed_for.reset();
    return;
  }
  wake = std::max(*wake, steady_now);
  if (queue.armed_for == wake) return;
  queue.armed_for = wake;
  queue.timer.expires_at(*wake);
  queue.timer.async_wait([this, &queue](const boost::system::error_code& error) {
    if (error) return;  // re-armed, or stopping
    queue.armed_for.reset();
    pump(queue);
  });
}

void Dispatcher::start(AccountQueue& queue, jobs::ActiveJob& job, budget::AccountBudget::Ticket ticket) {
  const auto id = job.row.id;
  job.working = true;
  ++queue.working;
  auto& working = working_[id];
  working = std::make_unique<Working>();
  asio::co_spawn(context_.executor, step(id, job, *queue.api, std::move(ticket)),
                 asio::bind_cancellation_slot(
                     working->signal.slot(),
                     [this, id, api = queue.api](std::exception_ptr error, jobs::Decision decision) {
                       // The step's cancellation signal must outlive this handler: clean up afterwards.
                       asio::post(context_.executor, [this, id, error, decision = std::move(decision)]() mutable {
                         step_done(id, error, std::move(decision));
                       });
                     }));
}

asio::awaitable<jobs::Decision> Dispatcher::step(std::int64_t id, jobs::ActiveJob& job, apsis_one::ExportApi& api,
                                                 budget::AccountBudget::Ticket ticket) {
  if (stopping_ || released_.contains(id)) throw boost::system::system_error(asio::error::operation_aborted);
  working_.at(id)->started = true;
  auto context = context_;  // moved in: no temporary that owns memory inside the co_await (GCC 12)
  co_return co_await jobs::run_step(std::move(context), job, api, std::move(ticket));
}

void Dispatcher::step_done(std::int64_t id, std::exception_ptr error, jobs::Decision decision) {
  working_.erase(id);
  const auto found = jobs_.find(id);
  if (found == jobs_.end()) return;
  auto& job = found->second;
  auto& queue = queue_of(job.definition->account);
  job.working = false;
  --queue.working;
  if (released_.erase(id) > 0 || lease_lost(error)) {
    context_.log.log(Level::notice, "left to the instance that holds account '" + job.definition->account + "' now",
                     jobs::log_fields(job));
    let_go(found);
    pump(queue);
    return;
  }
  if (error) {
    // Steps end in a decision; only shutdown cancels one. Anything else is a bug, said loudly: the
    // row stays as last written, and the job resumes at the next start.
    if (!is_cancellation(error) || !stopping_)
      context_.log.log(Level::error, "step ended unexpectedly: " + describe(error), jobs::log_fields(job));
    return;
  }
  job.row = decision.row;
  if (decision.action == jobs::Action::finish) {
    if (job.row.state == store::JobState::succeeded) typical_.erase(job.definition->name);
    forget(found, decision);
  } else if (!queue.api) {
    fail_orphan(id);
  } else {
    enqueue(queue, job);  // (a step never ends waiting to download; it would poll again)
  }
  pump(queue);
}

std::size_t Dispatcher::release_account(const std::string& account) {
  auto& queue = queue_of(account);
  queue.submits.clear();
  std::vector<std::int64_t> ids;
  for (const auto& [id, job] : jobs_)
    if (job.definition->account == account) ids.push_back(id);
  for (const auto id : ids) {
    const auto found = jobs_.find(id);
    queue.planner.remove(id);
    if (!found->second.working) {
      let_go(found);
      continue;
    }
    released_.insert(id);
    // Only a started step is cancelled (see working_); one not started yet ends at its start.
    if (const auto working = working_.find(id); working != working_.end() && working->second->started)
      working->second->signal.emit(asio::cancellation_type::terminal);
  }
  if (queue.api) arm(queue, context_.now());
  return ids.size();
}

void Dispatcher::let_go(std::unordered_map<std::int64_t, jobs::ActiveJob>::iterator job) {
  const auto& name = job->second.definition->name;
  if (--per_export_[name] <= 0) per_export_.erase(name);
  jobs_.erase(job);
}

void Dispatcher::forget(std::unordered_map<std::int64_t, jobs::ActiveJob>::iterator job, const jobs::Decision& decision) {
  if (on_finished) on_finished(job->second, decision);
  const auto& name = job->second.definition->name;
  if (--per_export_[name] <= 0) per_export_.erase(name);
  jobs_.erase(job);
}

void Dispatcher::fail_orphan(std::int64_t id) {
  auto& job = jobs_.at(id);
  job.working = true;  // leaves every queue's reach while its row is written
  queue_of(job.definition->account).planner.remove(id);
  asio::co_spawn(context_.executor, record_orphan(id, job.definition->account), [this, id](std::exception_ptr error) {
    const auto found = jobs_.find(id);
    if (found == jobs_.end()) return;
    if (error) {
      // Shutdown, most likely: the row stays as it was and the next start says what is wrong.
      if (!stopping_)
        context_.log.log(Level::error, "could not record: " + describe(error), jobs::log_fields(found->second));
      found->second.working = false;
      return;
    }
    jobs::Decision decision;
    decision.row = found->second.row;
    decision.row.state = store::JobState::failed;
    decision.action = jobs::Action::finish;
    forget(found, decision);
  });
}

asio::awaitable<void> Dispatcher::record_orphan(std::int64_t id, std::string account) {
  const std::string why = "account '" + account + "' is no longer in the configuration";
  std::function<void(store::JobStore&)> write = [id, columns = store::FinishedColumns{
                                                         store::JobState::failed, context_.now(), why, std::nullopt,
                                                         std::nullopt, std::nullopt, {}, {}, {}, {}}](store::JobStore& store) {
    store.record_finished(id, columns);
  };
  co_await context_.writer.write(std::move(write));
  context_.log.log(Level::error, why, jobs::log_fields(jobs_.at(id)));
}

std::optional<Milliseconds> Dispatcher::typical_duration(const std::string& export_name) {
  const auto now = context_.now();
  if (const auto known = typical_.find(export_name); known != typical_.end() && now - known->second.first < kHistoryRefresh)
    return known->second.second;
  std::optional<Milliseconds> typical;
  try {
    typical = context_.store.typical_duration(export_name);
  } catch (const std::exception& e) {
    // Only a hint for the planner: without it the export is planned like a first run.
    context_.log.log(Level::warning, std::string("reading the history: ") + e.what(), {.export_name = export_name});
  }
  typical_[export_name] = {now, typical};
  return typical;
}

Dispatcher::Waiting Dispatcher::waiting() const {
  Waiting counts;
  const auto now = context_.now();
  for (const auto& [id, job] : jobs_) {
    if (job.working)
      ++counts.working;
    else if (job.row.state == store::JobState::pending || job.row.next_poll_at.value_or(now) <= now)
      ++counts.for_budget;
    else
      ++counts.for_apsis;
  }
  return counts;
}

std::size_t Dispatcher::queued(const std::string& account, CallKind kind) const {
  const auto found = queues_.find(account);
  if (found == queues_.end()) return 0;
  const auto& queue = *found->second;
  if (kind == CallKind::poll) return queue.planner.due();
  if (kind == CallKind::token) return 0;
  return static_cast<std::size_t>(std::count_if(queue.submits.begin(), queue.submits.end(), [&](std::int64_t id) {
    const auto* job = find(id);
    return job && submit_kind(*job->definition) == kind;
  }));
}

bool Dispatcher::waiting_for_budget(std::int64_t id) const {
  const auto* job = find(id);
  if (!job || job->working) return false;
  const auto now = context_.now();
  return job->row.state == store::JobState::pending || job->row.next_poll_at.value_or(now) <= now;
}

void Dispatcher::stop() {
  if (stopping_) return;
  stopping_ = true;
  for (auto& [name, queue] : queues_) queue->timer.cancel();
  for (auto& [id, working] : working_)
    if (working->started) working->signal.emit(asio::cancellation_type::terminal);
}

}  // namespace apsis::dispatch
