#include "cli/progress.hpp"

#include "cli/status_format.hpp"

namespace apsis::cli {
namespace {

std::string short_duration(TimePoint from, TimePoint to) {
  return format_duration_short(std::chrono::duration_cast<std::chrono::seconds>(to - from));
}

}  // namespace

std::string describe_progress(const ProgressSnapshot& s) {
  std::string line = "job " + std::to_string(s.job.id) + " · ";
  switch (s.job.state) {
    case store::JobState::pending:
      line += "submitting";
      break;
    case store::JobState::submitted:
      line += "waiting for the file · " + std::to_string(s.job.polls) + (s.job.polls == 1 ? " poll" : " polls");
      if (s.job.next_poll_at && *s.job.next_poll_at > s.now)
        line += " · next in " + short_duration(s.now, *s.job.next_poll_at);
      break;
    case store::JobState::downloading: {
      line += "downloading";
      if (!s.download_started) break;  // a job followed in the service: its bytes are not in the row
      line += " · " + format_size(static_cast<std::int64_t>(s.bytes_received));
      const auto elapsed = std::chrono::duration_cast<Milliseconds>(s.now - s.download_started.value_or(s.now));
      if (elapsed.count() > 0)
        line += " · " + format_size(static_cast<std::int64_t>(s.bytes_received * 1000 / elapsed.count())) + "/s";
      break;
    }
    default:
      line += std::string(store::to_string(s.job.state));
  }
  return line + " · " + short_duration(s.started, s.now);
}

}  // namespace apsis::cli
