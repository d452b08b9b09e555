// `apsis-exportd next`: a thin shell around schedule::preview. It reads the configuration only (no job
// table, no network), so whoever can read the file can check a schedule across a DST change.
#include <boost/json.hpp>
#include <date/date.h>

#include <charconv>
#include <cstdio>
#include <string_view>

#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "schedule/preview.hpp"

namespace apsis::cli {
namespace {

namespace json = boost::json;
using schedule::PreviewSlot;

constexpr int kDefaultCount = 5;
constexpr int kMaxCount = 1000;

int parse_count(const std::optional<std::string>& text) {
  if (!text) return kDefaultCount;
  int count = 0;
  const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), count);
  if (error != std::errc{} || end != text->data() + text->size() || count < 1 || count > kMaxCount)
    throw UsageError("--count must be a whole number from 1 to " + std::to_string(kMaxCount) + ", not '" + *text +
                     "'");
  return count;
}

// "2027-03-26T00:00:00Z", "2027-03-26T00:00:00.250Z" or "2027-03-26T01:00:00+01:00"; nullopt otherwise.
std::optional<TimePoint> parse_instant(const std::string& text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute, &second,
                  &consumed) != 6 || consumed != 19)
    return std::nullopt;
  const date::year_month_day ymd{date::year{year}, date::month(static_cast<unsigned>(month)),
                                 date::day(static_cast<unsigned>(day))};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  std::string_view rest = std::string_view(text).substr(19);
  Milliseconds fraction{0};
  if (rest.starts_with('.')) {
    std::size_t digits = 1;
    for (int scale = 100; digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9'; ++digits, scale /= 10)
      fraction += Milliseconds{(rest[digits] - '0') * scale};
    if (digits == 1) return std::nullopt;
    rest.remove_prefix(digits);
  }
  std::chrono::minutes offset{0};
  if (rest != "Z") {
    int offset_hours = 0, offset_minutes = 0;
    if (rest.size() != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':' ||
        std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &offset_hours, &offset_minutes) != 2 ||
        offset_hours > 23 || offset_minutes > 59)
      return std::nullopt;
    offset = std::chrono::minutes{(rest[0] == '-' ? -1 : 1) * (offset_hours * 60 + offset_minutes)};
  }
  const auto local = date::sys_days{ymd} + std::chrono::hours{hour} + std::chrono::minutes{minute} +
                     std::chrono::seconds{second} + fraction;
  return TimePoint{local - offset};
}

// A time without 'Z' or an offset would depend on whose clock reads it, so it is refused.
TimePoint parse_from(const std::string& text) {
  if (const auto instant = parse_instant(text)) return *instant;
  throw UsageError("--from must be an ISO-8601 time with Z or an offset, e.g. 2027-03-26T00:00:00Z, not '" + text +
                   "'");
}

std::string export_names(const config::Config& config) {
  std::string names;
  for (const auto& [name, definition] : config.exports) names += (names.empty() ? "" : ", ") + name;
  return names.empty() ? "none" : names;
}

std::string local_text(const PreviewSlot& slot) {
  return date::format("%a %F %T", date::floor<std::chrono::seconds>(slot.local));
}

std::string utc_text(TimePoint t) { return date::format("%F %T UTC", date::floor<std::chrono::seconds>(t)); }

std::string export_block(const config::ExportDefinition& definition, TimePoint from, int count) {
  if (!definition.schedule) return definition.name + "  no schedule: runs only by trigger or once\n";
  const auto parsed = schedule::Schedule::parse(*definition.schedule, definition.timezone);
  if (!parsed) return definition.name + "  schedule cannot be read\n";  // cannot happen: loading validated it
  const auto slots = schedule::preview(*parsed, from, count);
  std::size_t zone_width = 0;
  for (const auto& slot : slots) zone_width = std::max(zone_width, slot.zone.size());
  std::string out = definition.name + "  \"" + *definition.schedule + "\" in " + definition.timezone + "\n";
  for (const auto& slot : slots) {
    out += "  " + local_text(slot) + " " + slot.zone + std::string(zone_width - slot.zone.size(), ' ') + " " +
           schedule::format_offset(slot.offset) + "   " + utc_text(slot.utc);
    if (const auto note = schedule::dst_note(slot); !note.empty()) out += "  (" + note + ")";
    out += "\n";
  }
  return out;
}

