// The coming slots of a schedule as a person checks them: each in the schedule's zone and in UTC, with what
// daylight saving does to it. The slots are Schedule::next_after's and the marks come from the rules that
// placed them (cron_zone.hpp), so a preview cannot disagree with the service. Pure apart from the tz database.
#pragma once

#include <date/date.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "schedule/cron_zone.hpp"
#include "schedule/schedule.hpp"

namespace apsis::schedule {

// A change of the zone's UTC offset between the previous slot (or the preview's start) and this slot.
struct OffsetChange {
  TimePoint at;                  // the instant of the latest transition in between
  date::local_seconds before;    // the clock's reading just before it, in the old offset
  date::local_seconds after;     // ... and from it on: later than `before` = a gap, earlier = an overlap
  std::chrono::seconds from{};   // the previous slot's offset
  std::chrono::seconds to{};     // this slot's offset
  bool dst_starts{false};        // the transition goes from standard time into daylight saving time
  bool dst_ends{false};          // ... or back
  std::string zone_before;       // the abbreviations on either side of the transition ("CEST", "CET")
  std::string zone_after;

  friend bool operator==(const OffsetChange&, const OffsetChange&) = default;
};

struct PreviewSlot {
  TimePoint utc;
  date::local_seconds local;     // the wall clock in the schedule's zone
  std::chrono::seconds offset{}; // local - UTC
  std::string zone;              // the zone's abbreviation at the slot ("CEST", "+1030")
  std::optional<OffsetChange> offset_change;
  detail::SlotDst dst{};         // what the cron DST rules did to this slot ("every" schedules: never anything)
  std::optional<OffsetChange> repeated_by;  // dst is repeated_once/repeated_first: the transition that repeats it
};

// The first `count` slots strictly after `from`. Throws std::runtime_error as Schedule::next_after does.
std::vector<PreviewSlot> preview(const Schedule& schedule, TimePoint from, int count);

// What a person should know about the slot, e.g. "DST starts 2027-03-28 02:00 → 03:00, offset +01:00 → +02:00;
// 02:30 does not exist: runs at 03:00", or "" when nothing happened to it.
std::string dst_note(const PreviewSlot& slot);

// "+01:00", "-04:00", "+10:30".
std::string format_offset(std::chrono::seconds offset);

}  // namespace apsis::schedule
