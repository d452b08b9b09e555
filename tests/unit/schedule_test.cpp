// Expected instants were computed independently of this code: a minute-by-minute brute force over UTC with
// Python's zoneinfo applying cronie's DST rules, spot-checked with `TZ=Europe/Stockholm date -d @EPOCH`.
#include "schedule/schedule.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

using apsis::Milliseconds;
using apsis::TimePoint;
using apsis::schedule::Schedule;
using namespace std::chrono_literals;

namespace {

// Table times are whole UTC minutes written "YYYY-MM-DDTHH:MM".
std::string iso(std::string_view minute) { return std::string(minute) + ":00.000Z"; }

TimePoint at(std::string_view minute) {
  const auto parsed = apsis::parse_iso8601(iso(minute));
  REQUIRE(parsed);
  return *parsed;
}

Schedule make(std::string_view expression, std::string_view zone = "UTC") {
  std::string error;
  const auto schedule = Schedule::parse(expression, zone, &error);
  INFO("parse error: ", error);
  REQUIRE(schedule);
  return *schedule;
}

// The first `count` slots after `after`, formatted for readable failures.
std::vector<std::string> fires(const Schedule& schedule, TimePoint after, std::size_t count) {
  std::vector<std::string> out;
  for (TimePoint t = after; out.size() < count;) {
    t = schedule.next_after(t);
    out.push_back(apsis::format_iso8601(t));
  }
  return out;
}

std::vector<std::string> expanded(const std::vector<std::string_view>& minutes) {
  std::vector<std::string> out;
  for (const auto minute : minutes) out.push_back(iso(minute));
  return out;
}

std::string parse_error(std::string_view expression, std::string_view zone = "UTC") {
  std::string error;
  if (Schedule::parse(expression, zone, &error)) return "(parsed)";
  return error;
}

// A schedule, a start instant and every slot after it, in order.
struct SequenceRow {
  std::string_view expression;
  std::string_view zone;
  std::string_view after;
  std::vector<std::string_view> expected;
};

void check_sequences(const std::vector<SequenceRow>& rows) {
  for (const auto& row : rows) {
    CAPTURE(row.expression);
    CAPTURE(row.zone);
    CAPTURE(row.after);
    CHECK(fires(make(row.expression, row.zone), at(row.after), row.expected.size()) == expanded(row.expected));
  }
}

}  // namespace

TEST_CASE("schedule: Europe/Stockholm across spring forward (2026-03-29 02:00 CET -> 03:00 CEST)") {
  check_sequences({
      // Fixed-time job inside the gap: 02:30 does not exist that day, so it runs once at 03:00 CEST.
      {"30 2 * * *", "Europe/Stockholm", "2026-03-27T12:00",
       {"2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30", "2026-03-31T00:30"}},
      // Several fixed times inside the gap still make one run at the end of the gap.
      {"0,30 2 * * *", "Europe/Stockholm", "2026-03-28T12:00", {"2026-03-29T01:00", "2026-03-30T00:00"}},
      // Outside the gap the local time holds: 06:30 is 05:30Z before and 04:30Z after.
      {"30 6 * * *", "Europe/Stockholm", "2026-03-27T12:00",
       {"2026-03-28T05:30", "2026-03-29T04:30", "2026-03-30T04:30", "2026-03-31T04:30"}},
      // Wildcard jobs skip the missing hour; every 30 local minutes stays every 30 real minutes.
      {"*/30 * * * *", "Europe/Stockholm", "2026-03-28T23:59",
       {"2026-03-29T00:00", "2026-03-29T00:30", "2026-03-29T01:00", "2026-03-29T01:30", "2026-03-29T02:00",
        "2026-03-29T02:30"}},
      {"15 * * * *", "Europe/Stockholm", "2026-03-28T23:00",
       {"2026-03-28T23:15", "2026-03-29T00:15", "2026-03-29T01:15", "2026-03-29T02:15"}},
      // A wildcard minute makes the job a wildcard job: nothing at all in the missing 02:xx hour.
      {"*/20 2 * * *", "Europe/Stockholm", "2026-03-28T12:00",
       {"2026-03-30T00:00", "2026-03-30T00:20", "2026-03-30T00:40", "2026-03-31T00:00"}},
  });
}

