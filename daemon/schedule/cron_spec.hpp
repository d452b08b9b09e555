// A parsed 5-field cron expression and its search over naive local wall-clock time (no zone, no DST).
// cron_zone.hpp maps the local times found here onto instants of a real time zone.
#pragma once

#include <date/date.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace apsis::schedule::detail {

using LocalMinutes = date::local_time<std::chrono::minutes>;

// Each field as a bit mask: bit n set = value n allowed. 64-bit masks so "next allowed value" is one countr_zero.
struct CronSpec {
  std::uint64_t minutes = 0;        // bits 0-59
  std::uint64_t hours = 0;          // bits 0-23
  std::uint64_t days_of_month = 0;  // bits 1-31
  std::uint64_t months = 0;         // bits 1-12
  std::uint64_t days_of_week = 0;   // bits 0-6, 0 = Sunday (a 7 in the text is folded into 0)
  // Vixie cron's DOM_STAR/DOW_STAR: the field's text starts with '*'. If either is set a day must match both
  // fields, otherwise a day matching either one is enough.
  bool day_of_month_star = false;
  bool day_of_week_star = false;
  // Neither the minute nor the hour field starts with '*'. Cronie treats such "fixed-time" jobs specially
  // across DST changes: they run once when their local time is skipped or repeated (see cron_zone.hpp).
  bool fixed_time = false;

  bool matches_month(date::month month) const;
  bool matches_day(date::local_days day) const;
  // The first matching local minute in [from, limit), or nullopt. Steps by month and day, never minute by minute.
  std::optional<LocalMinutes> next_match(LocalMinutes from, LocalMinutes limit) const;
  // The last matching local minute in [lower, from], or nullopt.
  std::optional<LocalMinutes> prev_match(LocalMinutes from, LocalMinutes lower) const;
};

// Five whitespace-separated fields, or a macro (@hourly @daily @midnight @weekly @monthly @yearly @annually).
// On failure returns nullopt and, if `error` is set, a message naming the field and the offending text.
// Rejects day-of-month/month combinations that never occur ("0 0 30 2 *"), so every accepted spec fires.
std::optional<CronSpec> parse_cron(std::string_view expression, std::string* error);

}  // namespace apsis::schedule::detail
