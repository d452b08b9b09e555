// Parsing of cron text into CronSpec, following Vixie cron/cronie: lists, ranges, steps, month and weekday
// names, 7 = Sunday, and the '*'-prefix flags that decide day-field semantics and DST behaviour.
#include <array>
#include <charconv>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "schedule/cron_spec.hpp"

namespace apsis::schedule::detail {
namespace {

constexpr std::array<std::string_view, 12> kMonthNames{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct FieldRule {
  std::string_view name;
  int min;
  int max;
  std::span<const std::string_view> names;  // names[i] means min + i; empty where names are not allowed
  std::string_view expected;                // what a value may look like, for messages
};

const std::array<FieldRule, 5> kFields{{
    {"minute", 0, 59, {}, "a number 0-59"},
    {"hour", 0, 23, {}, "a number 0-23"},
    {"day-of-month", 1, 31, {}, "a number 1-31"},
    {"month", 1, 12, kMonthNames, "1-12 or JAN-DEC"},
    {"day-of-week", 0, 7, kDayNames, "0-7 or SUN-SAT"},
}};

// What the shorthands stand for, as in cronie's entry.c.
constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kMacros{{
    {"@hourly", "0 * * * *"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"},
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
}};

// The longest each month can be; February counts its leap day, which does occur every few years.
constexpr std::array<int, 13> kMaxDaysInMonth{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

std::optional<CronSpec> fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return std::nullopt;
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && is_space(text[pos])) ++pos;
    const std::size_t start = pos;
    while (pos < text.size() && !is_space(text[pos])) ++pos;
    if (pos > start) fields.push_back(text.substr(start, pos - start));
  }
  return fields;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto upper = [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; };
    if (upper(a[i]) != upper(b[i])) return false;
  }
  return true;
}

// Decimal digits only: no signs, no spaces. nullopt when it is not a number; INT_MAX-ish text saturates so
// that it is reported as out of range rather than as garbage.
std::optional<int> parse_digits(std::string_view text) {
  if (text.empty()) return std::nullopt;
  for (const char c : text)
    if (c < '0' || c > '9') return std::nullopt;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) return std::numeric_limits<int>::max();
  return value;
}

// One value of a field: a number in range or, for month and day-of-week, a three-letter name.
std::optional<int> parse_value(std::string_view text, std::string_view item, const FieldRule& rule,
                               std::string& problem) {
  if (text.empty()) {
    problem = "missing value in " + quoted(item);
    return std::nullopt;
  }
  if (const auto number = parse_digits(text)) {
    if (*number >= rule.min && *number <= rule.max) return number;
    problem = std::string(text) + " is out of range " + std::to_string(rule.min) + "-" + std::to_string(rule.max);
    return std::nullopt;
  }
  for (std::size_t i = 0; i < rule.names.size(); ++i)
    if (equals_ignoring_case(text, rule.names[i])) return rule.min + static_cast<int>(i);
  problem = quoted(text) + " is not " + std::string(rule.expected);
  return std::nullopt;
}

std::optional<int> parse_step(std::string_view text, std::string_view item, const FieldRule& rule,
                              std::string& problem) {
  const auto step = parse_digits(text);
  const int largest = rule.max - rule.min + 1;
  if (!step)
    problem = "step " + quoted(text) + " in " + quoted(item) + " is not a number";
  else if (*step == 0)
    problem = "step 0 in " + quoted(item) + " must be at least 1";
  else if (*step > largest)
    problem = "step " + std::string(text) + " in " + quoted(item) + " is out of range 1-" + std::to_string(largest);
  else
    return step;
  return std::nullopt;
}

// The inclusive range an item names before its step: "*", "a-b", or "a" (which runs to the maximum when stepped).
std::optional<std::pair<int, int>> parse_range(std::string_view base, bool stepped, std::string_view item,
                                               const FieldRule& rule, std::string& problem) {
  if (base == "*") return std::pair{rule.min, rule.max};
  const auto dash = base.find('-');
  const auto low = parse_value(base.substr(0, dash), item, rule, problem);
  if (!low) return std::nullopt;
  if (dash == std::string_view::npos) return std::pair{*low, stepped ? rule.max : *low};
  const auto high = parse_value(base.substr(dash + 1), item, rule, problem);
  if (!high) return std::nullopt;
  if (*low > *high) {
    problem = "reversed range " + quoted(base) + ": write the smaller value first";
    return std::nullopt;
  }
  return std::pair{*low, *high};
}