TEST_CASE("schedule: Europe/Stockholm across fall back (2026-10-25 03:00 CEST -> 02:00 CET)") {
  check_sequences({
      // Fixed-time job in the repeated hour: once, in the first (CEST) pass.
      {"30 2 * * *", "Europe/Stockholm", "2026-10-23T12:00",
       {"2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30", "2026-10-27T01:30"}},
      {"30 6 * * *", "Europe/Stockholm", "2026-10-23T12:00",
       {"2026-10-24T04:30", "2026-10-25T05:30", "2026-10-26T05:30", "2026-10-27T05:30"}},
      // Wildcard jobs run in both passes: 02:00, 02:30 CEST then 02:00, 02:30 CET.
      {"*/30 * * * *", "Europe/Stockholm", "2026-10-24T23:00",
       {"2026-10-24T23:30", "2026-10-25T00:00", "2026-10-25T00:30", "2026-10-25T01:00", "2026-10-25T01:30",
        "2026-10-25T02:00", "2026-10-25T02:30"}},
      {"15 * * * *", "Europe/Stockholm", "2026-10-24T22:30",
       {"2026-10-24T23:15", "2026-10-25T00:15", "2026-10-25T01:15", "2026-10-25T02:15", "2026-10-25T03:15"}},
      {"*/20 2 * * *", "Europe/Stockholm", "2026-10-24T12:00",
       {"2026-10-25T00:00", "2026-10-25T00:20", "2026-10-25T00:40", "2026-10-25T01:00", "2026-10-25T01:20",
        "2026-10-25T01:40", "2026-10-26T01:00"}},
  });
}

TEST_CASE("schedule: America/New_York across 2026-03-08 (02:00 -> 03:00) and 2026-11-01 (02:00 -> 01:00)") {
  check_sequences({
      {"30 2 * * *", "America/New_York", "2026-03-07T00:00",
       {"2026-03-07T07:30", "2026-03-08T07:00", "2026-03-09T06:30"}},
      {"30 1 * * *", "America/New_York", "2026-03-07T00:00",
       {"2026-03-07T06:30", "2026-03-08T06:30", "2026-03-09T05:30"}},
      {"*/30 * * * *", "America/New_York", "2026-03-08T06:00",
       {"2026-03-08T06:30", "2026-03-08T07:00", "2026-03-08T07:30", "2026-03-08T08:00"}},
      {"30 2 * * *", "America/New_York", "2026-10-31T00:00",
       {"2026-10-31T06:30", "2026-11-01T07:30", "2026-11-02T07:30"}},
      // 01:30 happens twice on 2026-11-01: the fixed-time job runs at the first (EDT) one only.
      {"30 1 * * *", "America/New_York", "2026-10-31T00:00",
       {"2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"}},
      {"*/30 * * * *", "America/New_York", "2026-11-01T04:59",
       {"2026-11-01T05:00", "2026-11-01T05:30", "2026-11-01T06:00", "2026-11-01T06:30", "2026-11-01T07:00",
        "2026-11-01T07:30"}},
  });
}

TEST_CASE("schedule: zones with half-hour offsets and half-hour DST shifts") {
  check_sequences({
      {"0 0 * * *", "Asia/Kolkata", "2026-01-01T00:00", {"2026-01-01T18:30"}},
      // Lord Howe moves 02:00 -> 02:30 on 2026-10-04: 02:15 falls in the gap and runs at 02:30 (+11).
      {"15 2 * * *", "Australia/Lord_Howe", "2026-10-02T00:00",
       {"2026-10-02T15:45", "2026-10-03T15:30", "2026-10-04T15:15"}},
  });
}

