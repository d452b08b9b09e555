// Text pieces of `apsis-exportd status`: short durations, file sizes, times in an export's zone, and
// values fitted to a terminal column. Pure functions (apart from reading the system tz database).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/time.hpp"

namespace apsis::cli {

// The two largest units, for a glance: "3h 12m", "2d 4h", "5m 3s", "45s", "3h" (a zero second unit is
// left out). Negative durations (clock skew between the daemon and the reader) read as "0s".
std::string format_duration_short(std::chrono::seconds duration);

// Binary units with at most three digits: "512 B", "1.0 MiB", "12 MiB", "1.5 GiB".
std::string format_size(std::int64_t bytes);

// How a time reads in `zone` (an IANA name; throws std::runtime_error for an unknown one), to the second.
// With the offset, for times people plan around: "Mon 2026-11-30 06:30:00 CET (+01:00)".
std::string format_local_time(TimePoint t, std::string_view zone);
// Without it, for times that are already past: "Mon 2026-11-30 06:30:00 CET".
std::string format_local_time_short(TimePoint t, std::string_view zone);
// ISO-8601 with the zone's offset and milliseconds: "2026-11-30T06:30:00.000+01:00".
std::string format_local_iso8601(TimePoint t, std::string_view zone);

// `text` as one terminal line of at most `width` characters: whitespace runs (newlines included)
// become one space and control characters '?', so a server's message cannot move the cursor or
// recolour the terminal; cut at the end with "..." when too long.
std::string fit_line(std::string_view text, std::size_t width);
// Like fit_line, but word-wrapped onto at most `max_lines` (at least 1) lines, the last one cut with "..."
// if the text goes on; a word longer than a line is broken. Empty text gives no lines.
std::vector<std::string> wrap_lines(std::string_view text, std::size_t width, std::size_t max_lines);
// Like fit_line, but a path keeps its end, where the file name is: ".../dupes/dupes-20261129.csv".
std::string fit_path(std::string_view path, std::size_t width);

}  // namespace apsis::cli
