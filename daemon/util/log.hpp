// The daemon's log. Three shapes, one chosen at start (cli/log_setup.cpp says which when):
// - text lines on stderr ("info: export=daily job=7 submitted"), the default; with a "<N>" sd-daemon
//   priority prefix instead of the level name when stderr is the journal's stream;
// - JSON lines on stderr (--log-format json), one object per entry, for log shippers;
// - journal entries over journald's native protocol with EXPORT=, JOB_ID=, ACCOUNT=, HTTP_STATUS=
//   fields, when stderr is the journal. An entry the journal does not take is written as a text line
//   on stderr instead (which systemd also hands to the journal): no entry is lost unannounced.
// Thread-safe: every entry is one write (fwrite of a whole line, or one sendmsg).
#pragma once

#include <atomic>
#include <cstdio>
#include <optional>
#include <string_view>

#include "util/journal.hpp"
#include "util/log_entry.hpp"
#include "util/time.hpp"

namespace apsis {

enum class LogFormat { text, json };

struct LogOptions {
  LogFormat format{LogFormat::text};
  bool priority_prefix{false};  // text lines start "<N>" (stderr is the journal's stream)
  Level threshold{Level::info};
  // Each line first erases the terminal's current line, where `once` draws its progress, so log
  // lines and the progress line never run into each other. Text lines only.
  bool erase_line{false};
  NowFunction now{};  // the JSON lines' "time"; empty: the system clock
};

class Logger {
 public:
  explicit Logger(std::FILE* out = stderr, LogOptions options = {});
  // Entries go to `journal`; `out` gets a text line only when a send fails.
  Logger(std::FILE* out, LogOptions options, JournalSender journal);
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void log(Level level, std::string_view message, const LogFields& fields = {}) const;

 private:
  void write_line(std::string line) const;
  void send_to_journal(Level level, std::string_view message, const LogFields& fields) const;

  std::FILE* out_;
  LogOptions options_;
  std::optional<JournalSender> journal_;
  // The errno of the last failed journal send, 0 after a success: each change is said once on stderr,
  // not once per line.
  mutable std::atomic<int> journal_failure_{0};
};

}  // namespace apsis