TEST_CASE("schedule: cron fields, day-of-month/day-of-week semantics and names") {
  check_sequences({
      // Leap day: the next Feb 29 is in 2028, and 2100 is not a leap year.
      {"0 12 29 2 *", "UTC", "2026-03-01T00:00", {"2028-02-29T12:00", "2032-02-29T12:00"}},
      {"0 12 29 2 *", "UTC", "2096-03-01T00:00", {"2104-02-29T12:00"}},
      // Both day fields restricted: the 13th OR any Friday.
      {"0 0 13 * 5", "UTC", "2026-02-01T00:00",
       {"2026-02-06T00:00", "2026-02-13T00:00", "2026-02-20T00:00", "2026-02-27T00:00", "2026-03-06T00:00",
        "2026-03-13T00:00"}},
      {"0 0 13 * *", "UTC", "2026-02-01T00:00", {"2026-02-13T00:00", "2026-03-13T00:00", "2026-04-13T00:00"}},
      {"0 0 * * FRI", "UTC", "2026-02-01T00:00", {"2026-02-06T00:00", "2026-02-13T00:00", "2026-02-20T00:00"}},
      // A day field starting with '*' (even "*/2") means AND, as in Vixie cron: the 13th on Sun/Tue/Thu/Sat.
      {"0 0 13 * */2", "UTC", "2026-01-01T00:00", {"2026-01-13T00:00", "2026-06-13T00:00", "2026-08-13T00:00"}},
      // Names, case-insensitive, in ranges; from the end of March straight to the next January.
      {"0 9 * JAN-MAR MON-FRI", "UTC", "2026-03-31T09:00", {"2027-01-01T09:00", "2027-01-04T09:00"}},
      {"0 9 * jan-mar mon-fri", "UTC", "2026-03-27T09:00", {"2026-03-30T09:00", "2026-03-31T09:00"}},
      // 7 and 0 are both Sunday, also inside ranges.
      {"0 0 * * 7", "UTC", "2026-03-02T00:00", {"2026-03-08T00:00", "2026-03-15T00:00"}},
      {"0 0 * * 0", "UTC", "2026-03-02T00:00", {"2026-03-08T00:00", "2026-03-15T00:00"}},
      {"0 0 * * SUN", "UTC", "2026-03-02T00:00", {"2026-03-08T00:00", "2026-03-15T00:00"}},
      {"0 0 * * 5-7", "UTC", "2026-03-02T00:00",
       {"2026-03-06T00:00", "2026-03-07T00:00", "2026-03-08T00:00", "2026-03-13T00:00"}},
      // Steps over ranges, steps from a start value, lists, whole-day steps.
      {"5-10/2 * * * *", "UTC", "2026-01-01T00:06",
       {"2026-01-01T00:07", "2026-01-01T00:09", "2026-01-01T01:05", "2026-01-01T01:07"}},
      {"7/20 * * * *", "UTC", "2026-01-01T00:00",
       {"2026-01-01T00:07", "2026-01-01T00:27", "2026-01-01T00:47", "2026-01-01T01:07"}},
      {"0 */6 * * *", "UTC", "2026-01-01T00:00",
       {"2026-01-01T06:00", "2026-01-01T12:00", "2026-01-01T18:00", "2026-01-02T00:00"}},
      {"0 0 1,15 * *", "UTC", "2026-01-01T00:00", {"2026-01-15T00:00", "2026-02-01T00:00", "2026-02-15T00:00"}},
      {"0 0 31 * *", "UTC", "2026-01-31T00:00", {"2026-03-31T00:00", "2026-05-31T00:00", "2026-07-31T00:00"}},
      {"  30\t6 * * *  ", "UTC", "2026-01-01T00:00", {"2026-01-01T06:30"}},
  });
}

TEST_CASE("schedule: every macro") {
  check_sequences({
      {"@hourly", "UTC", "2026-01-01T00:30", {"2026-01-01T01:00", "2026-01-01T02:00"}},
      {"@daily", "UTC", "2026-01-01T00:30", {"2026-01-02T00:00", "2026-01-03T00:00"}},
      {"@midnight", "Europe/Stockholm", "2026-01-01T00:30", {"2026-01-01T23:00", "2026-01-02T23:00"}},
      {"@weekly", "UTC", "2026-01-01T00:30", {"2026-01-04T00:00", "2026-01-11T00:00"}},
      {"@monthly", "UTC", "2026-01-01T00:30", {"2026-02-01T00:00", "2026-03-01T00:00"}},
      {"@yearly", "UTC", "2026-01-01T00:30", {"2027-01-01T00:00", "2028-01-01T00:00"}},
      {"@annually", "UTC", "2026-01-01T00:30", {"2027-01-01T00:00"}},
      // @hourly is "0 * * * *", a wildcard job: it skips the missing hour and repeats the doubled one.
      {"@hourly", "Europe/Stockholm", "2026-03-28T23:30", {"2026-03-29T00:00", "2026-03-29T01:00", "2026-03-29T02:00"}},
      {"@hourly", "Europe/Stockholm", "2026-10-24T23:30", {"2026-10-25T00:00", "2026-10-25T01:00", "2026-10-25T02:00"}},
  });
}

