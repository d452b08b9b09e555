#include "util/log_entry.hpp"

#include <cstdio>

namespace apsis {
namespace {

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void append_json_member(std::string& out, std::string_view name, std::string_view value) {
  out += ',';
  append_json_string(out, name);
  out += ':';
  append_json_string(out, value);
}

void append_json_member(std::string& out, std::string_view name, std::int64_t value) {
  out += ',';
  append_json_string(out, name);
  out += ':';
  out += std::to_string(value);
}

}  // namespace

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

std::string text_line(std::string_view message, const LogFields& fields) {
  std::string line;
  if (!fields.export_name.empty()) line += "export=" + fields.export_name + " ";
  if (fields.job_id) line += "job=" + std::to_string(*fields.job_id) + " ";
  line.append(message);
  std::string more;
  if (!fields.account.empty()) more += "account=" + fields.account;
  if (fields.http_status) more += (more.empty() ? "" : " ") + ("http_status=" + std::to_string(*fields.http_status));
  if (!more.empty()) line += " [" + more + "]";
  return line;
}

std::string json_line(TimePoint time, Level level, std::string_view message, const LogFields& fields) {
  std::string line = "{\"time\":";
  append_json_string(line, format_iso8601(time));
  append_json_member(line, "level", level_name(level));
  append_json_member(line, "message", message);
  if (!fields.export_name.empty()) append_json_member(line, "export", fields.export_name);
  if (fields.job_id) append_json_member(line, "job_id", *fields.job_id);
  if (!fields.account.empty()) append_json_member(line, "account", fields.account);
  if (fields.http_status) append_json_member(line, "http_status", *fields.http_status);
  line += '}';
  return line;
}

JournalFields journal_fields(Level level, std::string_view message, const LogFields& fields) {
  JournalFields out{{"MESSAGE", std::string(message)},
                    {"PRIORITY", std::to_string(static_cast<int>(level))},
                    {"SYSLOG_IDENTIFIER", "apsis-exportd"}};
  if (!fields.export_name.empty()) out.emplace_back("EXPORT", fields.export_name);
  if (fields.job_id) out.emplace_back("JOB_ID", std::to_string(*fields.job_id));
  if (!fields.account.empty()) out.emplace_back("ACCOUNT", fields.account);
  if (fields.http_status) out.emplace_back("HTTP_STATUS", std::to_string(*fields.http_status));
  return out;
}

}  // namespace apsis
