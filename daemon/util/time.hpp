// Wall-clock time as the daemon sees it: injected, so tests of day-long expiries run in milliseconds.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace apsis {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;
using Milliseconds = std::chrono::milliseconds;

// The source of "now" for everything that records or compares wall-clock times.
using NowFunction = std::function<TimePoint()>;
inline NowFunction system_now() { return [] { return Clock::now(); }; }

// "2026-11-29T06:30:00.000Z": ISO-8601 UTC with milliseconds; sorts correctly as text.
std::string format_iso8601(TimePoint);
std::optional<TimePoint> parse_iso8601(std::string_view);

}  // namespace apsis