TEST_CASE("schedule: every <duration> counts from the Unix epoch in real time, whatever the zone") {
  check_sequences({
      {"every 15m", "UTC", "2026-03-29T00:07", {"2026-03-29T00:15", "2026-03-29T00:30"}},
      {"every 15m", "UTC", "2026-03-29T00:15", {"2026-03-29T00:30"}},  // strictly after
      {"every 1h", "Europe/Stockholm", "2026-03-29T00:00",
       {"2026-03-29T01:00", "2026-03-29T02:00", "2026-03-29T03:00"}},
      {"every 1h", "Europe/Stockholm", "2026-10-24T23:59",
       {"2026-10-25T00:00", "2026-10-25T01:00", "2026-10-25T02:00"}},
      // 2026-01-01T00:00Z is 327264 periods of 5400 s after the epoch.
      {"every 1h30m", "UTC", "2025-12-31T23:59", {"2026-01-01T00:00", "2026-01-01T01:30"}},
      {"  every   1d  ", "America/New_York", "2026-03-07T12:00", {"2026-03-08T00:00", "2026-03-09T00:00"}},
  });
  const auto seconds = make("every 90s");
  CHECK(apsis::format_iso8601(seconds.next_after(at("2026-01-01T00:00"))) == "2026-01-01T00:01:30.000Z");
  const auto fine = make("every 1500ms");
  CHECK(apsis::format_iso8601(fine.next_after(at("2026-01-01T00:00"))) == "2026-01-01T00:00:01.500Z");
  // Fractions of a second in `after` count: the slot must be strictly later.
  const auto minutely = make("* * * * *");
  CHECK(minutely.next_after(at("2026-01-01T00:00") + 1ms) == at("2026-01-01T00:01"));
  CHECK(minutely.next_after(at("2026-01-01T00:00") - 1ns) == at("2026-01-01T00:00"));
}

TEST_CASE("schedule: dates that never occur are rejected at parse; rare ones are found") {
  CHECK(parse_error("0 0 30 2 *") == "cron fields 3 (day-of-month) and 4 (month): day '30' never occurs in month '2', "
                                     "so the schedule would never fire");
  CHECK(parse_error("0 0 31 4,6,9,11 *") != "(parsed)");
  CHECK(parse_error("0 0 30,31 FEB */2") != "(parsed)");  // '*'-prefixed weekday means AND: still never
  CHECK(parse_error("0 0 30 2 5") == "(parsed)");          // both restricted means OR: every Friday in February
  CHECK(fires(make("0 0 30 2 5"), at("2026-01-01T00:00"), 1) == expanded({"2026-02-06T00:00"}));
  // Feb 29 on a Sunday ('*/7' = 0,7 = Sunday, AND semantics): 2032, then the 40-year worst case 2088 -> 2128.
  CHECK(fires(make("0 0 29 2 */7"), at("2026-01-01T00:00"), 1) == expanded({"2032-02-29T00:00"}));
  CHECK(fires(make("0 0 29 2 */7"), at("2088-03-01T00:00"), 1) == expanded({"2128-02-29T00:00"}));
  // The one way next_after fails: a slot TimePoint (nanoseconds, until 2262-04-11) cannot hold.
  CHECK_THROWS_AS(make("0 12 29 2 *").next_after(at("2260-03-01T00:00")), std::runtime_error);
}

