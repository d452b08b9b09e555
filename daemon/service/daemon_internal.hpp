// The daemon's bookkeeping types and helpers, shared by daemon.cpp, its schedules (daemon_schedules.cpp)
// and the admin endpoint (daemon_admin.cpp).
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "service/config_hash.hpp"
#include "service/daemon.hpp"
#include "util/errors.hpp"

namespace apsis::service {

// A loop that failed (the job table locked past its busy timeout, a full disk) tries again after
// this, doubling up to kRetryMax.
inline constexpr Milliseconds kRetryFirst = std::chrono::seconds(1);
inline constexpr Milliseconds kRetryMax = std::chrono::seconds(30);

std::string seconds_text(Milliseconds delay);  // "30 s"

// The admin endpoint's TLS context from admin_web.tls_server_config (daemon_admin.cpp); null
// without it or without admin_listen. Throws when the files no longer load.
std::shared_ptr<boost::asio::ssl::context> admin_tls_context(const config::Config& config);

// Account leases (daemon_leases.cpp): the configured account names.
std::vector<std::string> account_names_of(const config::Config& config);

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


}  // namespace apsis::service
