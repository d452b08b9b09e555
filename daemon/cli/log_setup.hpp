// Which shape the log takes (util/log.hpp), decided once per process from --log-format and from
// where stderr goes.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cli/arguments.hpp"
#include "util/log.hpp"

namespace apsis::cli {

// The environment the log depends on, read once in main.
struct LogEnvironment {
  std::optional<std::string> journal_stream;  // JOURNAL_STREAM, set by systemd: "DEVICE:INODE" of stderr
  // APSIS_JOURNAL_SOCKET: where journal entries go instead of /run/systemd/journal/socket. A hook for
  // tests and diagnostics (point it at a socket of your own), not a setting.
  std::optional<std::string> journal_socket;

  static LogEnvironment from_process();
};

// --log-format text|json; nullopt when not given. Throws UsageError on another value.
std::optional<LogFormat> requested_log_format(const Arguments& arguments);

// The choice, stated once here for the man page:
// - `--log-format json`: JSON lines on stderr, even under systemd. Whoever asks for JSON by name has a
//   shipper reading stderr, and the journal keeps the lines as MESSAGE= all the same.
// - otherwise, when stderr is the journal's stream (JOURNAL_STREAM matches stderr's device and inode):
//   journal entries over the native protocol, with EXPORT=, JOB_ID=, ACCOUNT=, HTTP_STATUS=;
//   an entry the socket refuses becomes a "<N>"-prefixed text line on stderr.
// - otherwise text lines on stderr.
// `erase_line`: `once` draws a progress line on the terminal (text lines only).
std::unique_ptr<Logger> make_logger(std::optional<LogFormat> requested, const LogEnvironment& environment,
                                    bool erase_line = false);

}  // namespace apsis::cli