TEST_CASE("schedule: latest_at_or_before finds the run missed during downtime") {
  struct Row {
    std::string_view expression;
    std::string_view zone;
    std::string_view at;
    Milliseconds horizon;
    std::optional<std::string_view> expected;
  };
  const std::vector<Row> rows{
      {"30 6 * * *", "Europe/Stockholm", "2026-11-29T10:00", 24h, "2026-11-29T05:30"},
      {"30 6 * * *", "Europe/Stockholm", "2026-11-29T10:00", 1h, std::nullopt},
      {"30 6 * * *", "Europe/Stockholm", "2026-11-29T05:30", 0ms, "2026-11-29T05:30"},  // "at or before"
      {"30 6 * * *", "Europe/Stockholm", "2026-11-29T05:29", 24h, "2026-11-28T05:30"},
      {"30 6 * * *", "Europe/Stockholm", "2026-11-29T10:00", -1h, std::nullopt},
      {"30 2 * * *", "Europe/Stockholm", "2026-03-29T01:30", 24h, "2026-03-29T01:00"},  // the gap run
      {"30 2 * * *", "Europe/Stockholm", "2026-03-29T00:59", 1h, std::nullopt},
      {"30 2 * * *", "Europe/Stockholm", "2026-10-25T02:00", 24h, "2026-10-25T00:30"},  // first pass only
      {"*/30 * * * *", "Europe/Stockholm", "2026-10-25T01:10", 1h, "2026-10-25T01:00"},
      {"0 12 29 2 *", "UTC", "2031-01-01T00:00", 24h * 366 * 4, "2028-02-29T12:00"},
      {"every 15m", "UTC", "2026-01-01T00:07", 10min, "2026-01-01T00:00"},
      {"every 15m", "UTC", "2026-01-01T00:07", 5min, std::nullopt},
      {"every 15m", "UTC", "2026-01-01T00:15", 0ms, "2026-01-01T00:15"},
      {"@daily", "UTC", "2026-01-01T00:07", Milliseconds::max(), "2026-01-01T00:00"},  // huge horizons are fine
  };
  for (const auto& row : rows) {
    CAPTURE(row.expression);
    CAPTURE(row.zone);
    CAPTURE(row.at);
    CAPTURE(row.horizon.count());
    const auto found = make(row.expression, row.zone).latest_at_or_before(at(row.at), row.horizon);
    CHECK((found ? apsis::format_iso8601(*found) : "none") == (row.expected ? iso(*row.expected) : "none"));
  }
}

TEST_CASE("schedule: latest_at_or_before agrees with next_after slot by slot through DST changes") {
  const std::vector<SequenceRow> windows{
      {"*/30 * * * *", "Europe/Stockholm", "2026-03-28T22:00", {}},
      {"30 2 * * *", "Europe/Stockholm", "2026-03-25T00:00", {}},
      {"*/30 * * * *", "Europe/Stockholm", "2026-10-24T22:00", {}},
      {"30 2 * * *", "Europe/Stockholm", "2026-10-22T00:00", {}},
      {"30 1 * * *", "America/New_York", "2026-10-29T00:00", {}},
      {"*/20 2 * * *", "Europe/Stockholm", "2026-10-22T00:00", {}},
  };
  for (const auto& window : windows) {
    CAPTURE(window.expression);
    CAPTURE(window.zone);
    const auto schedule = make(window.expression, window.zone);
    TimePoint previous = schedule.next_after(at(window.after));
    for (int i = 0; i < 12; ++i) {
      const TimePoint next = schedule.next_after(previous);
      CAPTURE(apsis::format_iso8601(next));
      CHECK(schedule.latest_at_or_before(next - 1ms, 24h * 7) == previous);
      CHECK(schedule.latest_at_or_before(next, 0ms) == next);
      previous = next;
    }
  }
}

