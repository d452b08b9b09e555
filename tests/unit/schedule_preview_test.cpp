// preview(): the slots are next_after's; these tables pin the local reading, the zone and the DST notes.
// Transition instants checked with Python's zoneinfo and `TZ=... date -d @EPOCH`.
#include "schedule/preview.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

using apsis::TimePoint;
using apsis::schedule::PreviewSlot;
using apsis::schedule::Schedule;
using apsis::schedule::detail::DstAdjustment;

namespace {

TimePoint at(std::string_view iso) {
  const auto parsed = apsis::parse_iso8601(std::string(iso) + ":00.000Z");
  REQUIRE(parsed);
  return *parsed;
}

Schedule make(std::string_view expression, std::string_view zone) {
  std::string error;
  const auto schedule = Schedule::parse(expression, zone, &error);
  INFO("parse error: ", error);
  REQUIRE(schedule);
  return *schedule;
}

// One slot as "UTC | local zone offset | note", so a failure shows every column at once.
std::string row(const PreviewSlot& slot) {
  return apsis::format_iso8601(slot.utc).substr(0, 16) + " | " + date::format("%F %H:%M", slot.local) + " " +
         slot.zone + " " + apsis::schedule::format_offset(slot.offset) + " | " + apsis::schedule::dst_note(slot);
}

struct PreviewRow {
  std::string_view expression;
  std::string_view zone;
  std::string_view from;
  std::vector<std::string> slots;
};

void check(const PreviewRow& table_row) {
  const auto schedule = make(table_row.expression, table_row.zone);
  const auto slots = preview(schedule, at(table_row.from), static_cast<int>(table_row.slots.size()));
  std::vector<std::string> got;
  for (const auto& slot : slots) got.push_back(row(slot));
  CHECK(got == table_row.slots);
}

}  // namespace

TEST_CASE("preview: Europe/Stockholm, a fixed time skipped by spring-forward runs at the gap's end") {
  check({"30 2 * * *", "Europe/Stockholm", "2027-03-26T00:00",
         {"2027-03-26T01:30 | 2027-03-26 02:30 CET +01:00 | ",
          "2027-03-27T01:30 | 2027-03-27 02:30 CET +01:00 | ",
          "2027-03-28T01:00 | 2027-03-28 03:00 CEST +02:00 | DST starts 2027-03-28 02:00 → 03:00, offset +01:00 → "
          "+02:00: 02:30 does not exist, runs at 03:00",
          "2027-03-29T00:30 | 2027-03-29 02:30 CEST +02:00 | "}});
}

TEST_CASE("preview: Europe/Stockholm, a fixed time repeated by fall-back runs once, at the first pass") {
  check({"30 2 * * *", "Europe/Stockholm", "2027-10-30T00:00",
         {"2027-10-30T00:30 | 2027-10-30 02:30 CEST +02:00 | ",
          "2027-10-31T00:30 | 2027-10-31 02:30 CEST +02:00 | DST ends 2027-10-31 03:00 → 02:00: 02:30 occurs twice, "
          "runs in CEST, not again in CET",
          "2027-11-01T01:30 | 2027-11-01 02:30 CET +01:00 | DST ends 2027-10-31 03:00 → 02:00, offset +02:00 → +01:00",
          "2027-11-02T01:30 | 2027-11-02 02:30 CET +01:00 | "}});
}

