#include "cli/log_setup.hpp"

#include <unistd.h>

#include <cstdlib>
#include <exception>

#include "util/journal.hpp"

namespace apsis::cli {
namespace {

std::optional<std::string> variable(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace

LogEnvironment LogEnvironment::from_process() { return {variable("JOURNAL_STREAM"), variable("APSIS_JOURNAL_SOCKET")}; }

std::optional<LogFormat> requested_log_format(const Arguments& arguments) {
  const auto value = arguments.option("log-format");
  if (!value) return std::nullopt;
  if (*value == "text") return LogFormat::text;
  if (*value == "json") return LogFormat::json;
  throw UsageError("--log-format must be text or json, not '" + *value + "'");
}

std::unique_ptr<Logger> make_logger(std::optional<LogFormat> requested, const LogEnvironment& environment,
                                    bool erase_line) {
  if (requested == LogFormat::json) return std::make_unique<Logger>(stderr, LogOptions{.format = LogFormat::json});
  const bool stderr_is_journal =
      environment.journal_stream && is_journal_stream(*environment.journal_stream, STDERR_FILENO);
  if (!stderr_is_journal) return std::make_unique<Logger>(stderr, LogOptions{.erase_line = erase_line});
  const LogOptions journal_lines{.priority_prefix = true};
  std::string problem;
  try {
    return std::make_unique<Logger>(stderr, journal_lines,
                                    JournalSender(environment.journal_socket.value_or(std::string(kJournalSocket))));
  } catch (const std::exception& e) {
    problem = e.what();
  }
  auto log = std::make_unique<Logger>(stderr, journal_lines);
  log->log(Level::warning, "no journal entries with fields (" + problem + "): writing plain lines to stderr");
  return log;
}

}  // namespace apsis::cli