TEST_CASE("schedule: parse errors say what is wrong and where") {
  struct Row {
    std::string_view expression;
    std::string_view zone;
    std::string_view message;
  };
  const std::vector<Row> rows{
      {"", "UTC", "empty schedule: expected 5 cron fields, a macro such as @daily, or every <duration>"},
      {"* * * *", "UTC",
       "cron expression '* * * *' has 4 fields; expected 5 (minute hour day-of-month month day-of-week)"},
      {"0 * * * * *", "UTC",
       "cron expression '0 * * * * *' has 6 fields; expected 5 (minute hour day-of-month month day-of-week)"},
      {"60 * * * *", "UTC", "cron field 1 (minute): 60 is out of range 0-59"},
      {"0 25 * * *", "UTC", "cron field 2 (hour): 25 is out of range 0-23"},
      {"0 0 0 * *", "UTC", "cron field 3 (day-of-month): 0 is out of range 1-31"},
      {"0 0 * 13 *", "UTC", "cron field 4 (month): 13 is out of range 1-12"},
      {"0 0 * * 8", "UTC", "cron field 5 (day-of-week): 8 is out of range 0-7"},
      {"0 0 * * 99999999999", "UTC", "cron field 5 (day-of-week): 99999999999 is out of range 0-7"},
      {"*/0 * * * *", "UTC", "cron field 1 (minute): step 0 in '*/0' must be at least 1"},
      {"0 1-23/0 * * *", "UTC", "cron field 2 (hour): step 0 in '1-23/0' must be at least 1"},
      {"*/61 * * * *", "UTC", "cron field 1 (minute): step 61 in '*/61' is out of range 1-60"},
      {"*/x * * * *", "UTC", "cron field 1 (minute): step 'x' in '*/x' is not a number"},
      {"1/2/3 * * * *", "UTC", "cron field 1 (minute): step '2/3' in '1/2/3' is not a number"},
      {"30-10 * * * *", "UTC", "cron field 1 (minute): reversed range '30-10': write the smaller value first"},
      {"0 0 * * FRI-MON", "UTC", "cron field 5 (day-of-week): reversed range 'FRI-MON': write the smaller value first"},
      {"1,,2 * * * *", "UTC", "cron field 1 (minute): empty list item"},
      {"0 0 1, * *", "UTC", "cron field 3 (day-of-month): empty list item"},
      {"5- * * * *", "UTC", "cron field 1 (minute): missing value in '5-'"},
      {"-5 * * * *", "UTC", "cron field 1 (minute): missing value in '-5'"},
      {"abc * * * *", "UTC", "cron field 1 (minute): 'abc' is not a number 0-59"},
      {"MON * * * *", "UTC", "cron field 1 (minute): 'MON' is not a number 0-59"},
      {"0 0 ? * *", "UTC", "cron field 3 (day-of-month): '?' is not a number 1-31"},
      {"0 0 L * *", "UTC", "cron field 3 (day-of-month): 'L' is not a number 1-31"},
      {"0 0 * FOO *", "UTC", "cron field 4 (month): 'FOO' is not 1-12 or JAN-DEC"},
      {"0 0 * * MONDAY", "UTC", "cron field 5 (day-of-week): 'MONDAY' is not 0-7 or SUN-SAT"},
      {"0 0 * * 1#2", "UTC", "cron field 5 (day-of-week): '1#2' is not 0-7 or SUN-SAT"},
      {"@reboot", "UTC", "@reboot is not supported: the daemon runs schedules, not boot jobs"},
      {"@fortnightly", "UTC",
       "unknown macro '@fortnightly': expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually"},
      {"@Daily", "UTC",
       "unknown macro '@Daily': expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually"},
      {"every", "UTC", "'every' needs a duration, e.g. every 15m or every 1h30m"},
      {"every 500ms", "UTC", "every 500ms is shorter than the minimum of 1s"},
      {"every 0s", "UTC", "every 0s is shorter than the minimum of 1s"},
      {"every 366d", "UTC", "every 366d is longer than the maximum of 365d: use a cron expression instead"},
      {"30 6 * * *", "Europe/Stokholm", "unknown time zone 'Europe/Stokholm'"},
      {"every 1h", "Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"},
      {"@daily", "", "unknown time zone ''"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.expression);
    CAPTURE(row.zone);
    CHECK(parse_error(row.expression, row.zone) == row.message);
  }
  // Duration syntax errors come from the shared configuration grammar (util/duration.hpp), prefixed.
  for (const std::string_view text : {"every 15x", "every 30m1h", "every -5m", "every 1.5h", "every 1h 30m"}) {
    CAPTURE(text);
    CHECK(parse_error(text).starts_with("every: "));
  }
  CHECK_FALSE(Schedule::parse("0 25 * * *").has_value());  // the error pointer is optional
}

TEST_CASE("schedule: a parsed schedule is a value that remembers its text") {
  const auto original = make("30 6 * * *", "Europe/Stockholm");
  const Schedule copy = original;
  CHECK(copy.expression() == "30 6 * * *");
  CHECK(copy.timezone() == "Europe/Stockholm");
  CHECK(copy.next_after(at("2026-03-28T12:00")) == original.next_after(at("2026-03-28T12:00")));
  CHECK(make("every 15m").timezone() == "UTC");
}

