#include "limits.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace apsis_fake {

namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// The table in apsis-api.md: export POSTs 1/s, event exports 1/min, poll GETs 60/min,
// token requests 10/min, all per account.
constexpr std::array<RateLimit, limit_kind_count> documented_limits{
    RateLimit{1, seconds(1)}, RateLimit{1, minutes(1)}, RateLimit{60, minutes(1)}, RateLimit{10, minutes(1)}};

std::uint64_t parse_count(std::string_view text)
{
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value == 0)
        throw std::invalid_argument("limit count must be a positive integer, got '" + std::string(text) + "'");
    return value;
}

// Like the fake's --ready-after durations, but a limit window must name its unit.
milliseconds parse_window(std::string_view text)
{
    auto digits_end = text.find_first_not_of("0123456789");
    if (digits_end == 0 || digits_end == std::string_view::npos)
        throw std::invalid_argument("limit window needs a number and a unit (ms, s, m), got '" +
                                    std::string(text) + "'");
    std::uint64_t n = parse_count(text.substr(0, digits_end));
    std::string_view unit = text.substr(digits_end);
    if (unit == "ms")
        return milliseconds(n);
    if (unit == "s")
        return seconds(n);
    if (unit == "m")
        return minutes(n);
    throw std::invalid_argument("limit window unit must be ms, s or m, got '" + std::string(text) + "'");
}

} // namespace

std::optional<LimitKind> parse_limit_kind(std::string_view name)
{
    for (std::size_t i = 0; i < limit_kind_count; ++i)
        if (name == limit_kind_names[i])
            return static_cast<LimitKind>(i);
    return std::nullopt;
}

Limits Limits::documented()
{
    Limits limits;
    for (std::size_t i = 0; i < limit_kind_count; ++i)
        limits.limits_[i] = documented_limits[i];
    return limits;
}

Limits Limits::off() { return Limits{}; }

milliseconds Limits::measuring_window(LimitKind kind) const
{
    const auto& limit = get(kind);
    return limit ? limit->window : documented_limits[index(kind)].window;
}

std::optional<RateLimit> parse_rate_limit(std::string_view text, LimitKind kind)
{
    if (text == "off")
        return std::nullopt;
    if (text == "documented")
        return documented_limits[static_cast<std::size_t>(kind)];
    auto slash = text.find('/');
    if (slash == std::string_view::npos)
        throw std::invalid_argument("limit must be COUNT/WINDOW (e.g. 5/2s), 'off' or 'documented', got '" +
                                    std::string(text) + "'");
    return RateLimit{parse_count(text.substr(0, slash)), parse_window(text.substr(slash + 1))};
}

std::size_t SlidingWindow::count_since(Clock::time_point now, milliseconds window)
{
    while (!times_.empty() && times_.front() <= now - window)
        times_.pop_front();
    return times_.size();
}

void AccountUsage::arrive(LimitKind kind, const Limits& limits, Clock::time_point now)
{
    auto& u = usage(kind);
    ++u.requests;
    u.arrived.add(now);
    std::uint64_t in_window = u.arrived.count_since(now, limits.measuring_window(kind));
    u.max_in_window = std::max(u.max_in_window, in_window);
}

bool AccountUsage::full(LimitKind kind, const Limits& limits, Clock::time_point now)
{
    const auto& limit = limits.get(kind);
    return limit && usage(kind).accepted.count_since(now, limit->window) >= limit->count;
}

} // namespace apsis_fake
