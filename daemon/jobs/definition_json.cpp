#include "jobs/definition_json.hpp"

#include <boost/json.hpp>

namespace apsis::jobs {

namespace json = boost::json;

namespace {
json::object backoff_json(const config::BackoffPolicy& policy) {
  return {{"initial_delay_ms", policy.initial_delay.count()},
          {"multiplier", policy.multiplier},
          {"max_delay_ms", policy.max_delay.count()}};
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
                                {"url_validity_ms", definition.polling.url_validity.count()}}}};
  if (definition.schedule) out["schedule"] = *definition.schedule;
  return json::serialize(out);
}

}  // namespace apsis::jobs