TEST_CASE("schedule: next_after is fast and bounded over long searches (performance sanity)") {
  const auto leap_day = make("0 12 29 2 *", "Europe/Stockholm");
  const TimePoint start = at("2026-03-01T00:00");
  int iterations = 0;
  for (int i = 0; i < 10'000; ++i, ++iterations) {
    const TimePoint after = start + std::chrono::hours{i};
    const TimePoint next = leap_day.next_after(after);
    REQUIRE(next > after);
    REQUIRE(next - after < 24h * 366 * 4);
  }
  // Chained through the 2026-03-29 spring forward: a wildcard job stays exactly 5 real minutes apart.
  const auto five = make("*/5 * * * *", "Europe/Stockholm");
  TimePoint t = at("2026-03-20T00:00");
  for (int i = 0; i < 10'000; ++i, ++iterations) {
    const TimePoint next = five.next_after(t);
    REQUIRE(next - t == 5min);
    t = next;
  }
  CHECK(iterations == 20'000);
  CHECK(t == at("2026-03-20T00:00") + 50'000min);
}

// The schedule loop's decision when it wakes (issue 12, item 6): after a stall, a suspend or a clock
// step at most one slot runs, the newest; `catchup:` decides only whether a late one does.
TEST_CASE("schedule: due_slots runs at most the newest slot, late ones by the catch-up rule") {
  using apsis::schedule::CatchUp;
  struct Row {
    const char* name;
    const char* expression;
    TimePoint handled;
    TimePoint now;
    Milliseconds late_after;
    CatchUp catch_up;
    std::optional<TimePoint> start;
    bool caught_up;
    std::optional<TimePoint> first_passed;
    TimePoint handled_after;
  };
  const auto t = at("2026-03-01T10:00");
  const auto none = std::optional<TimePoint>{};
  const std::vector<Row> rows{
      {"not due yet", "every 10s", t, t + 5s, 60s, CatchUp::latest, none, false, none, t},
      {"on time", "every 10s", t, t + 10s + 5ms, 60s, CatchUp::latest, t + 10s, false, none, t + 10s},
      {"exactly at the slot, no slack", "every 10s", t, t + 10s, 0s, CatchUp::none, t + 10s, false, none, t + 10s},
      {"a 35 s stall: the newest only, the rest passed", "every 10s", t, t + 35s, 60s, CatchUp::latest, t + 30s, false,
       t + 10s, t + 30s},
      {"a 35 s stall with catchup none: the newest is on time", "every 10s", t, t + 35s, 60s, CatchUp::none, t + 30s,
       false, t + 10s, t + 30s},
      {"suspended 2.5 h, catchup latest", "0 * * * *", t, t + 150min, 60s, CatchUp::latest, t + 120min, true,
       t + 60min, t + 120min},
      {"suspended 2.5 h, catchup none", "0 * * * *", t, t + 150min, 60s, CatchUp::none, none, false, t + 60min,
       t + 120min},
      {"one hourly slot 30 min late, catchup none", "0 * * * *", t, t + 90min, 60s, CatchUp::none, none, false,
       t + 60min, t + 60min},
      {"clock stepped back an hour", "0 * * * *", t, t - 60min, 60s, CatchUp::latest, none, false, none, t},
      {"clock stepped back across the slot", "every 10s", t + 10s, t + 5s, 60s, CatchUp::latest, none, false, none,
       t + 10s},
      {"start-up counts any passed slot as missed (none)", "every 2s", t, t + 5500ms, 0s, CatchUp::none, none, false,
       t + 2s, t + 4s},
      {"start-up, catchup latest", "every 2s", t, t + 5500ms, 0s, CatchUp::latest, t + 4s, true, t + 2s, t + 4s},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    const auto due =
        apsis::schedule::due_slots(make(row.expression), row.handled, row.now, row.late_after, row.catch_up);
    CHECK(due.start == row.start);
    CHECK(due.caught_up == row.caught_up);
    CHECK(due.first_passed == row.first_passed);
    CHECK(due.handled == row.handled_after);
  }
}
