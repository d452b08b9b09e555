// The daemon's bookkeeping types, shared by daemon.cpp and the admin endpoint (daemon_admin.cpp).
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string>

#include "jobs/job_lifecycle.hpp"
#include "service/daemon.hpp"

namespace apsis::service {

struct Daemon::ScheduleTask {
  ScheduleTask(boost::asio::io_context& io, config::ExportDefinition d, schedule::Schedule s, TimePoint after)
      : definition(std::move(d)), schedule(std::move(s)), timer(io), last_slot(after) {}
  config::ExportDefinition definition;
  schedule::Schedule schedule;
  boost::asio::steady_timer timer;
  TimePoint last_slot;  // slots after this one are still to come
  TimePoint next{};
  bool stopped{false};
};

struct Daemon::RunningJob {
  boost::asio::cancellation_signal cancel;
  std::string export_name;
  std::unique_ptr<jobs::JobLifecycle> lifecycle;  // the coroutine runs on this object
};

}  // namespace apsis::service
