// Reading PostgresJobStore's rows: every value arrives as text, exactly what psql shows.
#include <algorithm>

#include "store/postgres_internal.hpp"

namespace apsis::store {
namespace {

std::optional<std::string> optional_string(const pg::Result& result, int row, int column) {
  const auto text = result.optional_text(row, column);
  if (!text) return std::nullopt;
  return std::string(*text);
}

std::optional<TimePoint> optional_time(const pg::Result& result, int row, int column) {
  if (result.is_null(row, column)) return std::nullopt;
  return postgres_time(result, row, column);
}

std::optional<int> optional_int(const pg::Result& result, int row, int column) {
  const auto value = result.optional_int64(row, column);
  if (!value) return std::nullopt;
  return static_cast<int>(*value);
}

int required_int(const pg::Result& result, int row, int column) { return static_cast<int>(result.int64(row, column)); }

}  // namespace

TimePoint postgres_time(const pg::Result& result, int row, int column) {
  const auto text = result.text(row, column);
  const auto parsed = parse_iso8601(text);
  if (!parsed) throw std::runtime_error("job table holds an unreadable time '" + std::string(text) + "'");
  return *parsed;
}

Job read_postgres_job(const pg::Result& r, int row, std::map<std::int64_t, std::optional<std::string>>& accounts) {
  Job job;
  job.id = r.int64(row, 0);
  job.export_name = std::string(r.text(row, 1));
  job.scheduled_for = postgres_time(r, row, 2);
  const auto state = parse_job_state(r.text(row, 3));
  if (!state) throw std::runtime_error("job table holds an unknown state '" + std::string(r.text(row, 3)) + "'");
  job.state = *state;
  job.definition_json = std::string(r.text(row, 4));
  job.created_at = postgres_time(r, row, 5);
  job.submit_attempts = required_int(r, row, 6);
  job.submitted_at = optional_time(r, row, 7);
  job.poll_url = optional_string(r, row, 8);
  job.poll_expires_at = optional_time(r, row, 9);
  job.polls = required_int(r, row, 10);
  job.last_http_status = optional_int(r, row, 11);
  job.next_poll_at = optional_time(r, row, 12);
  job.download_attempts = required_int(r, row, 13);
  job.content_type = optional_string(r, row, 14);
  job.content_encoding = optional_string(r, row, 15);
  job.finished_at = optional_time(r, row, 16);
  job.error = optional_string(r, row, 17);
  job.output_path = optional_string(r, row, 18);
  job.bytes = r.optional_int64(row, 19);
  job.sha256 = optional_string(r, row, 20);
  job.resubmits = required_int(r, row, 21);
  job.manifest_path = optional_string(r, row, 22);
  job.hook_result = optional_string(r, row, 23);
  job.file_removed_at = optional_time(r, row, 24);
  job.poll_url_field = optional_string(r, row, 25);
  job.polls_503_in_a_row = required_int(r, row, 26);
  job.previous_poll_url = optional_string(r, row, 27);
  job.resubmit_reason = optional_string(r, row, 28);
  job.window_start = optional_time(r, row, 29);
  job.window_end = optional_time(r, row, 30);
  accounts[job.id] = optional_string(r, row, 31);
  return job;
}

std::optional<std::string> optional_iso(const std::optional<TimePoint>& t) {
  if (!t) return std::nullopt;
  return format_iso8601(*t);
}

std::optional<std::string> optional_number(const std::optional<std::int64_t>& n) {
  if (!n) return std::nullopt;
  return std::to_string(*n);
}

}  // namespace apsis::store
