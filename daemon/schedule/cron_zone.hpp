// Cron slots as instants in an IANA time zone, with cronie's daylight-saving rules.
//
// The zone's history is a sequence of segments with one UTC offset each (date::sys_info). Inside a segment
// local time is UTC + offset, so the matching local minutes come from CronSpec's naive search. At a segment
// boundary local time either jumps forward (a gap: those local times never happen) or back (an overlap:
// those local times happen twice). Like cronie:
//  - wildcard jobs (minute or hour field starts with '*') fire at every local time that actually occurs:
//    nothing in a gap, both passes of an overlap;
//  - fixed-time jobs fire once per local time: a time in the gap fires at the first instant after the gap
//    (the transition itself), a time in the overlap fires only in its first (earlier) pass.
#pragma once

#include <chrono>
#include <optional>

#include "schedule/cron_spec.hpp"

namespace date {
class time_zone;
}

namespace apsis::schedule::detail {

using SysSeconds = std::chrono::sys_seconds;

// The first slot in (after, limit), or nullopt if there is none.
std::optional<SysSeconds> next_cron_slot(const CronSpec& spec, const date::time_zone& zone, SysSeconds after,
                                         SysSeconds limit);

// The last slot in [lower, at], or nullopt if there is none.
std::optional<SysSeconds> latest_cron_slot(const CronSpec& spec, const date::time_zone& zone, SysSeconds at,
                                           SysSeconds lower);

// What the rules above did to one slot, for showing a schedule before it runs (schedule/preview.hpp).
// Kept beside next_cron_slot so the two read the same transitions the same way.
enum class DstAdjustment {
  none,
  gap_moved,        // fixed-time: `wanted` never happened (a gap); this slot, the gap's end, runs it instead
  gap_skipped,      // wildcard: the matching local times from `wanted` on fell into a gap just before: not run
  repeated_once,    // fixed-time: the slot's local time comes again after the next transition; runs only now
  repeated_first,   // wildcard: the same, but the job runs again at the second pass
  repeated_second,  // wildcard: the second pass of a repeated local time
};

struct SlotDst {
  DstAdjustment adjustment{DstAdjustment::none};
  LocalMinutes wanted{};  // gap_moved, gap_skipped: the job's first local time inside the gap
};

// `slot` is a slot next_cron_slot returned after `previous` (the slot before it, or where the search began).
SlotDst describe_cron_slot(const CronSpec& spec, const date::time_zone& zone, SysSeconds slot, SysSeconds previous);

}  // namespace apsis::schedule::detail
