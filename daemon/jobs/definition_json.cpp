#include "jobs/definition_json.hpp"

#include <boost/json.hpp>

#include <stdexcept>

namespace apsis::jobs {

namespace json = boost::json;

namespace {

json::object backoff_json(const config::BackoffPolicy& policy) {
  return {{"initial_delay_ms", policy.initial_delay.count()},
          {"multiplier", policy.multiplier},
          {"max_delay_ms", policy.max_delay.count()}};
}

const json::value& field(const json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  if (!value) throw std::runtime_error("stored job definition lacks '" + std::string(name) + "'");
  return *value;
}

std::string text(const json::object& object, std::string_view name) {
  const auto& value = field(object, name);
  if (!value.is_string()) throw std::runtime_error("stored job definition: '" + std::string(name) + "' is not text");
  return std::string(value.as_string());
}

config::Duration millis(const json::object& object, std::string_view name) {
  return config::Duration(field(object, name).to_number<std::int64_t>());
}

// Maps stored text back to an enum by comparing with to_string of each candidate.
template <typename Enum, std::size_t N>
Enum choice(const json::object& object, std::string_view name, const Enum (&candidates)[N], Enum fallback) {
  const auto* value = object.if_contains(name);
  if (!value) return fallback;  // written by an older version
  for (auto candidate : candidates)
    if (value->is_string() && config::to_string(candidate) == value->as_string()) return candidate;
  throw std::runtime_error("stored job definition: unknown " + std::string(name));
}

json::object keep_json(const config::Retention& keep) {
  json::object out;
  if (keep.count) out["count"] = *keep.count;
  if (keep.days) out["days"] = *keep.days;
  return out;
}

config::Retention keep_from_json(const json::object& in) {
  config::Retention keep;
  if (const auto* count = in.if_contains("count")) keep.count = count->to_number<int>();
  if (const auto* days = in.if_contains("days")) keep.days = days->to_number<int>();
  return keep;
}

json::object hook_json(const config::SuccessHook& hook) {
  json::array argv;
  for (const auto& arg : hook.argv) argv.emplace_back(arg);
  return {{"argv", std::move(argv)}, {"timeout_ms", hook.timeout.count()}};
}

config::SuccessHook hook_from_json(const json::object& in) {
  config::SuccessHook hook;
  for (const auto& arg : field(in, "argv").as_array()) hook.argv.emplace_back(arg.as_string());
  hook.timeout = millis(in, "timeout_ms");
  return hook;
}

}  // namespace

std::string definition_to_json(const config::ExportDefinition& definition) {
  json::object out{{"name", definition.name},
                   {"account", definition.account},
                   {"kind", config::to_string(definition.kind)},
                   {"timezone", definition.timezone},
                   {"format", config::to_string(definition.format)},
                   {"compression", config::to_string(definition.compression)},
                   {"output", definition.output_template},
                   {"request", json::parse(definition.request_json)},
                   {"polling", {{"backoff", backoff_json(definition.polling.backoff)},
                                {"url_validity_ms", definition.polling.url_validity.count()},
                                {"failed_export_after_503s", definition.polling.failed_export_after_503s}}},
                   {"catchup", config::to_string(definition.catchup)},
                   {"overlap", config::to_string(definition.overlap)},
                   {"on_expired", config::to_string(definition.on_expired)},
                   {"on_failed_export", config::to_string(definition.on_failed_export)},
                   {"max_resubmits", definition.max_resubmits}};
  if (definition.window) out["window_ms"] = definition.window->count();
  if (definition.schedule) out["schedule"] = *definition.schedule;
  out["manifest"] = definition.manifest;
  if (definition.keep.any()) out["keep"] = keep_json(definition.keep);
  if (definition.on_success) out["on_success"] = hook_json(*definition.on_success);
  return json::serialize(out);
}

config::ExportDefinition definition_from_json(const std::string& text_json) {
  boost::system::error_code ec;
  const auto parsed = json::parse(text_json, ec);
  if (ec || !parsed.is_object()) throw std::runtime_error("stored job definition is not a JSON object");
  const auto& in = parsed.as_object();
  config::ExportDefinition d;
  d.name = text(in, "name");
  d.account = text(in, "account");
  d.kind = choice(in, "kind",
                  {config::ExportKind::duplicates, config::ExportKind::consents, config::ExportKind::segments,
                   config::ExportKind::events},
                  d.kind);
  d.timezone = text(in, "timezone");
  d.format = choice(in, "format", {config::FileFormat::csv, config::FileFormat::xlsx, config::FileFormat::json},
                    d.format);
  d.compression = choice(in, "compression", {config::Compression::none, config::Compression::gzip}, d.compression);
  d.output_template = text(in, "output");
  d.request_json = json::serialize(field(in, "request"));
  const auto& polling = field(in, "polling").as_object();
  const auto& backoff = field(polling, "backoff").as_object();
  d.polling.backoff.initial_delay = millis(backoff, "initial_delay_ms");
  d.polling.backoff.multiplier = field(backoff, "multiplier").to_number<double>();
  d.polling.backoff.max_delay = millis(backoff, "max_delay_ms");
  d.polling.url_validity = millis(polling, "url_validity_ms");
  // Rows written before these keys existed: the defaults.
  if (polling.contains("failed_export_after_503s"))
    d.polling.failed_export_after_503s = field(polling, "failed_export_after_503s").to_number<int>();
  d.on_failed_export = choice(in, "on_failed_export", {config::OnFailedExport::resubmit, config::OnFailedExport::fail},
                              d.on_failed_export);
  if (in.contains("max_resubmits")) d.max_resubmits = field(in, "max_resubmits").to_number<int>();
  if (in.contains("window_ms")) d.window = millis(in, "window_ms");
  d.catchup = choice(in, "catchup", {config::Catchup::latest, config::Catchup::none}, d.catchup);
  d.overlap = choice(in, "overlap", {config::Overlap::skip, config::Overlap::allow}, d.overlap);
  d.on_expired = choice(in, "on_expired", {config::OnExpired::resubmit, config::OnExpired::fail}, d.on_expired);
  if (in.contains("schedule")) d.schedule = text(in, "schedule");
  // Rows written before these keys existed: the defaults.
  if (const auto* manifest = in.if_contains("manifest")) d.manifest = manifest->as_bool();
  if (const auto* keep = in.if_contains("keep")) d.keep = keep_from_json(keep->as_object());
  if (const auto* hook = in.if_contains("on_success")) d.on_success = hook_from_json(hook->as_object());
  return d;
}

}  // namespace apsis::jobs
