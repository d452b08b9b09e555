#include "schedule/cron_spec.hpp"

#include <bit>

namespace apsis::schedule::detail {
namespace {

constexpr int kMinutesPerDay = 24 * 60;

bool has_bit(std::uint64_t mask, unsigned bit) { return bit < 64 && ((mask >> bit) & 1U) != 0; }

// The lowest set bit >= from, or -1.
int next_bit(std::uint64_t mask, int from) {
  if (from < 0) from = 0;
  if (from > 63) return -1;
  const std::uint64_t rest = mask & (~std::uint64_t{0} << from);
  return rest == 0 ? -1 : std::countr_zero(rest);
}

// The highest set bit <= from, or -1.
int prev_bit(std::uint64_t mask, int from) {
  if (from < 0) return -1;
  const std::uint64_t rest = from >= 63 ? mask : mask & ((std::uint64_t{2} << from) - 1);
  return rest == 0 ? -1 : 63 - std::countl_zero(rest);
}

// The first matching minute of the day at or after `start` (minutes since midnight), or -1.
int next_time_of_day(const CronSpec& spec, int start) {
  for (int hour = next_bit(spec.hours, start / 60); hour >= 0; hour = next_bit(spec.hours, hour + 1)) {
    const int minute = next_bit(spec.minutes, hour == start / 60 ? start % 60 : 0);
    if (minute >= 0) return hour * 60 + minute;
  }
  return -1;
}

// The last matching minute of the day at or before `start`, or -1.
int prev_time_of_day(const CronSpec& spec, int start) {
  for (int hour = prev_bit(spec.hours, start / 60); hour >= 0; hour = prev_bit(spec.hours, hour - 1)) {
    const int minute = prev_bit(spec.minutes, hour == start / 60 ? start % 60 : 59);
    if (minute >= 0) return hour * 60 + minute;
  }
  return -1;
}

date::local_days first_of_next_month(const date::year_month_day& ymd) {
  return date::local_days{(ymd.year() / ymd.month() + date::months{1}) / 1};
}

date::local_days last_of_previous_month(const date::year_month_day& ymd) {
  return date::local_days{ymd.year() / ymd.month() / 1} - date::days{1};
}

}  // namespace

bool CronSpec::matches_month(date::month month) const { return has_bit(months, static_cast<unsigned>(month)); }

bool CronSpec::matches_day(date::local_days day) const {
  const date::year_month_day ymd{day};
  if (!matches_month(ymd.month())) return false;
  const bool dom = has_bit(days_of_month, static_cast<unsigned>(ymd.day()));
  const bool dow = has_bit(days_of_week, date::weekday{day}.c_encoding());
  // Vixie/cronie: two restricted day fields widen the match; a '*' field narrows it to the other field.
  return (day_of_month_star || day_of_week_star) ? (dom && dow) : (dom || dow);
}

std::optional<LocalMinutes> CronSpec::next_match(LocalMinutes from, LocalMinutes limit) const {
  auto day = date::floor<date::days>(from);
  int start = static_cast<int>((from - day).count());
  while (day < limit) {
    const date::year_month_day ymd{day};
    if (!matches_month(ymd.month())) {
      day = first_of_next_month(ymd);  // a whole month at a time: "0 12 29 2 *" looks at Februaries only
      start = 0;
      continue;
    }
    if (matches_day(day)) {
      if (const int minute = next_time_of_day(*this, start); minute >= 0) {
        const LocalMinutes found = day + std::chrono::minutes{minute};
        if (found >= limit) return std::nullopt;
        return found;
      }
    }
    day += date::days{1};
    start = 0;
  }
  return std::nullopt;
}

std::optional<LocalMinutes> CronSpec::prev_match(LocalMinutes from, LocalMinutes lower) const {
  auto day = date::floor<date::days>(from);
  int start = static_cast<int>((from - day).count());
  while (day + std::chrono::minutes{kMinutesPerDay} > lower) {
    const date::year_month_day ymd{day};
    if (!matches_month(ymd.month())) {
      day = last_of_previous_month(ymd);
      start = kMinutesPerDay - 1;
      continue;
    }
    if (matches_day(day)) {
      if (const int minute = prev_time_of_day(*this, start); minute >= 0) {
        const LocalMinutes found = day + std::chrono::minutes{minute};
        if (found < lower) return std::nullopt;
        return found;
      }
    }
    day -= date::days{1};
    start = kMinutesPerDay - 1;
  }
  return std::nullopt;
}

}  // namespace apsis::schedule::detail
