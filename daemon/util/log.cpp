#include "util/log.hpp"

namespace apsis {

Logger::Logger(std::FILE* out, LogOptions options) : out_(out), options_(std::move(options)) {
  if (!options_.now) options_.now = system_now();
}

Logger::Logger(std::FILE* out, LogOptions options, JournalSender journal) : Logger(out, std::move(options)) {
  journal_.emplace(std::move(journal));
}

void Logger::log(Level level, std::string_view message, const LogFields& fields) const {
  if (static_cast<int>(level) > static_cast<int>(options_.threshold)) return;
  if (journal_) return send_to_journal(level, message, fields);
  if (options_.format == LogFormat::json) return write_line(json_line(options_.now(), level, message, fields));
  std::string line = options_.erase_line ? "\r\033[K" : "";
  if (options_.priority_prefix)
    line += "<" + std::to_string(static_cast<int>(level)) + ">";
  else
    line += std::string(level_name(level)) + ": ";
  write_line(line + text_line(message, fields));
}

void Logger::write_line(std::string line) const {
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

void Logger::send_to_journal(Level level, std::string_view message, const LogFields& fields) const {
  const auto error = journal_->send(encode_journal_entry(journal_fields(level, message, fields)));
  const int previous = journal_failure_.exchange(error.value());
  const auto prefix = [](Level l) { return "<" + std::to_string(static_cast<int>(l)) + ">"; };
  if (error && error.value() != previous)
    write_line(prefix(Level::warning) + "journal socket " + journal_->socket_path().string() + ": " + error.message() +
               "; writing log lines to stderr until it takes them again");
  if (error) write_line(prefix(level) + text_line(message, fields));
}

}  // namespace apsis
