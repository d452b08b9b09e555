// When an export runs: cron expressions, cron macros and fixed intervals, evaluated in an IANA time zone.
// Pure apart from reading the system tz database (date::locate_zone).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "schedule/cron_spec.hpp"
#include "util/time.hpp"

namespace date {
class time_zone;
}

namespace apsis::schedule {

// A parsed schedule evaluated in one IANA time zone. Value type, cheap to copy.
class Schedule {
 public:
  // expression: 5-field cron ("30 6 * * *"), a macro (@hourly @daily @midnight @weekly @monthly @yearly
  // @annually), or "every <duration>" (units ms s m h d, largest first: "every 15m", "every 1h30m"; 1s to 365d).
  // timezone: IANA name such as "Europe/Stockholm".
  // On failure returns nullopt and, if `error` is set, a message saying what is wrong and where, e.g.
  // "cron field 2 (hour): 25 is out of range 0-23" or "unknown time zone 'Europe/Stokholm'".
  // Day-of-month/month combinations that never occur ("0 0 30 2 *") are rejected here, so a parsed
  // schedule always has a next slot.
  static std::optional<Schedule> parse(std::string_view expression, std::string_view timezone = "UTC",
                                       std::string* error = nullptr);

  // The first slot strictly after `after`. Throws std::runtime_error only when that slot lies beyond what
  // TimePoint can represent (year 2262).
  TimePoint next_after(TimePoint after) const;

  // The latest slot in [at - horizon, at], or nullopt if there is none: the run missed during downtime.
  std::optional<TimePoint> latest_at_or_before(TimePoint at, Milliseconds horizon) const;

  const std::string& expression() const { return expression_; }
  const std::string& timezone() const { return timezone_; }
  const date::time_zone& zone() const { return *zone_; }
  // The cron fields, or nullptr for an "every" schedule.
  const detail::CronSpec* cron() const { return std::get_if<detail::CronSpec>(&rule_); }

 private:
  // Cron fields, or the period of an "every" schedule.
  using Rule = std::variant<detail::CronSpec, Milliseconds>;

  Schedule(std::string expression, std::string timezone, const date::time_zone* zone, Rule rule);

  std::string expression_;
  std::string timezone_;
  const date::time_zone* zone_;  // owned by date's tz database, which lives as long as the program
  Rule rule_;
};

// What a schedule loop does when it wakes at `now`, every slot up to `handled` being dealt with
// already. Pure: the same answer at start-up, after a stall, a suspend or a clock step.
enum class CatchUp { latest, none };

struct DueSlots {
  std::optional<TimePoint> start{};       // start a job for this slot now
  bool caught_up{false};                  // `start` is later than `late_after`: a catch-up
  std::optional<TimePoint> first_passed{};  // the earliest slot passed over without a job, if any
  TimePoint handled;                      // every slot up to this one is dealt with
};

// The slots after `handled` and up to `now`: at most one of them runs, the newest. It runs when it
// is at most `late_after` old, or when it is older and `catch_up` is latest; every other one is
// passed over. A `now` before `handled` (the clock stepped back) starts nothing: no slot repeats.
DueSlots due_slots(const Schedule& schedule, TimePoint handled, TimePoint now, Milliseconds late_after,
                   CatchUp catch_up);

}  // namespace apsis::schedule
