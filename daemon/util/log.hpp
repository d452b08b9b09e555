// Log lines on stderr. When stderr goes to the journal (systemd sets JOURNAL_STREAM) each line starts
// with an sd-daemon priority prefix ("<6>"), which journald turns into the entry's priority; job lines carry `export=` and `job=` so
// one export's story can be filtered out of the journal.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace apsis {

enum class Level { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

class Logger {
 public:
  // `erase_line`: each line first erases the terminal's current line, where `once` draws its
  // progress, so log lines and the progress line never run into each other.
  explicit Logger(std::FILE* out = stderr, bool priority_prefix = stderr_is_journal(), Level threshold = Level::info,
                  bool erase_line = false);

  void log(Level level, std::string_view message) const;
  void job(Level level, std::string_view export_name, std::int64_t job_id, std::string_view message) const;

  static bool stderr_is_journal();

 private:
  std::FILE* out_;
  bool priority_prefix_;
  Level threshold_;
  bool erase_line_;
};

}  // namespace apsis
