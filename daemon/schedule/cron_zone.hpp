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

}  // namespace apsis::schedule::detail
