#include "schedule/schedule.hpp"

#include <date/tz.h>

#include <algorithm>
#include <stdexcept>

#include "util/duration.hpp"
#include "schedule/cron_zone.hpp"

namespace apsis::schedule {
namespace {

using detail::SysSeconds;
using std::chrono::seconds;

// How far next_after looks. Parsing rejects dates that never occur, and any date that does occur falls on
// any given weekday within 40 years (Feb 29 across the skipped leap day of 2100), so 50 years finds the
// next slot of every schedule parse accepts while still bounding the search if that reasoning is ever wrong.
constexpr seconds kSearchHorizon = std::chrono::duration_cast<seconds>(date::years{50});

// "every" periods: at least a second so a typo cannot spin the daemon; at most a year, beyond which
// multiples of the period since 1970 stop looking like a schedule (use cron for yearly runs).
constexpr Milliseconds kMinPeriod = seconds{1};
constexpr Milliseconds kMaxPeriod = std::chrono::hours{24 * 365};

constexpr std::string_view kEvery = "every";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

bool is_every(std::string_view text) {
  return text.starts_with(kEvery) && (text.size() == kEvery.size() || is_space(text[kEvery.size()]));
}

template <typename T>
std::optional<T> fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return std::nullopt;
}

// "every 1h30m": the duration grammar is the configuration's, so a period reads the same in both places.
std::optional<Milliseconds> parse_every(std::string_view text, std::string* error) {
  const std::string_view duration_text = trim(text.substr(kEvery.size()));
  if (duration_text.empty())
    return fail<Milliseconds>(error, "'every' needs a duration, e.g. every 15m or every 1h30m");
  std::string problem;
  const auto period = parse_duration(duration_text, &problem);
  if (!period) return fail<Milliseconds>(error, "every: " + problem);
  const std::string shown = "every " + std::string(duration_text);
  if (*period < kMinPeriod) return fail<Milliseconds>(error, shown + " is shorter than the minimum of 1s");
  if (*period > kMaxPeriod)
    return fail<Milliseconds>(error, shown + " is longer than the maximum of 365d: use a cron expression instead");
  return period;
}

const date::time_zone* find_zone(std::string_view name, std::string* error) {
  try {
    return date::locate_zone(std::string(name));
  } catch (const std::exception&) {  // date throws std::runtime_error for names missing from the database
    if (error) *error = "unknown time zone '" + std::string(name) + "'";
    return nullptr;
  }
}

// Interval slots are k * period since the Unix epoch, whatever the zone, so they stay evenly spaced in real time.
Clock::duration::rep periods_until(Milliseconds period, TimePoint t) {
  const Clock::duration step = period;
  auto count = t.time_since_epoch() / step;
  if (count * step > t.time_since_epoch()) --count;  // floor, not truncation, before 1970
  return count;
}

TimePoint next_interval_slot(Milliseconds period, TimePoint after) {
  const Clock::duration step = period;
  const auto count = periods_until(period, after);
  if (count >= Clock::duration::max() / step) throw std::runtime_error("next interval slot is beyond year 2262");
  return TimePoint{(count + 1) * step};
}

TimePoint to_time_point(SysSeconds slot, const std::string& expression) {
  if (slot > std::chrono::floor<seconds>(TimePoint::max()))
    throw std::runtime_error("schedule '" + expression + "': the next slot is beyond year 2262");
  return TimePoint{slot};
}

}  // namespace

Schedule::Schedule(std::string expression, std::string timezone, const date::time_zone* zone, Rule rule)
    : expression_(std::move(expression)), timezone_(std::move(timezone)), zone_(zone), rule_(std::move(rule)) {}

std::optional<Schedule> Schedule::parse(std::string_view expression, std::string_view timezone, std::string* error) {
  const std::string_view text = trim(expression);
  std::optional<Rule> rule;
  if (is_every(text)) {
    if (const auto period = parse_every(text, error)) rule = *period;
  } else if (auto spec = detail::parse_cron(text, error)) {
    rule = *spec;
  }
  if (!rule) return std::nullopt;
  // The zone is checked for "every" schedules too: a misspelt zone is a configuration error either way.
  const date::time_zone* zone = find_zone(timezone, error);
  if (!zone) return std::nullopt;
  return Schedule(std::string(expression), std::string(timezone), zone, std::move(*rule));
}

TimePoint Schedule::next_after(TimePoint after) const {
  if (const auto* period = std::get_if<Milliseconds>(&rule_)) return next_interval_slot(*period, after);
  // Slots are whole seconds, so "strictly after `after`" is "strictly after floor(after)".
  const SysSeconds from = std::chrono::floor<seconds>(after);
  const auto slot = detail::next_cron_slot(std::get<detail::CronSpec>(rule_), *zone_, from, from + kSearchHorizon);
  if (!slot)
    throw std::runtime_error("schedule '" + expression_ + "' in " + timezone_ + " has no slot within 50 years after " +
                             format_iso8601(after));
  return to_time_point(*slot, expression_);
}

std::optional<TimePoint> Schedule::latest_at_or_before(TimePoint at, Milliseconds horizon) const {
  if (horizon < Milliseconds::zero()) return std::nullopt;
  // Looking back further than the forward search would is never useful, and the cap keeps `at - horizon` in range.
  const TimePoint earliest = at - std::min(horizon, std::chrono::duration_cast<Milliseconds>(kSearchHorizon));
  if (const auto* period = std::get_if<Milliseconds>(&rule_)) {
    const TimePoint slot{periods_until(*period, at) * Clock::duration{*period}};
    return slot >= earliest ? std::optional{slot} : std::nullopt;
  }
  const auto slot = detail::latest_cron_slot(std::get<detail::CronSpec>(rule_), *zone_,
                                             std::chrono::floor<seconds>(at), std::chrono::ceil<seconds>(earliest));
  if (!slot) return std::nullopt;
  return TimePoint{*slot};
}

DueSlots due_slots(const Schedule& schedule, TimePoint handled, TimePoint now, Milliseconds late_after,
                   CatchUp catch_up) {
  const TimePoint first = schedule.next_after(handled);
  if (first > now) return {.handled = handled};
  // The newest slot in [first, now]; the look-back is capped, so fall back to `first` beyond it.
  const auto look_back = std::chrono::duration_cast<Milliseconds>(now - first);
  const auto newest = std::max(first, schedule.latest_at_or_before(now, look_back).value_or(first));
  DueSlots due{.handled = newest};
  if (first < newest) due.first_passed = first;
  if (now - newest <= late_after) {
    due.start = newest;
  } else if (catch_up == CatchUp::latest) {
    due.start = newest;
    due.caught_up = true;
  } else {
    due.first_passed = first;
  }
  return due;
}

}  // namespace apsis::schedule
