// exports: what to export, when, and where the file goes.
#include <algorithm>
#include <array>
#include <boost/json/serialize.hpp>

#include "config/loader_sections.hpp"
#include "config/output_template.hpp"
#include "schedule/schedule.hpp"
#include "config/yaml_json.hpp"

namespace apsis::config::detail {
namespace {

constexpr std::array<std::string_view, 12> kExportKeys{"account", "kind",    "schedule", "timezone",
                                                       "request", "format",  "compression", "output",
                                                       "polling", "catchup", "overlap",  "on_expired"};

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

// IANA names: components of letters, digits, '_', '+' and '-' joined by '/'; nothing that could
// leave the zoneinfo directory.
bool is_zone_name(std::string_view name) {
  std::size_t start = 0;
  for (;;) {
    const auto end = std::min(name.find('/', start), name.size());
    const auto part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    const bool clean = std::ranges::all_of(part, [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '+' ||
             c == '-';
    });
    if (!clean) return false;
    if (end == name.size()) return true;
    start = end + 1;
  }
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

void read_request(LoadContext& ctx, const Field& field, ExportDefinition& definition) {
  if (field.value.IsNull()) return;
  if (!field.value.IsMap()) {
    ctx.errors.add(field.mark(), field.path + ": expected a mapping (the JSON body of the export request)");
    return;
  }
  std::vector<YamlJsonError> problems;
  const auto body = yaml_to_json(field.value, field.path, ctx.options.env, problems, ctx.json_values_left);
  for (auto& problem : problems) ctx.errors.add(problem.mark, std::move(problem.message));
  definition.request_json = boost::json::serialize(body);
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

ExportDefinition read_export(LoadContext& ctx, const Field& field, const std::vector<std::string>& accounts,
                             const PollingPolicy& polling) {
  const Mapping mapping(ctx, field, kExportKeys);
  ExportDefinition definition;
  definition.name = field.key.Scalar();
  definition.polling = polling;
  if (const auto account = mapping.require("account", "the name of an account under accounts"))
    read_account_reference(ctx, *account, accounts, definition);
  if (const auto kind = mapping.require("kind", "duplicates or consents"))
    if (const auto value = read_enum<ExportKind>(
            ctx, *kind, {{"duplicates", ExportKind::duplicates}, {"consents", ExportKind::consents}}))
      definition.kind = *value;
  if (const auto timezone = mapping.get("timezone")) read_timezone(ctx, *timezone, definition);
  if (const auto schedule = mapping.get("schedule"); schedule && !schedule->value.IsNull())
    read_schedule(ctx, *schedule, definition);
  if (const auto request = mapping.get("request")) read_request(ctx, *request, definition);
  if (const auto format = mapping.get("format"))
    if (const auto value = read_enum<FileFormat>(ctx, *format, {{"csv", FileFormat::csv}, {"xlsx", FileFormat::xlsx}}))
      definition.format = *value;
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
  return definition;
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
  return exports;
}

}  // namespace apsis::config::detail
