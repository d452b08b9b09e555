#include "schedule/cron_zone.hpp"

#include <date/tz.h>

#include <algorithm>

namespace apsis::schedule::detail {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using LocalSeconds = date::local_seconds;

LocalSeconds to_local(SysSeconds t, seconds offset) { return LocalSeconds{t.time_since_epoch() + offset}; }
SysSeconds to_sys(LocalMinutes t, seconds offset) { return SysSeconds{t.time_since_epoch() - offset}; }

// Offsets need not be whole minutes (historic local mean time), so local bounds are rounded to the
// minute grid: for a minute m and any instant x, m >= x exactly when m >= ceil(x).
LocalMinutes ceil_minutes(LocalSeconds t) { return date::ceil<minutes>(t); }

// Local clock readings at the start of `segment`: just before it (in the previous offset) and from it on.
// before < after is a gap ([before, after) never happens); before > after an overlap ([after, before) repeats).
struct Transition {
  LocalSeconds before;
  LocalSeconds after;
};

Transition transition_into(const date::time_zone& zone, const date::sys_info& segment) {
  const auto previous = zone.get_info(segment.begin - seconds{1});
  return {to_local(segment.begin, previous.offset), to_local(segment.begin, segment.offset)};
}

// A fixed-time job whose local time falls into the gap fires once, at the first instant after it.
bool gap_matches(const CronSpec& spec, const Transition& transition) {
  return transition.before < transition.after &&
         spec.next_match(ceil_minutes(transition.before), ceil_minutes(transition.after)).has_value();
}

}  // namespace

std::optional<SysSeconds> next_cron_slot(const CronSpec& spec, const date::time_zone& zone, SysSeconds after,
                                         SysSeconds limit) {
  for (SysSeconds t = after + seconds{1}; t < limit;) {
    const auto segment = zone.get_info(t);
    const SysSeconds end = std::min(segment.end, limit);
    LocalMinutes from = ceil_minutes(to_local(t, segment.offset));
    if (spec.fixed_time) {
      const Transition transition = transition_into(zone, segment);
      // The gap slot sits exactly at segment.begin, so it is eligible only when the search starts there.
      if (segment.begin == t && gap_matches(spec, transition)) return t;
      // Local times the previous segment already covered (the overlap) ran in their first pass.
      from = std::max(from, ceil_minutes(transition.before));
    }
    if (const auto local = spec.next_match(from, ceil_minutes(to_local(end, segment.offset))))
      return to_sys(*local, segment.offset);
    t = end;
  }
  return std::nullopt;
}

std::optional<SysSeconds> latest_cron_slot(const CronSpec& spec, const date::time_zone& zone, SysSeconds at,
                                           SysSeconds lower) {
  for (SysSeconds t = at; t >= lower;) {
    const auto segment = zone.get_info(t);
    LocalMinutes floor = ceil_minutes(to_local(std::max(segment.begin, lower), segment.offset));
    std::optional<Transition> transition;
    if (spec.fixed_time) {
      transition = transition_into(zone, segment);
      floor = std::max(floor, ceil_minutes(transition->before));  // the overlap's second pass never fires
    }
    if (const auto local = spec.prev_match(date::floor<minutes>(to_local(t, segment.offset)), floor))
      return to_sys(*local, segment.offset);
    // Everything inside the segment is later than its start, so the gap slot comes last going backwards.
    if (transition && segment.begin >= lower && gap_matches(spec, *transition)) return segment.begin;
    t = segment.begin - seconds{1};
  }
  return std::nullopt;
}

}  // namespace apsis::schedule::detail
