#include "jobs/submit_body.hpp"

#include <boost/json.hpp>

namespace apsis::jobs {

bool fix_event_window(const config::ExportDefinition& definition, JobRow& job) {
  if (definition.kind != config::ExportKind::events || !definition.window || job.window_start) return false;
  job.window_start = job.scheduled_for - *definition.window;
  job.window_end = job.scheduled_for;
  return true;
}

std::string submit_body(const config::ExportDefinition& definition, const JobRow& job) {
  if (!job.window_start || !job.window_end) return definition.request_json;
  auto body = boost::json::parse(definition.request_json);
  auto& request = body.as_object();
  if (!request.contains("start_at")) request["start_at"] = format_iso8601(*job.window_start);
  if (!request.contains("end_at")) request["end_at"] = format_iso8601(*job.window_end);
  return boost::json::serialize(body);
}

}  // namespace apsis::jobs
