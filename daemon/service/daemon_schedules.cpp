// The daemon's schedules: one coroutine per scheduled export, which starts the slot that is due
// (due_slots decides which), outlives errors, and tells /healthz when it stops advancing.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

#include "jobs/definition_json.hpp"
#include "service/daemon.hpp"
#include "service/daemon_internal.hpp"

namespace apsis::service {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Schedules re-check the wall clock at least this often, so a clock step or a suspended machine
// does not leave a timer aimed at the wrong instant.
constexpr Milliseconds kMaxScheduleSleep = 1min;
// A slot the loop reaches later than this after its time (a stall, a suspend, a clock step forward)
// was missed: `catchup:` decides whether it runs. At start-up every slot already passed was missed.
constexpr Milliseconds kLateAfter = 1min;
// /healthz names a schedule whose due slot has not started this long after it was due.
constexpr Milliseconds kScheduleStuckAfter = 5s;

schedule::CatchUp catch_up_rule(config::Catchup catchup) {
  return catchup == config::Catchup::latest ? schedule::CatchUp::latest : schedule::CatchUp::none;
}

LogFields schedule_fields(const config::ExportDefinition& definition) {
  return {.export_name = definition.name, .account = definition.account};
}

}  // namespace

std::map<std::string, std::shared_ptr<Daemon::ScheduleTask>> Daemon::make_schedules(
    const config::Config& config, bool at_start, const std::optional<std::string>& only_account) {
  const TimePoint now = Clock::now();
  std::map<std::string, std::shared_ptr<ScheduleTask>> tasks;
  for (const auto& [name, definition] : config.exports) {
    if (!definition.schedule) continue;
    if (only_account && definition.account != *only_account) continue;
    if (!holds(definition.account)) continue;  // the account's lease holder runs its schedules
    std::string error;
    auto schedule = schedule::Schedule::parse(*definition.schedule, definition.timezone, &error);
    if (!schedule) {
      log_.log(Level::error, "schedule not started: " + error, {.export_name = name, .account = definition.account});
      continue;
    }
    // Where the schedule stands: a running one keeps its place over a reload; otherwise the export's
    // newest slot in the table (a slot not after it is never created, whatever the clock says), and
    // without one, now. At start-up every slot since then was missed: catch-up decides.
    TimePoint handled = now;
    const auto running = schedules_.find(name);
    if (!at_start && running != schedules_.end()) {
      handled = running->second->handled;
    } else if (const auto last = store_.latest_slot(name)) {
      handled = at_start ? *last : std::max(*last, now);
    }
    tasks[name] = std::make_shared<ScheduleTask>(io_, definition, std::move(*schedule), handled, at_start);
  }
  return tasks;
}

void Daemon::start_schedules(std::map<std::string, std::shared_ptr<ScheduleTask>> schedules) {
  schedules_ = std::move(schedules);
  for (const auto& [name, task] : schedules_) spawn_schedule(name, task);
}

void Daemon::spawn_schedule(const std::string& name, const std::shared_ptr<ScheduleTask>& task) {
  asio::co_spawn(io_, schedule_loop(task), [this, name](std::exception_ptr error) {
    if (error && !is_cancellation(error))
      log_.log(Level::error, "schedule stopped: " + describe(error), {.export_name = name});
  });
}

void Daemon::stop_schedules() {
  for (auto& [name, task] : schedules_) {
    task->stopped = true;
    task->timer.cancel();
  }
  schedules_.clear();
}

// Never ends on an error: the job table locked past its busy timeout or a full disk is logged, and the
// slot is tried again after a back-off (with the catch-up rule, so a long stall starts one job, not all).
asio::awaitable<void> Daemon::schedule_loop(std::shared_ptr<ScheduleTask> task) {
  Milliseconds retry = kRetryFirst;
  while (!task->stopped) {
    Milliseconds sleep{};
    try {
      sleep = advance_schedule(*task);
      if (task->error)
        log_.log(Level::notice, "schedule advancing again; next slot " + format_iso8601(task->next),
                 schedule_fields(task->definition));
      task->error.reset();
      retry = kRetryFirst;
    } catch (const std::exception& e) {
      task->error = e.what();
      sleep = retry;
      retry = std::min(retry * 2, kRetryMax);
      log_.log(Level::error, std::string("schedule: ") + e.what() + "; trying again in " + seconds_text(sleep),
               schedule_fields(task->definition));
    }
    if (task->stopped) break;
    task->timer.expires_after(sleep);
    co_await task->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

Milliseconds Daemon::advance_schedule(ScheduleTask& task) {
  const auto due = schedule::due_slots(task.schedule, task.handled, Clock::now(),
                                       task.at_start ? Milliseconds::zero() : kLateAfter,
                                       catch_up_rule(task.definition.catchup));
  if (due.first_passed) {
    const auto upto =
        due.start ? " up to before " + format_iso8601(*due.start) : " up to " + format_iso8601(due.handled);
    const std::string rule(config::to_string(task.definition.catchup));
    log_.log(Level::notice,
             "slot(s) from " + format_iso8601(*due.first_passed) + upto + " passed without a job (catchup: " + rule + ")",
             schedule_fields(task.definition));
  }
  if (due.start) {
    if (due.caught_up)
      log_.log(Level::notice, "catching up the missed slot " + format_iso8601(*due.start), schedule_fields(task.definition));
    start_slot(task.definition, *due.start);  // throws before any change if the row cannot be written
  }
  task.handled = due.handled;
  task.at_start = false;
  task.next = task.schedule.next_after(task.handled);
  const auto until = std::chrono::duration_cast<Milliseconds>(task.next - Clock::now());
  task.due = std::chrono::steady_clock::now() + std::max(until, Milliseconds::zero());
  return std::clamp(until, Milliseconds::zero(), kMaxScheduleSleep);
}

std::vector<std::string> Daemon::stuck_schedules() const {
  std::vector<std::string> stuck;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [name, task] : schedules_)
    if (now - task->due > kScheduleStuckAfter) stuck.push_back(name);
  return stuck;
}

void Daemon::start_slot(const config::ExportDefinition& definition, TimePoint slot) {
  if (stopping_) return;
  const TimePoint now = Clock::now();
  store::Job job;
  try {
    job = store_.create(definition.name, slot, jobs::definition_to_json(definition), now);
  } catch (const store::DuplicateSlot&) {
    return;  // this slot already has its job (it was resumed or caught up)
  }
  // last_seen_job_id_ only advances over rows read back from the table: a `trigger` row inserted
  // just before this one has a lower id and must still be picked up.
  if (definition.overlap == config::Overlap::skip && dispatcher_->running_of_export(definition.name) > 0) {
    job.state = store::JobState::skipped;
    job.finished_at = now;
    job.error = "the export's previous job was still running (overlap: skip)";
    store_.save(job);
    log_.log(Level::notice, "slot " + format_iso8601(slot) + " skipped: " + *job.error,
             {.export_name = job.export_name, .job_id = job.id, .account = definition.account});
    return;
  }
  spawn(std::move(job), std::make_shared<const config::ExportDefinition>(definition));
}

}  // namespace apsis::service