TEST_CASE("preview: Europe/Stockholm, a wildcard hour loses the gap's slots and runs both passes of the fold") {
  check({"30 * * * *", "Europe/Stockholm", "2027-03-28T00:00",
         {"2027-03-28T00:30 | 2027-03-28 01:30 CET +01:00 | ",
          "2027-03-28T01:30 | 2027-03-28 03:30 CEST +02:00 | DST starts 2027-03-28 02:00 → 03:00, offset +01:00 → "
          "+02:00: slots from 02:30 in the gap do not exist, not run",
          "2027-03-28T02:30 | 2027-03-28 04:30 CEST +02:00 | "}});
  check({"30 * * * *", "Europe/Stockholm", "2027-10-31T00:00",
         {"2027-10-31T00:30 | 2027-10-31 02:30 CEST +02:00 | DST ends 2027-10-31 03:00 → 02:00: 02:30 occurs twice, "
          "runs in CEST and again in CET",
          "2027-10-31T01:30 | 2027-10-31 02:30 CET +01:00 | DST ends 2027-10-31 03:00 → 02:00, offset +02:00 → "
          "+01:00: 02:30 again, now in CET",
          "2027-10-31T02:30 | 2027-10-31 03:30 CET +01:00 | "}});
}

TEST_CASE("preview: America/New_York, spring-forward and fall-back") {
  check({"30 2 * * *", "America/New_York", "2027-03-13T00:00",
         {"2027-03-13T07:30 | 2027-03-13 02:30 EST -05:00 | ",
          "2027-03-14T07:00 | 2027-03-14 03:00 EDT -04:00 | DST starts 2027-03-14 02:00 → 03:00, offset -05:00 → "
          "-04:00: 02:30 does not exist, runs at 03:00",
          "2027-03-15T06:30 | 2027-03-15 02:30 EDT -04:00 | "}});
  check({"30 1 * * *", "America/New_York", "2027-11-06T00:00",
         {"2027-11-06T05:30 | 2027-11-06 01:30 EDT -04:00 | ",
          "2027-11-07T05:30 | 2027-11-07 01:30 EDT -04:00 | DST ends 2027-11-07 02:00 → 01:00: 01:30 occurs twice, "
          "runs in EDT, not again in EST",
          "2027-11-08T06:30 | 2027-11-08 01:30 EST -05:00 | DST ends 2027-11-07 02:00 → 01:00, offset -04:00 → -05:00"}});
}

TEST_CASE("preview: Australia/Lord_Howe, a 30-minute daylight saving shift") {
  check({"15 2 * * *", "Australia/Lord_Howe", "2027-10-01T00:00",
         {"2027-10-01T15:45 | 2027-10-02 02:15 +1030 +10:30 | ",
          "2027-10-02T15:30 | 2027-10-03 02:30 +11 +11:00 | DST starts 2027-10-03 02:00 → 02:30, offset +10:30 → "
          "+11:00: 02:15 does not exist, runs at 02:30",
          "2027-10-03T15:15 | 2027-10-04 02:15 +11 +11:00 | "}});
  check({"45 1 * * *", "Australia/Lord_Howe", "2027-04-02T00:00",
         {"2027-04-02T14:45 | 2027-04-03 01:45 +11 +11:00 | ",
          "2027-04-03T14:45 | 2027-04-04 01:45 +11 +11:00 | DST ends 2027-04-04 02:00 → 01:30: 01:45 occurs twice, "
          "runs in +11, not again in +1030",
          "2027-04-04T15:15 | 2027-04-05 01:45 +1030 +10:30 | DST ends 2027-04-04 02:00 → 01:30, offset +11:00 → "
          "+10:30"}});
}

TEST_CASE("preview: UTC never marks a slot") {
  check({"30 2 * * *", "UTC", "2027-03-26T00:00",
         {"2027-03-26T02:30 | 2027-03-26 02:30 UTC +00:00 | ", "2027-03-27T02:30 | 2027-03-27 02:30 UTC +00:00 | ",
          "2027-03-28T02:30 | 2027-03-28 02:30 UTC +00:00 | ", "2027-03-29T02:30 | 2027-03-29 02:30 UTC +00:00 | "}});
  check({"30 * * * *", "UTC", "2027-10-31T00:00",
         {"2027-10-31T00:30 | 2027-10-31 00:30 UTC +00:00 | ", "2027-10-31T01:30 | 2027-10-31 01:30 UTC +00:00 | "}});
}

