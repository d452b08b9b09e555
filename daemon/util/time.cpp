#include "util/time.hpp"

#include <cstdio>
#include <ctime>

namespace apsis {

std::string format_iso8601(TimePoint t) {
  const auto ms = std::chrono::floor<Milliseconds>(t);
  const auto seconds = std::chrono::floor<std::chrono::seconds>(ms);
  const std::time_t tt = Clock::to_time_t(seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((ms - seconds).count()));
  return buf;
}

std::optional<TimePoint> parse_iso8601(std::string_view text) {
  std::tm tm{};
  int millis = 0;
  int consumed = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &millis, &consumed) != 7 ||
      consumed != static_cast<int>(s.size()))
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t tt = timegm(&tm);
  return Clock::from_time_t(tt) + Milliseconds(millis);
}

}  // namespace apsis
