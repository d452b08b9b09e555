#pragma once

// APSIS One's per-account rate limits, as the fake enforces them: "at most `count` requests in any
// sliding window of length `window`", measured on arrival at the fake. Only accepted requests fill
// a window, so a client that is answered 429 is not punished further for having asked.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace apsis_fake {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Event-export submits count as `submits` too: they are export POSTs like the others.
enum class LimitKind : std::size_t { submits, event_submits, polls, tokens, count_ };

inline constexpr std::size_t limit_kind_count = static_cast<std::size_t>(LimitKind::count_);
inline constexpr std::array<std::string_view, limit_kind_count> limit_kind_names{"submits", "event_submits",
                                                                                 "polls", "tokens"};

std::optional<LimitKind> parse_limit_kind(std::string_view name);

struct RateLimit {
    std::uint64_t count = 0;
    milliseconds window{0};
};

// One optional limit per kind; an absent one is not enforced (but still measured over the
// documented window, so max_in_window stays meaningful).
class Limits {
public:
    static Limits documented();
    static Limits off();

    const std::optional<RateLimit>& get(LimitKind kind) const { return limits_[index(kind)]; }
    void set(LimitKind kind, std::optional<RateLimit> limit) { limits_[index(kind)] = limit; }
    milliseconds measuring_window(LimitKind kind) const;

private:
    static std::size_t index(LimitKind kind) { return static_cast<std::size_t>(kind); }
    std::array<std::optional<RateLimit>, limit_kind_count> limits_{};
};

// "5/2s", "60/1m", "off" (not enforced) or "documented" (APSIS's value for that kind).
// Throws std::invalid_argument with a message naming the problem.
std::optional<RateLimit> parse_rate_limit(std::string_view text, LimitKind kind);

// Arrival times inside the last window, oldest first.
class SlidingWindow {
public:
    // Forgets arrivals at or before now - window and returns how many are left.
    std::size_t count_since(Clock::time_point now, milliseconds window);
    void add(Clock::time_point now) { times_.push_back(now); }

private:
    std::deque<Clock::time_point> times_;
};

// What one account did with one kind of request.
struct KindUsage {
    std::uint64_t requests = 0;
    std::uint64_t throttled = 0;
    std::uint64_t max_in_window = 0;
    SlidingWindow accepted;
    SlidingWindow arrived;
};

class AccountUsage {
public:
    // Records an arrival of every kind listed and accepts it only if each kind's limit has room;
    // only an accepted request fills the windows. Throttled counts go to the kinds that were full.
    template <typename Kinds>
    bool admit(const Kinds& kinds, const Limits& limits, Clock::time_point now);

    const KindUsage& usage(LimitKind kind) const { return usage_[static_cast<std::size_t>(kind)]; }

private:
    KindUsage& usage(LimitKind kind) { return usage_[static_cast<std::size_t>(kind)]; }
    void arrive(LimitKind kind, const Limits& limits, Clock::time_point now);
    bool full(LimitKind kind, const Limits& limits, Clock::time_point now);

    std::array<KindUsage, limit_kind_count> usage_{};
};

template <typename Kinds>
bool AccountUsage::admit(const Kinds& kinds, const Limits& limits, Clock::time_point now)
{
    bool accepted = true;
    for (LimitKind kind : kinds) {
        arrive(kind, limits, now);
        if (full(kind, limits, now)) {
            ++usage(kind).throttled;
            accepted = false;
        }
    }
    // Without a limit nothing reads the accepted window, so it is not kept.
    if (accepted)
        for (LimitKind kind : kinds)
            if (limits.get(kind))
                usage(kind).accepted.add(now);
    return accepted;
}

} // namespace apsis_fake
