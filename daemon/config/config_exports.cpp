// exports: what to export, when, and where the file goes.
#include <algorithm>
#include <array>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <optional>
#include <utility>

#include "config/loader_sections.hpp"
#include "config/output_template.hpp"
#include "config/request_check.hpp"
#include "config/yaml_json.hpp"
#include "config/zone_name.hpp"
#include "schedule/schedule.hpp"

namespace apsis::config::detail {
namespace {

constexpr std::array<std::string_view, 19> kExportKeys{
    "account",    "kind",         "schedule",         "timezone",      "request", "format",   "compression",
    "output",     "polling",      "catchup",          "overlap",       "on_expired", "on_failed_export",
    "max_resubmits", "window",    "manifest",         "keep",          "on_success", "on_success_timeout"};
// APSIS One refuses a larger body with 413 (docs/apsis-api.md).
constexpr std::size_t kMaxRequestBytes = 100'000;
constexpr std::array<std::string_view, 2> kKeepKeys{"count", "days"};

void read_account_reference(LoadContext& ctx, const Field& field, const std::vector<std::string>& accounts,
                            ExportDefinition& definition) {
  auto name = read_nonempty_string(ctx, field);
  if (!name) return;
  if (std::ranges::find(accounts, *name) == accounts.end()) {
    const std::vector<std::string_view> defined(accounts.begin(), accounts.end());
    std::string list = defined.empty() ? "no accounts are defined" : "defined: ";
    for (std::size_t i = 0; i < defined.size(); ++i) list += (i > 0 ? ", " : "") + std::string(defined[i]);
    ctx.errors.add(field.mark(),
                   field.path + ": unknown account '" + *name + "' (" + list + ")" + did_you_mean(*name, defined));
    return;
  }
  definition.account = std::move(*name);
}

void read_timezone(LoadContext& ctx, const Field& field, ExportDefinition& definition) {
  auto name = read_nonempty_string(ctx, field);
  if (!name) return;
  if (!is_zone_name(*name)) {
    ctx.errors.add(field.mark(),
                   field.path + ": invalid time zone '" + *name + "': expected a name such as Europe/Stockholm");
    return;
  }
  const auto& zoneinfo = ctx.options.zoneinfo_dir;
  std::error_code ec;
  if (std::filesystem::is_directory(zoneinfo, ec) && !std::filesystem::is_regular_file(zoneinfo / *name, ec)) {
    ctx.errors.add(field.mark(), field.path + ": unknown time zone '" + *name + "' (no such file in " +
                                     zoneinfo.string() + "): expected a name such as Europe/Stockholm or UTC");
    return;
  }
  definition.timezone = std::move(*name);
}

// Parsed here, in the export's zone (read before this), so a typo in a cron field is a config error
// with its position rather than a schedule that silently never starts.
void read_schedule(LoadContext& ctx, const Field& field, ExportDefinition& definition) {
  auto expression = read_nonempty_string(ctx, field);
  if (!expression) return;
  std::string error;
  if (!schedule::Schedule::parse(*expression, definition.timezone, &error)) {
    ctx.errors.add(field.mark(), field.path + ": " + error);
    return;
  }
  definition.schedule = std::move(*expression);
}

// A list index in a RequestProblem path.
std::optional<std::size_t> parse_index(const std::string& step) {
  std::size_t index = 0;
  const char* end = step.data() + step.size();
  const auto result = std::from_chars(step.data(), end, index);
  if (result.ec != std::errc{} || result.ptr != end) return std::nullopt;
  return index;
}

// The key and value of a mapping's entry `step`, or a sequence's item at index `step` (twice).
std::optional<std::pair<YAML::Node, YAML::Node>> yaml_child(const YAML::Node& node, const std::string& step) {
  if (node.IsMap()) {
    for (const auto& entry : node)
      if (entry.first.IsScalar() && entry.first.Scalar() == step) return std::pair(entry.first, entry.second);
  } else if (const auto index = parse_index(step); node.IsSequence() && index && *index < node.size()) {
    return std::pair(node[*index], node[*index]);
  }
  return std::nullopt;
}

const boost::json::value* json_child(const boost::json::value* value, const std::string& step) {
  if (!value) return nullptr;
  if (const auto* object = value->if_object()) return object->if_contains(step);
  if (const auto index = parse_index(step); value->is_array() && index) return value->get_array().if_contains(*index);
  return nullptr;
}

// How far right of a string scalar's mark `column` of its text lies: known when the text stands in
// the file as written, on one line (no ${VAR} expanded in it): plain, or quoted, which starts one
// column after the quote. A block scalar kept on one line by '|-' is taken for quoted: off by a line.
int column_offset(const YAML::Node& scalar, std::string_view text, int column) {
  if (scalar.Scalar() != text || text.find('\n') != std::string_view::npos) return 0;
  if (scalar.Tag() == "?") return column - 1;
  if (scalar.Tag() == "!") return column;
  return 0;
}

// A problem of the request body, reported at its YAML node (or the deepest one that exists) and named
// by its path as yaml_to_json names them: "exports.x.request.attributes[1].field_name".
void report_request_problem(LoadContext& ctx, const Field& field, const boost::json::value& body,
                            const RequestProblem& problem) {
  YAML::Mark mark = field.mark();
  std::string path = field.path;
  YAML::Node node(field.value);  // reset() below, never '=': that would assign into the document
  const boost::json::value* json = &body;
  bool found = true;
  for (std::size_t i = 0; i < problem.path.size(); ++i) {
    const auto& step = problem.path[i];
    path += json && json->is_array() ? "[" + step + "]" : "." + step;
    json = json_child(json, step);
    const auto entry = found ? yaml_child(node, step) : std::nullopt;
    found = entry.has_value();
    if (!found) continue;
    const bool at_key = problem.at_key && i + 1 == problem.path.size();
    mark = at_key || entry->second.IsNull() ? entry->first.Mark() : entry->second.Mark();
    node.reset(entry->second);
  }
  if (found && problem.column > 0 && node.IsScalar() && json && json->is_string())
    mark.column += column_offset(node, json->get_string(), problem.column);
  ctx.errors.add(mark, path + ": " + problem.message);
}

// "123 456": grouped like the limit in the message.
std::string group_thousands(std::size_t number) {
  std::string digits = std::to_string(number);
  for (auto i = static_cast<std::ptrdiff_t>(digits.size()) - 3; i > 0; i -= 3)
    digits.insert(static_cast<std::size_t>(i), " ");
  return digits;
}

// segments and events exports need a body: an empty request is checked as {}. `start_at_per_job`:
// the export has a window: (even one with an error), so the daemon sets start_at.
void read_request(LoadContext& ctx, const Field& field, bool start_at_per_job, ExportDefinition& definition) {
  const bool needs_body = definition.kind == ExportKind::segments || definition.kind == ExportKind::events;
  if (field.value.IsNull() && !needs_body) return;
  if (!field.value.IsNull() && !field.value.IsMap()) {
    ctx.errors.add(field.mark(), field.path + ": expected a mapping (the JSON body of the export request)");
    return;
  }
  if (ctx.json_values_left == 0) {
    if (!std::exchange(ctx.json_values_exhausted, true))
      ctx.errors.add(field.key.Mark(), field.path + ": the request bodies of the file hold more than " +
                                           group_thousands(kMaxFileJsonValues) +
                                           " values in all (an alias counts its target each time it is used)");
    return;
  }
  std::vector<YamlJsonError> problems;
  std::size_t values_left = kMaxJsonValues;  // per request: a body holds at most this many
  const auto body = field.value.IsNull()
                        ? boost::json::value(boost::json::object())
                        : yaml_to_json(field.value, field.path, ctx.options.env, problems, values_left);
  ctx.json_values_left -= std::min(ctx.json_values_left, kMaxJsonValues - values_left);
  for (auto& problem : problems) ctx.errors.add(problem.mark, std::move(problem.message));
  // Checked against the documented fields only when complete: holes would read as more errors.
  if (!problems.empty()) return;
  for (const auto& problem : check_request(definition.kind, body, start_at_per_job))
    report_request_problem(ctx, field, body, problem);
  definition.request_json = boost::json::serialize(body);
  if (definition.request_json.size() > kMaxRequestBytes)
    ctx.errors.add(field.key.Mark(), field.path + ": the request body is " +
                                         group_thousands(definition.request_json.size()) +
                                         " bytes as JSON; APSIS One accepts at most 100 000 (100 kB)");
}

// Events files are JSON; the other kinds are CSV or Excel. Without format: the kind's default.
void read_format(LoadContext& ctx, const std::optional<Field>& field, bool kind_known, ExportDefinition& definition) {
  const bool events = definition.kind == ExportKind::events;
  if (events) definition.format = FileFormat::json;
  if (!field) return;
  const auto value = read_enum<FileFormat>(
      ctx, *field, {{"csv", FileFormat::csv}, {"xlsx", FileFormat::xlsx}, {"json", FileFormat::json}});
  if (!value) return;
  if (kind_known && events && *value != FileFormat::json) {
    ctx.errors.add(field->mark(), field->path + ": kind: events takes json (event exports are JSON files), got '" +
                                      std::string(to_string(*value)) + "'");
    return;
  }
  if (kind_known && !events && *value == FileFormat::json) {
    ctx.errors.add(field->mark(), field->path + ": kind: " + std::string(to_string(definition.kind)) +
                                      " takes csv or xlsx (json is for kind: events), got 'json'");
    return;
  }
  definition.format = *value;
}

// The span each job of an event export asks for; other kinds have no time span to set.
void read_window(LoadContext& ctx, const Field& field, bool kind_known, ExportDefinition& definition) {
  const auto value = read_duration(ctx, field);
  if (!value) return;
  if (kind_known && definition.kind != ExportKind::events) {
    ctx.errors.add(field.mark(), field.path + ": only event exports take a window (this is kind: " +
                                     std::string(to_string(definition.kind)) + ")");
    return;
  }
  definition.window = *value;
}

void read_output(LoadContext& ctx, const Field& field, ExportDefinition& definition) {
  auto tmpl = read_string(ctx, field);
  if (!tmpl) return;
  if (const auto error = check_output_template(*tmpl)) {
    ctx.errors.add(field.mark(), field.path + ": " + *error);
    return;
  }
  definition.output_template = std::move(*tmpl);
}

Retention read_keep(LoadContext& ctx, const Field& field) {
  const Mapping mapping(ctx, field, kKeepKeys);
  Retention keep;
  if (const auto count = mapping.get("count")) keep.count = read_int(ctx, *count, 1);
  if (const auto days = mapping.get("days")) keep.days = read_int(ctx, *days, 1);
  if (mapping.is_mapping() && mapping.fields().empty())
    ctx.errors.add(field.mark(), field.path + ": expected count: N and/or days: D (an empty keep would delete nothing)");
  return keep;
}

// argv of a command run without a shell: a list of strings, the program first.
std::optional<std::vector<std::string>> read_command(LoadContext& ctx, const Field& field) {
  if (!field.value.IsSequence() || field.value.size() == 0) {
    ctx.errors.add(field.mark(), field.path + ": expected a non-empty list: the program, then its arguments "
                                              "(run without a shell), e.g. [/usr/local/bin/load, --fast]");
    return std::nullopt;
  }
  std::vector<std::string> argv;
  for (std::size_t i = 0; i < field.value.size(); ++i) {
    const Field item{field.path + "[" + std::to_string(i) + "]", field.key, field.value[i]};
    auto text = i == 0 ? read_nonempty_string(ctx, item) : read_string(ctx, item);
    if (!text) return std::nullopt;
    argv.push_back(std::move(*text));
  }
  return argv;
}

void read_hook(LoadContext& ctx, const Mapping& mapping, ExportDefinition& definition) {
  const auto command = mapping.get("on_success");
  const auto timeout = mapping.get("on_success_timeout");
  if (command && !command->value.IsNull())
    if (auto argv = read_command(ctx, *command)) definition.on_success = SuccessHook{std::move(*argv)};
  if (!timeout) return;
  const auto value = read_duration(ctx, *timeout);
  if (!value) return;
  if (!command) ctx.errors.add(timeout->mark(), timeout->path + ": there is no on_success command to time out");
  if (definition.on_success) definition.on_success->timeout = *value;
}

ExportDefinition read_export(LoadContext& ctx, const Field& field, const std::vector<std::string>& accounts,
                             const PollingPolicy& polling) {
  const Mapping mapping(ctx, field, kExportKeys);
  ExportDefinition definition;
  definition.name = field.key.Scalar();
  definition.polling = polling;
  if (const auto account = mapping.require("account", "the name of an account under accounts"))
    read_account_reference(ctx, *account, accounts, definition);
  bool kind_known = false;  // the checks that depend on the kind are skipped without it
  if (const auto kind = mapping.require("kind", "duplicates, consents, segments or events"))
    if (const auto value = read_enum<ExportKind>(ctx, *kind,
                                                 {{"duplicates", ExportKind::duplicates},
                                                  {"consents", ExportKind::consents},
                                                  {"segments", ExportKind::segments},
                                                  {"events", ExportKind::events}})) {
      definition.kind = *value;
      kind_known = true;
    }
  if (const auto timezone = mapping.get("timezone")) read_timezone(ctx, *timezone, definition);
  if (const auto schedule = mapping.get("schedule"); schedule && !schedule->value.IsNull())
    read_schedule(ctx, *schedule, definition);
  const auto window = mapping.get("window");
  if (window) read_window(ctx, *window, kind_known, definition);
  const bool needs_body =
      kind_known && (definition.kind == ExportKind::segments || definition.kind == ExportKind::events);
  const auto request =
      needs_body ? mapping.require("request", definition.kind == ExportKind::segments
                                                  ? "a body with segment_discriminator or segment_definition"
                                                  : "a body with attributes or tags")
                 : mapping.get("request");
  if (request) read_request(ctx, *request, window.has_value(), definition);
  read_format(ctx, mapping.get("format"), kind_known, definition);
  if (const auto compression = mapping.get("compression"))
    if (const auto value =
            read_enum<Compression>(ctx, *compression, {{"none", Compression::none}, {"gzip", Compression::gzip}}))
      definition.compression = *value;
  if (const auto output = mapping.get("output")) read_output(ctx, *output, definition);
  if (const auto override = mapping.get("polling")) definition.polling = read_polling(ctx, *override, polling);
  if (const auto catchup = mapping.get("catchup"))
    if (const auto value = read_enum<Catchup>(ctx, *catchup, {{"latest", Catchup::latest}, {"none", Catchup::none}}))
      definition.catchup = *value;
  if (const auto overlap = mapping.get("overlap"))
    if (const auto value = read_enum<Overlap>(ctx, *overlap, {{"skip", Overlap::skip}, {"allow", Overlap::allow}}))
      definition.overlap = *value;
  if (const auto expired = mapping.get("on_expired"))
    if (const auto value =
            read_enum<OnExpired>(ctx, *expired, {{"resubmit", OnExpired::resubmit}, {"fail", OnExpired::fail}}))
      definition.on_expired = *value;
  if (const auto failed = mapping.get("on_failed_export"))
    if (const auto value = read_enum<OnFailedExport>(
            ctx, *failed, {{"resubmit", OnFailedExport::resubmit}, {"fail", OnFailedExport::fail}}))
      definition.on_failed_export = *value;
  if (const auto resubmits = mapping.get("max_resubmits"))
    if (const auto value = read_int(ctx, *resubmits, 0)) definition.max_resubmits = *value;
  if (const auto manifest = mapping.get("manifest"))
    if (const auto value = read_bool(ctx, *manifest)) definition.manifest = *value;
  if (const auto keep = mapping.get("keep")) definition.keep = read_keep(ctx, *keep);
  read_hook(ctx, mapping, definition);
  return definition;
}

// Without {export} (or {job}), a template may give two exports one path: a warning, and an error for
// a second export with the very same template (jobs in the same second would share every name).
void check_shared_templates(LoadContext& ctx, const std::vector<Field>& entries,
                            const std::map<std::string, ExportDefinition>& exports) {
  std::map<std::string, std::string> first_user;  // template → export
  for (const auto& entry : entries) {
    const YAML::Node& body = entry.value;
    if (!body.IsMap() || !body["output"]) continue;
    const Field field{entry.path + ".output", body["output"], body["output"]};
    const auto found = exports.find(entry.key.Scalar());
    if (found == exports.end() || names_export_or_job(found->second.output_template)) continue;
    const auto& tmpl = found->second.output_template;
    ctx.errors.warn(field.mark(), field.path + ": the template has no {export} (nor {job}): another export's template "
                                               "may give the same path (its file then gets -job<ID> in its name)");
    const auto [first, inserted] = first_user.emplace(tmpl, entry.key.Scalar());
    if (!inserted)
      ctx.errors.add(field.mark(), field.path + ": the same template as exports." + first->second +
                                       ".output: the two exports would write the same files; add {export}");
  }
}

}  // namespace

std::map<std::string, ExportDefinition> read_exports(LoadContext& ctx, const Field& field,
                                                     const std::vector<std::string>& account_names,
                                                     const PollingPolicy& polling) {
  const auto names = Mapping::of_names(ctx, field, "export name");
  std::map<std::string, ExportDefinition> exports;
  for (const auto& entry : names.fields()) {
    const std::string& name = entry.key.Scalar();
    if (!is_valid_name(name))
      ctx.errors.add(entry.key.Mark(),
                     "invalid export name '" + name +
                         "': expected letters, digits, '.', '_' and '-', starting with a letter or digit");
    exports.emplace(name, read_export(ctx, entry, account_names, polling));
  }
  check_shared_templates(ctx, names.fields(), exports);
  return exports;
}

}  // namespace apsis::config::detail
