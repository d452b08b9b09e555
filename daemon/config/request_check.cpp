#include "config/request_check.hpp"

#include <algorithm>
#include <array>
#include <boost/json/object.hpp>
#include <optional>
#include <set>
#include <span>
#include <string_view>

#include "config/segment_filter.hpp"
#include "config/spelling.hpp"
#include "config/zone_name.hpp"

namespace apsis::config {
namespace {

namespace json = boost::json;
using Path = std::vector<std::string>;

// The keys docs/apsis-api.md documents. duplicates and consents know the first six; consents adds two.
constexpr std::array<std::string_view, 6> kDuplicatesKeys{"segments",   "consent_list_discriminator",
                                                          "topic_discriminators", "channel_discriminator",
                                                          "attributes", "tags"};
constexpr std::array<std::string_view, 8> kConsentsKeys{
    "segments",   "consent_list_discriminator", "topic_discriminators",  "channel_discriminator",
    "attributes", "tags",                       "section_discriminator", "channels"};
constexpr std::array<std::string_view, 4> kSegmentsKeys{"timezone", "segment_discriminators", "segment_definitions",
                                                        "filter"};
// segments exports: one existing segment, or one defined by AQL.
constexpr std::array<std::string_view, 2> kSegmentExportKeys{"segment_discriminator", "segment_definition"};
constexpr std::array<std::string_view, 6> kEventsKeys{"segment_filter", "attributes", "tags",
                                                      "events",         "start_at",   "end_at"};
constexpr std::array<std::string_view, 2> kAttributeKeys{"field_name", "attribute_version_id"};
constexpr std::array<std::string_view, 2> kChannelKeys{"field_name", "channel_discriminator"};

// An unknown key this few edits from a documented one is taken for a typo of it.
constexpr std::size_t kTypoDistance = 2;

constexpr std::string_view kFilterExample = "such as \"!(europe) & women\"";

Path below(Path path, std::string_view step) {
  path.emplace_back(step);
  return path;
}

// For "expected ..., got ...". YAML reads 12345 and true as a number and a boolean; the API wants a
// string there, which quotes give.
std::string got(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      return ", got nothing";
    case json::kind::bool_:
      return std::string(", got ") + (value.get_bool() ? "true" : "false") + " (write it in quotes)";
    case json::kind::int64:
      return ", got the number " + std::to_string(value.get_int64()) + " (write it in quotes)";
    case json::kind::uint64:
      return ", got the number " + std::to_string(value.get_uint64()) + " (write it in quotes)";
    case json::kind::double_:
      return ", got a number (write it in quotes)";
    case json::kind::string:
      return ", got a string";
    case json::kind::array:
      return ", got a list";
    case json::kind::object:
      return ", got a mapping";
  }
  return "";
}

class Checker {
 public:
  Checker(ExportKind kind, bool start_at_per_job) : kind_(kind), start_at_per_job_(start_at_per_job) {}

  std::vector<RequestProblem> run(const json::value& body) && {
    const auto* object = body.if_object();
    if (object && kind_ == ExportKind::segments)
      check_segment_export(*object);
    else if (object && kind_ == ExportKind::events)
      check_events_export(*object);
    else if (object)
      check_body(*object);
    else
      add({}, "expected a mapping (the JSON body of the export request)" + got(body));
    return std::move(problems_);
  }

 private:
  void add(Path path, std::string message, int column = 0, bool at_key = false) {
    problems_.push_back({std::move(path), std::move(message), column, at_key});
  }

  void check_body(const json::object& body) {
    const bool consents = kind_ == ExportKind::consents;
    check_typos(body, {}, consents ? std::span<const std::string_view>(kConsentsKeys) : kDuplicatesKeys);
    if (const auto* segments = body.if_contains("segments")) check_segments(*segments, {"segments"});
    for (const std::string_view key : {"consent_list_discriminator", "channel_discriminator"})
      if (const auto* value = body.if_contains(key)) check_discriminator(*value, {std::string(key)});
    if (const auto* topics = body.if_contains("topic_discriminators"))
      check_discriminator_list(*topics, {"topic_discriminators"});
    if (const auto* attributes = body.if_contains("attributes"))
      check_column_list(*attributes, {"attributes"}, kAttributeKeys);
    // `tags`: the reference page shows no shape for it, so it goes unchecked.
    if (!consents) return;
    if (const auto* section = body.if_contains("section_discriminator"))
      check_discriminator(*section, {"section_discriminator"});
    if (const auto* channels = body.if_contains("channels")) {
      check_column_list(*channels, {"channels"}, kChannelKeys);
      if (body.contains("channel_discriminator"))
        add({"channels"}, "not allowed together with channel_discriminator (one channel, or a list of channels)", 0,
            true);
    }
  }