TEST_CASE("preview: an interval keeps real time and only marks the offset change") {
  check({"every 12h", "Europe/Stockholm", "2027-03-27T12:00",
         {"2027-03-28T00:00 | 2027-03-28 01:00 CET +01:00 | ",
          "2027-03-28T12:00 | 2027-03-28 14:00 CEST +02:00 | DST starts 2027-03-28 02:00 → 03:00, offset +01:00 → "
          "+02:00"}});
}

TEST_CASE("preview: the slots are next_after's, in order") {
  const auto schedule = make("*/20 1-3 * * *", "Europe/Stockholm");
  TimePoint previous = at("2027-10-30T22:00");
  for (const auto& slot : preview(schedule, previous, 30)) {
    CHECK(slot.utc == schedule.next_after(previous));
    previous = slot.utc;
  }
}

TEST_CASE("preview: format_offset") {
  using std::chrono::minutes;
  CHECK(apsis::schedule::format_offset(minutes{0}) == "+00:00");
  CHECK(apsis::schedule::format_offset(minutes{630}) == "+10:30");
  CHECK(apsis::schedule::format_offset(minutes{-300}) == "-05:00");
  CHECK(apsis::schedule::format_offset(minutes{-210}) == "-03:30");
}

// Every mark checked against date's own reading of the local time (local_info: unique, nonexistent or
// ambiguous), over two years of slots in zones with 1-hour, 30-minute and southern-hemisphere DST.
TEST_CASE("preview: marks agree with the zone's local_info over two years") {
  using apsis::schedule::detail::LocalMinutes;
  const std::vector<std::string_view> zones = {"Europe/Stockholm", "America/New_York", "Australia/Lord_Howe",
                                               "Australia/Sydney", "Pacific/Chatham", "UTC"};
  const std::vector<std::string_view> expressions = {"30 2 * * *", "15 2 * * *", "45 1 * * *", "30 * * * *",
                                                     "*/20 1-3 * * *", "0 2,3 * * 0", "45 2 * * *"};
  std::map<DstAdjustment, int> seen;
  for (const auto zone_name : zones) {
    for (const auto expression : expressions) {
      CAPTURE(zone_name);
      CAPTURE(expression);
      const auto schedule = make(expression, zone_name);
      const auto& zone = schedule.zone();
      const bool fixed = schedule.cron()->fixed_time;
      const auto slots = preview(schedule, at("2027-01-01T00:00"), 1000);
      auto previous_offset = zone.get_info(date::floor<std::chrono::seconds>(at("2027-01-01T00:00"))).offset;
      for (const auto& slot : slots) {
        CAPTURE(row(slot));
        CHECK(slot.offset_change.has_value() == (slot.offset != previous_offset));
        previous_offset = slot.offset;
        const auto kind = zone.get_info(slot.local).result;
        const auto adjustment = slot.dst.adjustment;
        ++seen[adjustment];
        const bool repeated = adjustment == DstAdjustment::repeated_once ||
                              adjustment == DstAdjustment::repeated_first ||
                              adjustment == DstAdjustment::repeated_second;
        CHECK(repeated == (kind == date::local_info::ambiguous));
        CHECK((adjustment == DstAdjustment::repeated_once) == (repeated && fixed));
        if (adjustment == DstAdjustment::gap_moved || adjustment == DstAdjustment::gap_skipped) {
          CHECK(zone.get_info(date::local_seconds{slot.dst.wanted}).result == date::local_info::nonexistent);
          CHECK(fixed == (adjustment == DstAdjustment::gap_moved));
          CHECK(slot.offset_change.has_value());
        }
        if (zone_name == "UTC") CHECK(apsis::schedule::dst_note(slot).empty());
      }
    }
  }
  // The tables above are only worth something if every kind of mark came up.
  for (const auto kind : {DstAdjustment::gap_moved, DstAdjustment::gap_skipped, DstAdjustment::repeated_once,
                          DstAdjustment::repeated_first, DstAdjustment::repeated_second}) {
    CAPTURE(static_cast<int>(kind));
    CHECK(seen[kind] > 0);
  }
}
