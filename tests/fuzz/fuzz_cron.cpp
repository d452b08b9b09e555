// libFuzzer target: schedule parsing and evaluation (schedule/schedule.hpp).
//
// Input: "ZONE\nEXPRESSION" (no newline: the whole input is the expression, in UTC). When the text
// parses, the schedule is evaluated around fixed instants chosen near DST changes, leap days, the
// epoch and 2038, and next_after and latest_at_or_before must agree with each other.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "schedule/schedule.hpp"

namespace {

using apsis::Milliseconds;
using apsis::TimePoint;
using apsis::schedule::Schedule;
using namespace std::chrono;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

TimePoint utc(int y, unsigned m, unsigned d, hours h, minutes min = {}, milliseconds ms = {}) {
  return TimePoint{sys_days{year{y} / month{m} / day{d}} + h + min + ms};
}

// All well before 2262 - 50 years, so next_after has no excuse to throw.
const std::array<TimePoint, 8> kInstants{
    utc(1970, 1, 1, 0h),
    utc(1969, 12, 31, 23h, 59min, 59'999ms),  // before the epoch: floors, not truncation
    utc(2000, 2, 29, 12h),
    utc(2024, 3, 31, 0h, 59min, 59'500ms),  // EU spring forward at 01:00 UTC
    utc(2026, 10, 25, 0h, 30min),            // EU fall back at 01:00 UTC
    utc(2026, 11, 1, 5h, 59min),             // US fall back at 06:00 UTC
    utc(2038, 1, 19, 3h, 14min, 8'000ms),
    utc(2099, 12, 31, 23h, 59min),
};

constexpr Milliseconds kWeek = hours{24 * 7};

// A slot n = next_after(t) is strictly later, and nothing lies between: looking back from n finds n,
// looking back from just before n finds a slot at or before t.
void check_next(const Schedule& schedule, TimePoint t) {
  const TimePoint n = schedule.next_after(t);
  require(n > t);
  require(schedule.latest_at_or_before(n, Milliseconds{0}) == n);
  const auto before = schedule.latest_at_or_before(n - 1ms, duration_cast<Milliseconds>(n - t));
  require(!before || *before <= t);
  require(schedule.next_after(n) > n);
}

// A slot found looking back lies in the window, and the next slot after it is later than `at`.
void check_latest(const Schedule& schedule, TimePoint at, Milliseconds horizon) {
  const auto slot = schedule.latest_at_or_before(at, horizon);
  if (!slot) return;
  require(*slot <= at && *slot >= at - horizon);
  require(schedule.next_after(*slot - 1ms) == *slot);
  require(schedule.next_after(*slot) > at);
}

void evaluate(const Schedule& schedule) {
  for (const TimePoint t : kInstants) {
    try {
      check_next(schedule, t);
      check_latest(schedule, t, kWeek);
    } catch (const std::runtime_error&) {
      __builtin_trap();  // every parsed schedule has a slot within 50 years of these instants
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto newline = input.find('\n');
  const std::string_view zone = newline == std::string_view::npos ? "UTC" : input.substr(0, newline);
  const std::string_view expression = newline == std::string_view::npos ? input : input.substr(newline + 1);

  std::string error;
  const auto schedule = Schedule::parse(expression, zone, &error);
  require(schedule.has_value() == error.empty());
  if (schedule) {
    require(schedule->expression() == expression && schedule->timezone() == zone);
    evaluate(*schedule);
  }
  return 0;
}