  // Exactly one of segment_discriminator and segment_definition.
  void check_segment_export(const json::object& body) {
    check_typos(body, {}, kSegmentExportKeys);
    const auto* discriminator = body.if_contains("segment_discriminator");
    const auto* definition = body.if_contains("segment_definition");
    if (discriminator) check_discriminator(*discriminator, {"segment_discriminator"});
    if (definition) check_nonempty_string(*definition, {"segment_definition"}, "a string (an AQL query)");
    if (discriminator && definition)
      add({"segment_definition"},
          "not allowed together with segment_discriminator: expected exactly one (an existing segment, or one "
          "defined by AQL)",
          0, true);
    else if (!discriminator && !definition)
      add({},
          "missing segment_discriminator (an existing segment, e.g. usercreated.segments.women-rjz6b8td2n) or "
          "segment_definition (an AQL query): expected exactly one");
  }

  // At least one attribute or tag, and start_at with events unless the daemon sets it per job.
  void check_events_export(const json::object& body) {
    check_typos(body, {}, kEventsKeys);
    bool any_column = false;
    for (const std::string_view key : {"attributes", "tags", "events"}) {
      const auto* value = body.if_contains(key);
      if (!value) continue;
      if (const auto* list = value->if_array())
        any_column = any_column || (key != "events" && !list->empty());
      else
        add({std::string(key)}, "expected a list" + got(*value));
    }
    if (!any_column) {
      // At the empty list if there is one, else at the body.
      const auto* attributes = body.if_contains("attributes");
      const auto* tags = body.if_contains("tags");
      Path path;
      if (attributes && attributes->is_array()) path = {"attributes"};
      else if (tags && tags->is_array()) path = {"tags"};
      if (!(attributes && !attributes->is_array()) && !(tags && !tags->is_array()))
        add(path, "expected at least one attribute or tag (a non-empty attributes or tags list), or no profile "
                  "appears in the file", 0, !path.empty());
    }
    for (const std::string_view key : {"start_at", "end_at"})
      if (const auto* value = body.if_contains(key))
        check_nonempty_string(*value, {std::string(key)}, "a string (a date and time)");
    const auto* events = body.if_contains("events");
    const bool asks_for_events = events && events->is_array() && !events->get_array().empty();
    if (asks_for_events && !body.contains("start_at") && !start_at_per_job_)
      add({"events"},
          "start_at is required with events: set start_at in the request, or window: on the export (the daemon "
          "then sets start_at for each job)",
          0, true);
  }

  // An unknown key close to a documented one: the API would likely ignore it without a word.
  void check_typos(const json::object& object, const Path& path, std::span<const std::string_view> documented) {
    for (const auto& entry : object) {
      const std::string_view key = entry.key();
      if (std::ranges::find(documented, key) != documented.end()) continue;
      if (const auto near = closest_spelling(key, documented, kTypoDistance))
        add(below(path, key),
            "unknown key '" + std::string(key) + "'; did you mean '" + std::string(*near) +
                "'? (sent as written, the API would likely ignore it)",
            0, true);
    }
  }

  bool check_nonempty_string(const json::value& value, const Path& path, std::string_view what) {
    if (!value.is_string()) {
      add(path, "expected " + std::string(what) + got(value));
      return false;
    }
    if (value.get_string().empty()) {
      add(path, "must not be empty");
      return false;
    }
    return true;
  }

  void check_discriminator(const json::value& value, const Path& path) {
    check_nonempty_string(value, path, "a string (a discriminator)");
  }

  void check_discriminator_list(const json::value& value, const Path& path) {
    const auto* list = value.if_array();
    if (!list) {
      add(path, "expected a list of discriminators" + got(value));
      return;
    }
    for (std::size_t i = 0; i < list->size(); ++i) check_discriminator((*list)[i], below(path, std::to_string(i)));
  }

