#include "util/duration.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <limits>

namespace apsis {
namespace {

struct Unit {
  std::string_view name;
  std::int64_t milliseconds;
};

// Largest first: compound durations must list their parts in this order.
constexpr std::array<Unit, 5> kUnits{{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

constexpr std::string_view kUnitHint = "use ms, s, m, h or d";

std::optional<Milliseconds> fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return std::nullopt;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

std::optional<std::size_t> unit_index(std::string_view name) {
  for (std::size_t i = 0; i < kUnits.size(); ++i)
    if (kUnits[i].name == name) return i;
  return std::nullopt;
}

}  // namespace

std::optional<Milliseconds> parse_duration(std::string_view text, std::string* error) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (text.empty()) return fail(error, "empty duration: expected e.g. 10s, 5m or 1h30m");
  if (text.find_first_of(" \t\r\n\v\f") != std::string_view::npos)
    return fail(error, "spaces are not allowed in duration " + quoted + ": write e.g. 1h30m");
  if (text.front() == '-') return fail(error, "negative duration " + quoted + ": expected a value >= 0");

  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // parts must use units from this index on
  std::size_t pos = 0;
  while (pos < text.size()) {
    const char c = text[pos];
    if (!is_digit(c))
      return fail(error, "unexpected '" + std::string(1, c) + "' in duration " + quoted +
                             ": expected a number then a unit (" + std::string(kUnitHint) + ")");

    std::int64_t amount = 0;
    for (; pos < text.size() && is_digit(text[pos]); ++pos) {
      const int digit = text[pos] - '0';
      if (amount > (kMax - digit) / 10) return fail(error, "duration " + quoted + " is too large");
      amount = amount * 10 + digit;
    }
    if (pos < text.size() && (text[pos] == '.' || text[pos] == ','))
      return fail(error, "fractions are not allowed in duration " + quoted + ": combine units instead, e.g. 1m30s");

    const std::size_t unit_start = pos;
    while (pos < text.size() && is_letter(text[pos])) ++pos;
    const std::string_view unit_name = text.substr(unit_start, pos - unit_start);
    if (unit_name.empty()) return fail(error, "missing unit in " + quoted + ": " + std::string(kUnitHint));
    const auto unit = unit_index(unit_name);
    if (!unit)
      return fail(error, "unknown unit '" + std::string(unit_name) + "' in " + quoted + ": " + std::string(kUnitHint));
    if (*unit < next_unit)
      return fail(error,
                  "units out of order in " + quoted + ": write the largest unit first, each at most once (e.g. 1h30m)");
    next_unit = *unit + 1;

    const std::int64_t scale = kUnits[*unit].milliseconds;
    if (amount > kMax / scale || total > kMax - amount * scale)
      return fail(error, "duration " + quoted + " is too large");
    total += amount * scale;
  }
  return Milliseconds{total};
}

std::string format_duration(Milliseconds duration) {
  const std::int64_t ms = duration.count();
  if (ms == 0) return "0s";
  std::string out;
  std::uint64_t rest = static_cast<std::uint64_t>(ms);
  if (ms < 0) {
    out = "-";
    rest = 0 - rest;  // well defined for the minimum value too
  }
  for (const auto& unit : kUnits) {
    const auto scale = static_cast<std::uint64_t>(unit.milliseconds);
    if (rest >= scale) {
      out += std::to_string(rest / scale);
      out += unit.name;
      rest %= scale;
    }
  }
  return out;
}

}  // namespace apsis
