#include "service/systemd_notifier.hpp"

#include <systemd/sd-daemon.h>

#include <ctime>
#include <string>

namespace apsis::service {

void SystemdNotifier::ready() const { sd_notify(0, "READY=1"); }

void SystemdNotifier::reloading() const {
  // MONOTONIC_USEC lets systemd >= 253 match this reload to the ExecReload it started.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  sd_notify(0, ("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec)).c_str());
}

void SystemdNotifier::stopping() const { sd_notify(0, "STOPPING=1"); }

void SystemdNotifier::status(std::string_view text) const {
  sd_notify(0, ("STATUS=" + std::string(text)).c_str());
}

void SystemdNotifier::watchdog() const { sd_notify(0, "WATCHDOG=1"); }

std::optional<Milliseconds> SystemdNotifier::watchdog_interval() const {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::duration_cast<Milliseconds>(std::chrono::microseconds(usec / 2));
}

}  // namespace apsis::service