  // attributes and channels: lists of mappings naming a column of the file and what fills it.
  void check_column_list(const json::value& value, const Path& path, std::span<const std::string_view> keys) {
    const std::string shape = "a mapping with " + std::string(keys[0]) + " and " + std::string(keys[1]);
    const auto* list = value.if_array();
    if (!list) {
      add(path, "expected a list, each item " + shape + got(value));
      return;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto item_path = below(path, std::to_string(i));
      const auto* item = (*list)[i].if_object();
      if (!item) {
        add(item_path, "expected " + shape + got((*list)[i]));
        continue;
      }
      check_typos(*item, item_path, keys);
      for (const auto key : keys) {
        if (const auto* field = item->if_contains(key))
          check_nonempty_string(*field, below(item_path, key), "a string");
        else
          add(item_path, "missing required key '" + std::string(key) + "'", 0, true);
      }
    }
  }

  void check_segments(const json::value& value, const Path& path) {
    const auto* segments = value.if_object();
    if (!segments) {
      add(path, "expected a mapping with timezone, segment_discriminators or segment_definitions, and filter" +
                    got(value));
      return;
    }
    check_typos(*segments, path, kSegmentsKeys);
    if (const auto* timezone = segments->if_contains("timezone")) check_zone(*timezone, below(path, "timezone"));
    const auto names = segment_names(*segments, path);
    check_filter(*segments, path, names);
  }

  void check_zone(const json::value& value, const Path& path) {
    if (!check_nonempty_string(value, path, "a string (a time zone such as Europe/Stockholm)")) return;
    const std::string_view name = value.get_string();
    if (!is_zone_name(name))
      add(path, "invalid time zone '" + std::string(name) + "': expected an IANA name such as Europe/Stockholm");
  }

  // The short names the filter may use; nullopt when the maps are missing or malformed (reported),
  // so that the filter's names cannot be checked.
  std::optional<std::set<std::string>> segment_names(const json::object& segments, const Path& path) {
    const auto* discriminators = segments.if_contains("segment_discriminators");
    const auto* definitions = segments.if_contains("segment_definitions");
    if (!discriminators && !definitions) {
      add(path,
          "missing segment_discriminators (short name: segment discriminator) or segment_definitions (short name: "
          "AQL query), which define the names the filter uses",
          0, true);
      return std::nullopt;
    }
    if (discriminators && definitions)
      add(below(path, "segment_definitions"), "not allowed together with segment_discriminators (use one of them)",
          0, true);
    std::optional<std::set<std::string>> names(std::in_place);
    auto merge = [&](const json::value* map, std::string_view key, std::string_view what) {
      if (!map) return;
      auto part = segment_map(*map, below(path, key), what);
      if (!part)
        names.reset();
      else if (names)
        names->merge(*part);
    };
    merge(discriminators, "segment_discriminators", "a segment discriminator such as usercreated.segments.women-rjz6b8td2n");
    merge(definitions, "segment_definitions", "an AQL query");
    return names;
  }

  std::optional<std::set<std::string>> segment_map(const json::value& value, const Path& path, std::string_view what) {
    const auto* map = value.if_object();
    if (!map) {
      add(path, "expected a mapping of short names to " + std::string(what) + got(value));
      return std::nullopt;
    }
    std::set<std::string> names;
    for (const auto& entry : *map) {
      check_nonempty_string(entry.value(), below(path, entry.key()), "a string: " + std::string(what));
      names.emplace(entry.key());
    }
    return names;
  }

  void check_filter(const json::object& segments, const Path& path, const std::optional<std::set<std::string>>& names) {
    const auto* filter = segments.if_contains("filter");
    if (!filter) {
      if (names)
        add(path, "missing required key 'filter': an expression over the names defined, " + std::string(kFilterExample),
            0, true);
      return;
    }
    const auto filter_path = below(path, "filter");
    if (!check_nonempty_string(*filter, filter_path, "a string: an expression " + std::string(kFilterExample))) return;
    const std::string_view expression = filter->get_string();
    std::vector<FilterError> errors;
    if (names)
      errors = check_segment_filter(expression, *names);
    else if (auto syntax = parse_segment_filter(expression); syntax.error)
      errors.push_back(std::move(*syntax.error));
    for (auto& error : errors) add(filter_path, std::move(error.message), error.column);
  }

  ExportKind kind_;
  bool start_at_per_job_;
  std::vector<RequestProblem> problems_;
};

}  // namespace

std::vector<RequestProblem> check_request(ExportKind kind, const boost::json::value& body, bool start_at_per_job) {
  return Checker(kind, start_at_per_job).run(body);
}

}  // namespace apsis::config
