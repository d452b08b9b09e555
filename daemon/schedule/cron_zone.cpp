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

// The first local minute of `spec` inside a gap, or nullopt if the transition is no gap or holds none.
std::optional<LocalMinutes> match_in_gap(const CronSpec& spec, const Transition& transition) {
  if (transition.before >= transition.after) return std::nullopt;
  return spec.next_match(ceil_minutes(transition.before), ceil_minutes(transition.after));
}

// Overlaps last hours at most; a segment ending further away than this cannot repeat the slot's local time.
constexpr seconds kLongestOverlap = std::chrono::hours{24};

}  // namespace

SlotDst describe_cron_slot(const CronSpec& spec, const date::time_zone& zone, SysSeconds slot, SysSeconds previous) {
  const auto segment = zone.get_info(slot);
  const LocalSeconds local = to_local(slot, segment.offset);
  // Only a transition since the previous slot can have skipped times for this one; a repeat is near by definition.
  const bool changed_since_previous = segment.begin > previous;
  if (changed_since_previous || slot - segment.begin <= kLongestOverlap) {
    const Transition into = transition_into(zone, segment);
    const auto wanted = changed_since_previous ? match_in_gap(spec, into) : std::nullopt;
    if (wanted && spec.fixed_time && slot == segment.begin) return {DstAdjustment::gap_moved, *wanted};
    if (wanted && !spec.fixed_time) return {DstAdjustment::gap_skipped, *wanted};
    if (into.before > into.after && local < into.before) return {DstAdjustment::repeated_second};
  }
  if (segment.end - slot <= kLongestOverlap) {
    const auto next = zone.get_info(segment.end);
    const LocalSeconds repeated_from = to_local(segment.end, next.offset);
    if (repeated_from <= local)
      return {spec.fixed_time ? DstAdjustment::repeated_once : DstAdjustment::repeated_first};
  }
  return {};
}

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