// One comma-separated item, ORed into `mask`.
bool parse_item(std::string_view item, const FieldRule& rule, std::uint64_t& mask, std::string& problem) {
  if (item.empty()) {
    problem = "empty list item";
    return false;
  }
  const auto slash = item.find('/');
  const bool stepped = slash != std::string_view::npos;
  int step = 1;
  if (stepped) {
    const auto parsed = parse_step(item.substr(slash + 1), item, rule, problem);
    if (!parsed) return false;
    step = *parsed;
  }
  const auto range = parse_range(item.substr(0, slash), stepped, item, rule, problem);
  if (!range) return false;
  for (int value = range->first; value <= range->second; value += step)
    mask |= std::uint64_t{1} << (rule.max == 7 && value == 7 ? 0 : value);  // weekday 7 is Sunday (0)
  return true;
}

bool parse_field(std::string_view text, const FieldRule& rule, std::uint64_t& mask, std::string& problem) {
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    if (!parse_item(text.substr(start, comma - start), rule, mask, problem)) return false;
    if (comma == std::string_view::npos) return true;
    start = comma + 1;
  }
}

// With AND semantics (a day field starts with '*') a listed day must exist in a listed month; with OR
// semantics the weekday field alone matches every week. Weekdays never make a date impossible: every date
// falls on every weekday within 40 years.
bool can_occur(const CronSpec& spec) {
  if (!spec.day_of_month_star && !spec.day_of_week_star) return true;
  for (unsigned month = 1; month <= 12; ++month) {
    if (!spec.matches_month(date::month{month})) continue;
    for (int day = 1; day <= kMaxDaysInMonth[month]; ++day)
      if ((spec.days_of_month >> day) & 1U) return true;
  }
  return false;
}

std::optional<CronSpec> parse_macro(std::string_view text, std::string* error) {
  if (text == "@reboot") return fail(error, "@reboot is not supported: the daemon runs schedules, not boot jobs");
  for (const auto& [name, expansion] : kMacros)
    if (text == name) return parse_cron(expansion, error);
  return fail(error, "unknown macro " + quoted(text) +
                         ": expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually");
}

}  // namespace

std::optional<CronSpec> parse_cron(std::string_view expression, std::string* error) {
  const std::string_view text = trim(expression);
  if (text.empty())
    return fail(error, "empty schedule: expected 5 cron fields, a macro such as @daily, or every <duration>");
  if (text.front() == '@') return parse_macro(text, error);

  const auto fields = split_fields(text);
  if (fields.size() != kFields.size())
    return fail(error, "cron expression " + quoted(text) + " has " + std::to_string(fields.size()) +
                           " fields; expected 5 (minute hour day-of-month month day-of-week)");

  CronSpec spec;
  std::uint64_t* const masks[] = {&spec.minutes, &spec.hours, &spec.days_of_month, &spec.months, &spec.days_of_week};
  for (std::size_t i = 0; i < kFields.size(); ++i) {
    std::string problem;
    if (!parse_field(fields[i], kFields[i], *masks[i], problem))
      return fail(error, "cron field " + std::to_string(i + 1) + " (" + std::string(kFields[i].name) + "): " + problem);
  }
  spec.fixed_time = fields[0].front() != '*' && fields[1].front() != '*';
  spec.day_of_month_star = fields[2].front() == '*';
  spec.day_of_week_star = fields[4].front() == '*';
  if (!can_occur(spec))
    return fail(error, "cron fields 3 (day-of-month) and 4 (month): day " + quoted(fields[2]) +
                           " never occurs in month " + quoted(fields[3]) + ", so the schedule would never fire");
  return spec;
}

}  // namespace apsis::schedule::detail
