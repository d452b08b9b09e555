#include "util/fault_injection.hpp"

#ifdef APSIS_FAULT_INJECTION

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>

namespace apsis::fault {
namespace {

struct Countdown {
  std::atomic<long> calls{0};
  std::atomic<long> fail_at{0};
  std::mutex log_mutex;
  std::string log_file;

  Countdown() {
    if (const char* at = std::getenv("APSIS_FAULT_AT")) fail_at = std::strtol(at, nullptr, 10);
    if (const char* log = std::getenv("APSIS_FAULT_LOG")) log_file = log;
  }
};

Countdown& countdown() {
  static Countdown instance;
  return instance;
}

}  // namespace

bool inject(std::string_view point, std::string_view detail) {
  auto& state = countdown();
  const long call = ++state.calls;
  if (state.fail_at <= 0 || call != state.fail_at) return false;
  const std::lock_guard lock(state.log_mutex);
  if (!state.log_file.empty()) {
    std::ofstream log(state.log_file, std::ios::app);
    log << point << '\t' << detail.substr(0, detail.find('\n')) << '\n';
  }
  return true;
}

void arm(long fail_at, std::string_view log_file) {
  auto& state = countdown();
  const std::lock_guard lock(state.log_mutex);
  state.calls = 0;
  state.fail_at = fail_at;
  state.log_file = std::string(log_file);
}

long operations() { return countdown().calls; }

}  // namespace apsis::fault

#endif
