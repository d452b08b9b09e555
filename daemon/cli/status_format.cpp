#include "cli/status_format.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace apsis::cli {
namespace {

using std::chrono::seconds;

constexpr std::string_view kEllipsis = "...";

std::string with_second_unit(long long first, const char* first_unit, long long second, const char* second_unit) {
  std::string text = std::to_string(first) + first_unit;
  if (second != 0) text += " " + std::to_string(second) + second_unit;
  return text;
}

// UTF-8 continuation bytes do not start a character, so a terminal column is roughly a code point.
bool starts_character(char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }

std::size_t characters(std::string_view text) {
  std::size_t count = 0;
  for (char c : text) count += starts_character(c) ? 1 : 0;
  return count;
}

// The byte offset where character number `n` starts (text.size() if there are fewer).
std::size_t offset_of_character(std::string_view text, std::size_t n) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!starts_character(text[i])) continue;
    if (seen == n) return i;
    ++seen;
  }
  return text.size();
}

bool is_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// C0 controls, DEL, and C1 controls (U+0080..U+009F, encoded C2 80..C2 9F) can all drive a terminal.
std::size_t control_length(std::string_view text, std::size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x20 || c == 0x7F) return 1;
  if (c == 0xC2 && i + 1 < text.size()) {
    const auto next = static_cast<unsigned char>(text[i + 1]);
    if (next >= 0x80 && next <= 0x9F) return 2;
  }
  return 0;
}

std::string printable(std::string_view text, bool collapse_whitespace) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (collapse_whitespace && is_whitespace(text[i])) {
      if (!out.empty() && out.back() != ' ') out += ' ';
      continue;
    }
    if (const auto length = control_length(text, i)) {
      out += '?';
      i += length - 1;
      continue;
    }
    out += text[i];
  }
  if (collapse_whitespace && !out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string cut_end(const std::string& text, std::size_t width) {
  if (characters(text) <= width) return text;
  if (width <= kEllipsis.size()) return text.substr(0, offset_of_character(text, width));
  std::string kept = text.substr(0, offset_of_character(text, width - kEllipsis.size()));
  while (!kept.empty() && kept.back() == ' ') kept.pop_back();  // "ccc..." rather than "ccc ..."
  return kept + std::string(kEllipsis);
}

std::string cut_start(const std::string& text, std::size_t width) {
  const std::size_t count = characters(text);
  if (count <= width) return text;
  if (width <= kEllipsis.size()) return text.substr(offset_of_character(text, count - width));
  return std::string(kEllipsis) + text.substr(offset_of_character(text, count - (width - kEllipsis.size())));
}

struct ZonedSecond {
  date::local_seconds local;
  date::sys_info info;
};

ZonedSecond in_zone(TimePoint t, std::string_view zone) {
  const date::time_zone* found = date::locate_zone(std::string(zone));
  const auto second = std::chrono::floor<seconds>(t);
  const auto info = found->get_info(second);
  return {date::local_seconds{second.time_since_epoch() + info.offset}, info};
}

std::string format_offset(seconds offset) {
  const char sign = offset < seconds{0} ? '-' : '+';
  const auto minutes = std::abs(offset.count()) / 60;
  std::array<char, 48> text{};
  std::snprintf(text.data(), text.size(), "%c%02lld:%02lld", sign, static_cast<long long>(minutes / 60),
                static_cast<long long>(minutes % 60));
  return text.data();
}

// Zones without a letter abbreviation in the tz database name themselves by their offset ("+04").
bool is_numeric_abbreviation(const std::string& abbreviation) {
  return !abbreviation.empty() && (abbreviation.front() == '+' || abbreviation.front() == '-');
}

}  // namespace

std::string format_duration_short(seconds duration) {
  const long long total = std::max<long long>(0, duration.count());
  constexpr long long kMinute = 60, kHour = 60 * kMinute, kDay = 24 * kHour;
  if (total >= kDay) return with_second_unit(total / kDay, "d", total % kDay / kHour, "h");
  if (total >= kHour) return with_second_unit(total / kHour, "h", total % kHour / kMinute, "m");
  if (total >= kMinute) return with_second_unit(total / kMinute, "m", total % kMinute, "s");
  return std::to_string(total) + "s";
}

std::string format_size(std::int64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  constexpr std::array<const char*, 6> kUnits{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  // Three digits at most: 1000 KiB reads better as 1.0 MiB.
  while (value >= 999.5 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), value < 9.95 ? "%.1f %s" : "%.0f %s", value, kUnits[unit]);
  return text.data();
}

std::string format_local_time(TimePoint t, std::string_view zone) {
  const auto zoned = in_zone(t, zone);
  const std::string clock = date::format("%a %Y-%m-%d %H:%M:%S ", zoned.local);
  const std::string offset = format_offset(zoned.info.offset);
  if (is_numeric_abbreviation(zoned.info.abbrev)) return clock + offset;
  return clock + zoned.info.abbrev + " (" + offset + ")";
}

std::string format_local_time_short(TimePoint t, std::string_view zone) {
  const auto zoned = in_zone(t, zone);
  return date::format("%a %Y-%m-%d %H:%M:%S ", zoned.local) + zoned.info.abbrev;
}

std::string format_local_iso8601(TimePoint t, std::string_view zone) {
  const auto zoned = in_zone(t, zone);
  const auto millis = std::chrono::floor<Milliseconds>(t) - std::chrono::floor<seconds>(t);
  const date::local_time<Milliseconds> local = zoned.local + millis;
  return date::format("%Y-%m-%dT%H:%M:%S", local) + format_offset(zoned.info.offset);
}

std::string fit_line(std::string_view text, std::size_t width) {
  return cut_end(printable(text, /*collapse_whitespace=*/true), width);
}

std::vector<std::string> wrap_lines(std::string_view text, std::size_t width, std::size_t max_lines) {
  std::string rest = printable(text, /*collapse_whitespace=*/true);
  std::vector<std::string> lines;
  while (lines.size() + 1 < max_lines && characters(rest) > width) {
    const std::size_t end = offset_of_character(rest, width);
    // A space at `end` itself still leaves a full line before it.
    const std::size_t space = rest.rfind(' ', end);
    const bool break_word = space == std::string::npos || space == 0;
    lines.push_back(rest.substr(0, break_word ? end : space));
    rest.erase(0, break_word ? end : space + 1);
  }
  if (!rest.empty()) lines.push_back(cut_end(rest, width));
  return lines;
}

std::string fit_path(std::string_view path, std::size_t width) {
  return cut_start(printable(path, /*collapse_whitespace=*/false), width);
}

}  // namespace apsis::cli
