#include "util/log.hpp"

#include <cstdlib>

namespace apsis {
namespace {

std::string_view level_name(Level level) {
  switch (level) {
    case Level::error: return "error";
    case Level::warning: return "warning";
    case Level::notice: return "notice";
    case Level::info: return "info";
    case Level::debug: return "debug";
  }
  return "info";
}

}  // namespace

Logger::Logger(std::FILE* out, bool priority_prefix, Level threshold, bool erase_line)
    : out_(out), priority_prefix_(priority_prefix), threshold_(threshold), erase_line_(erase_line) {}

bool Logger::stderr_is_journal() { return std::getenv("JOURNAL_STREAM") != nullptr; }

void Logger::log(Level level, std::string_view message) const {
  if (static_cast<int>(level) > static_cast<int>(threshold_)) return;
  std::string line = erase_line_ ? "\r\033[K" : "";
  if (priority_prefix_)
    line += "<" + std::to_string(static_cast<int>(level)) + ">";
  else
    line += std::string(level_name(level)) + ": ";
  line.append(message);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

void Logger::job(Level level, std::string_view export_name, std::int64_t job_id, std::string_view message) const {
  log(level, "export=" + std::string(export_name) + " job=" + std::to_string(job_id) + " " + std::string(message));
}

}  // namespace apsis
