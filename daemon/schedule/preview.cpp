#include "schedule/preview.hpp"

#include <date/tz.h>

#include <cstdio>
#include <cstdlib>

namespace apsis::schedule {
namespace {

using date::local_seconds;
using date::sys_seconds;
using detail::DstAdjustment;
using std::chrono::seconds;

local_seconds to_local(sys_seconds t, seconds offset) { return local_seconds{t.time_since_epoch() + offset}; }

// The transition from segment `old_info` into `new_info`, which starts where the transition happens.
OffsetChange change_between(const date::sys_info& old_info, const date::sys_info& new_info) {
  const auto none = std::chrono::minutes::zero();
  return {.at = TimePoint{new_info.begin},
          .before = to_local(new_info.begin, old_info.offset),
          .after = to_local(new_info.begin, new_info.offset),
          .from = old_info.offset,
          .to = new_info.offset,
          .dst_starts = old_info.save == none && new_info.save != none,
          .dst_ends = old_info.save != none && new_info.save == none,
          .zone_before = old_info.abbrev,
          .zone_after = new_info.abbrev};
}

// Offsets differ only across a transition, and the latest one before `slot` starts the slot's segment.
std::optional<OffsetChange> change_since(const date::time_zone& zone, sys_seconds previous,
                                         const date::sys_info& slot_info) {
  const auto previous_info = zone.get_info(previous);
  if (previous_info.offset == slot_info.offset) return std::nullopt;
  auto change = change_between(zone.get_info(slot_info.begin - seconds{1}), slot_info);
  change.from = previous_info.offset;
  return change;
}

// "02:30", or "02:30:17" for the odd offset in seconds (historic local mean time).
std::string clock_time(local_seconds t) {
  const auto time = date::make_time(t - date::floor<date::days>(t));
  if (time.seconds().count() != 0) return date::format("%H:%M:%S", t);
  return date::format("%H:%M", t);
}

std::string describe(const OffsetChange& change) {
  const char* what = change.dst_starts ? "DST starts"
                     : change.dst_ends ? "DST ends"
                     : change.after > change.before ? "clock jumps forward"
                                                    : "clock goes back";
  return std::string(what) + " " + date::format("%F", date::floor<date::days>(change.before)) + " " +
         clock_time(change.before) + " → " + clock_time(change.after);
}

std::string repeat_note(const PreviewSlot& slot) {
  const auto& change = *slot.repeated_by;
  const std::string runs = slot.dst.adjustment == DstAdjustment::repeated_once
                               ? "runs in " + change.zone_before + ", not again in " + change.zone_after
                               : "runs in " + change.zone_before + " and again in " + change.zone_after;
  return describe(change) + ": " + clock_time(slot.local) + " occurs twice, " + runs;
}

std::string adjustment_note(const PreviewSlot& slot) {
  switch (slot.dst.adjustment) {
    case DstAdjustment::gap_moved:
      return clock_time(local_seconds{slot.dst.wanted}) + " does not exist, runs at " + clock_time(slot.local);
    case DstAdjustment::gap_skipped:
      return "slots from " + clock_time(local_seconds{slot.dst.wanted}) + " in the gap do not exist, not run";
    case DstAdjustment::repeated_second:
      return clock_time(slot.local) + " again, now in " + slot.zone;
    default:
      return "";
  }
}

}  // namespace

std::string format_offset(seconds offset) {
  const long total = static_cast<long>(offset.count());
  const long magnitude = std::labs(total);
  char text[48];  // room for any long, so the compiler can see nothing is cut
  std::snprintf(text, sizeof text, "%c%02ld:%02ld", total < 0 ? '-' : '+', magnitude / 3600, magnitude / 60 % 60);
  return text;
}

std::vector<PreviewSlot> preview(const Schedule& schedule, TimePoint from, int count) {
  const date::time_zone& zone = schedule.zone();
  std::vector<PreviewSlot> slots;
  TimePoint previous = from;
  for (int i = 0; i < count; ++i) {
    const TimePoint utc = schedule.next_after(previous);
    const sys_seconds slot_seconds = date::floor<seconds>(utc);
    const sys_seconds previous_seconds = date::floor<seconds>(previous);
    const auto info = zone.get_info(slot_seconds);
    PreviewSlot slot{.utc = utc,
                     .local = to_local(slot_seconds, info.offset),
                     .offset = info.offset,
                     .zone = info.abbrev,
                     .offset_change = change_since(zone, previous_seconds, info),
                     .dst = {},
                     .repeated_by = std::nullopt};
    if (const auto* spec = schedule.cron())
      slot.dst = detail::describe_cron_slot(*spec, zone, slot_seconds, previous_seconds);
    if (slot.dst.adjustment == DstAdjustment::repeated_once || slot.dst.adjustment == DstAdjustment::repeated_first)
      slot.repeated_by = change_between(info, zone.get_info(info.end));  // the repeat comes at the segment's end
    slots.push_back(std::move(slot));
    previous = utc;
  }
  return slots;
}

std::string dst_note(const PreviewSlot& slot) {
  std::string note;
  if (slot.offset_change)
    note = describe(*slot.offset_change) + ", offset " + format_offset(slot.offset_change->from) + " → " +
           format_offset(slot.offset_change->to);
  if (slot.repeated_by) return note + (note.empty() ? "" : "; ") + repeat_note(slot);
  const std::string adjusted = adjustment_note(slot);
  if (!adjusted.empty()) note += (note.empty() ? "" : ": ") + adjusted;
  return note;
}

}  // namespace apsis::schedule
