// One log entry in each of the shapes the Logger writes: a text line, a JSON line, journal fields.
// Pure functions: the Logger decides where they go.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/journal.hpp"
#include "util/time.hpp"

namespace apsis {

// syslog priorities, as journald's PRIORITY= and the sd-daemon "<N>" prefix take them.
enum class Level { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

std::string_view level_name(Level level);

// What an entry is about, where the caller knows it; empty/absent fields are left out of every shape.
// They let an operator filter one export's, job's or account's story: `journalctl EXPORT=daily`,
// `jq 'select(.export == "daily")'`, `grep export=daily`.
struct LogFields {
  std::string export_name{};
  std::optional<std::int64_t> job_id{};
  std::string account{};
  std::optional<int> http_status{};  // the HTTP status of the APSIS One answer the entry is about
};

// "export=daily job=7 message [account=main http_status=503]", with the fields that are present. The
// message follows `export=` and `job=` as it always has (operators and tests grep "export=X job=N text");
// the later fields trail it.
std::string text_line(std::string_view message, const LogFields& fields);

// {"time":"2026-11-29T06:30:00.000Z","level":"info","message":...,"export":...,"job_id":7,"account":...,
// "http_status":503}, without a trailing newline.
std::string json_line(TimePoint time, Level level, std::string_view message, const LogFields& fields);

// MESSAGE=, PRIORITY=, SYSLOG_IDENTIFIER=apsis-exportd, then EXPORT=, JOB_ID=, ACCOUNT=, HTTP_STATUS=.
JournalFields journal_fields(Level level, std::string_view message, const LogFields& fields);

}  // namespace apsis
