// Talks to systemd when started by it (Type=notify): readiness, a one-line status, watchdog
// keep-alives, reload and stop. Outside systemd every call is a no-op.
#pragma once

#include <optional>
#include <string_view>

#include "util/time.hpp"

namespace apsis::service {

class SystemdNotifier {
 public:
  void ready() const;
  void reloading() const;
  void stopping() const;
  void status(std::string_view text) const;
  void watchdog() const;
  // How often to send WATCHDOG=1 (half of WatchdogSec), when the unit asks for it.
  std::optional<Milliseconds> watchdog_interval() const;
};

}  // namespace apsis::service
