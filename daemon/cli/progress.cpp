#include "cli/progress.hpp"

#include <cstdio>

namespace apsis::cli {

std::string human_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB"};
  std::size_t unit = 0;
  while (bytes >= 1000.0 && unit + 1 < std::size(kUnits)) {
    bytes /= 1000.0;
    ++unit;
  }
  char text[32];
  if (unit == 0)
    std::snprintf(text, sizeof text, "%.0f B", bytes);
  else
    std::snprintf(text, sizeof text, bytes < 10.0 ? "%.2f %s" : "%.1f %s", bytes, kUnits[unit]);
  return text;
}

std::string human_duration(Milliseconds duration) {
  const auto ms = std::max<std::int64_t>(0, duration.count());
  char text[32];
  if (ms < 1000)
    std::snprintf(text, sizeof text, "%lldms", static_cast<long long>(ms));
  else if (ms < 60'000)
    std::snprintf(text, sizeof text, "%llds", static_cast<long long>(ms / 1000));
  else if (ms < 3'600'000)
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms / 1000 % 60));
  else
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms / 60'000 % 60));
  return text;
}

std::string describe_progress(const ProgressSnapshot& s) {
  const auto since = [&](TimePoint t) { return std::chrono::duration_cast<Milliseconds>(s.now - t); };
  std::string line = "job " + std::to_string(s.job.id) + " · ";
  switch (s.job.state) {
    case store::JobState::pending:
      line += "submitting";
      break;
    case store::JobState::submitted:
      line += "waiting for the file · " + std::to_string(s.job.polls) + (s.job.polls == 1 ? " poll" : " polls");
      if (s.job.next_poll_at && *s.job.next_poll_at > s.now)
        line += " · next in " + human_duration(std::chrono::duration_cast<Milliseconds>(*s.job.next_poll_at - s.now));
      break;
    case store::JobState::downloading: {
      line += "downloading · " + human_bytes(static_cast<double>(s.bytes_received));
      const auto elapsed = s.download_started ? since(*s.download_started) : Milliseconds(0);
      if (elapsed.count() > 0)
        line += " · " + human_bytes(static_cast<double>(s.bytes_received) * 1000.0 / static_cast<double>(elapsed.count())) + "/s";
      break;
    }
    default:
      line += std::string(store::to_string(s.job.state));
  }
  return line + " · " + human_duration(since(s.started));
}

}  // namespace apsis::cli
