// Durations as written in the configuration: "1500ms", "10s", "5m", "2h", "1d", "1h30m". Pure, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/time.hpp"

namespace apsis {

// Parses one or more "<non-negative integer><unit>" parts, units ms, s, m, h, d, largest first and each
// at most once ("1h30m", not "30m1h"). No spaces, signs or fractions. On failure returns nullopt and,
// if `error` is set, a message that quotes the text and says what is expected.
std::optional<Milliseconds> parse_duration(std::string_view text, std::string* error = nullptr);

// The shortest text parse_duration reads back to the same value: "1h30m", "250ms", "0s".
// Negative values get a leading '-' (they never come out of parse_duration).
std::string format_duration(Milliseconds duration);

}  // namespace apsis