const char* adjustment_name(schedule::detail::DstAdjustment adjustment) {
  using schedule::detail::DstAdjustment;
  switch (adjustment) {
    case DstAdjustment::none: return nullptr;
    case DstAdjustment::gap_moved: return "gap_moved";
    case DstAdjustment::gap_skipped: return "gap_skipped";
    case DstAdjustment::repeated_once: return "repeated_once";
    case DstAdjustment::repeated_first: return "repeated_first";
    case DstAdjustment::repeated_second: return "repeated_second";
  }
  return nullptr;
}

json::object slot_json(const PreviewSlot& slot) {
  const auto note = schedule::dst_note(slot);
  const char* adjustment = adjustment_name(slot.dst.adjustment);
  return {{"local", date::format("%FT%T", date::floor<std::chrono::seconds>(slot.local)) +
                        schedule::format_offset(slot.offset)},
          {"utc", format_iso8601(slot.utc)},
          {"offset", schedule::format_offset(slot.offset)},
          {"zone", slot.zone},
          {"offset_changed", slot.offset_change.has_value()},
          {"dst", adjustment ? json::value(adjustment) : json::value(nullptr)},
          {"dst_note", note.empty() ? json::value(nullptr) : json::value(note)}};
}

json::object export_json(const config::ExportDefinition& definition, TimePoint from, int count) {
  json::array slots;
  if (definition.schedule)
    if (const auto parsed = schedule::Schedule::parse(*definition.schedule, definition.timezone))
      for (const auto& slot : schedule::preview(*parsed, from, count)) slots.push_back(slot_json(slot));
  return {{"name", definition.name},
          {"schedule", or_null(definition.schedule)},
          {"timezone", definition.timezone},
          {"slots", std::move(slots)}};
}

constexpr OptionHelp kNextOptions[] = {
    {"--config FILE", "the configuration file (see apsis-exportd.yaml(5))"},
    {"--count N", "how many slots per export, 1 to 1000 (default 5)"},
    {"--from TIME", "list the slots after TIME instead of now: ISO 8601 with Z or an offset"},
    {"--json", "print one JSON document: each export with its slots (local, utc, offset, zone, dst_note)"}};

}  // namespace

const CommandHelp kNextHelp{
    .name = "next",
    .synopsis = "--config FILE [EXPORT] [--count N] [--from TIME] [--json]",
    .summary = "the coming slots of each export, in its time zone and UTC, DST changes marked",
    .details = "Slots that daylight saving time moves, skips or repeats are marked, as is every change of\n"
               "the UTC offset; the slots come from the service's own schedule code. Reads the\n"
               "configuration only: no job table, no network.",
    .options = kNextOptions};

int next_command(const std::vector<std::string>& args, const NowFunction& now) {
  const auto arguments = parse_arguments(args, {"config", "count", "from"}, {"json"});
  if (arguments.positional.size() > 1) throw UsageError("next takes at most one export name");
  const auto path = arguments.required("config");
  const int count = parse_count(arguments.option("count"));
  const TimePoint from = arguments.option("from") ? parse_from(*arguments.option("from")) : now();
  const auto config = load_config_or_report(path);
  if (!config) return kExitBadConfig;
  std::vector<const config::ExportDefinition*> shown;
  if (arguments.positional.empty()) {
    for (const auto& [name, definition] : config->exports) shown.push_back(&definition);
  } else if (const auto found = config->exports.find(arguments.positional[0]); found != config->exports.end()) {
    shown.push_back(&found->second);
  } else {
    std::fprintf(stderr, "apsis-exportd next: no export named '%s' in %s (defined: %s)\n",
                 arguments.positional[0].c_str(), path.c_str(), export_names(*config).c_str());
    return kExitBadConfig;
  }
  if (arguments.flag("json")) {
    json::array exports;
    for (const auto* definition : shown) exports.push_back(export_json(*definition, from, count));
    const json::object out{{"from", format_iso8601(from)}, {"config", path}, {"exports", std::move(exports)}};
    std::printf("%s\n", json::serialize(out).c_str());
    return kExitOk;
  }
  std::string out = "slots after " + utc_text(from) + "\n";
  for (const auto* definition : shown) out += "\n" + export_block(*definition, from, count);
  if (shown.empty()) out += "\nno exports configured\n";
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

}  // namespace apsis::cli
