// The daemon's bookkeeping types, shared by daemon.cpp and the admin endpoint (daemon_admin.cpp).
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "jobs/job_lifecycle.hpp"
#include "service/daemon.hpp"

namespace apsis::service {

struct Daemon::ScheduleTask {
  ScheduleTask(boost::asio::io_context& io, config::ExportDefinition d, schedule::Schedule s, TimePoint handled_through,
               bool starting)
      : definition(std::move(d)), schedule(std::move(s)), timer(io), handled(handled_through), at_start(starting) {}
  config::ExportDefinition definition;
  schedule::Schedule schedule;
  boost::asio::steady_timer timer;
  TimePoint handled;  // every slot up to this one has its job, or was passed over
  TimePoint next{};   // the first slot after `handled`
  // When `next` is due by the monotonic clock: a clock step or a suspended machine does not move it,
  // so /healthz can tell a schedule that stopped advancing from one whose wall clock jumped.
  std::chrono::steady_clock::time_point due{std::chrono::steady_clock::now()};
  std::optional<std::string> error;  // why the last attempt to start a slot failed
  bool at_start;                     // the first look after the daemon started: every passed slot was missed
  bool stopped{false};
};

struct Daemon::RunningJob {
  boost::asio::cancellation_signal cancel;
  std::string export_name;
  std::unique_ptr<jobs::JobLifecycle> lifecycle;  // the coroutine runs on this object
};

}  // namespace apsis::service
