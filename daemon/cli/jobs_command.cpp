#include <boost/json.hpp>

#include <charconv>
#include <cstdio>

#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "store/open_store.hpp"
#include "store/job_store.hpp"

namespace apsis::cli {
namespace {

namespace json = boost::json;

json::object job_to_json(const store::Job& job) {
  return {{"id", job.id},
          {"export", job.export_name},
          {"scheduled_for", format_iso8601(job.scheduled_for)},
          {"state", store::to_string(job.state)},
          {"created_at", format_iso8601(job.created_at)},
          {"submit_attempts", job.submit_attempts},
          {"submitted_at", time_or_null(job.submitted_at)},
          {"poll_url", or_null(job.poll_url)},
          {"poll_url_field", or_null(job.poll_url_field)},
          {"poll_expires_at", time_or_null(job.poll_expires_at)},
          {"polls", job.polls},
          {"last_http_status", or_null(job.last_http_status)},
          {"next_poll_at", time_or_null(job.next_poll_at)},
          {"download_attempts", job.download_attempts},
          {"resubmits", job.resubmits},
          {"polls_503_in_a_row", job.polls_503_in_a_row},
          {"previous_poll_url", or_null(job.previous_poll_url)},
          {"resubmit_reason", or_null(job.resubmit_reason)},
          {"window_start", time_or_null(job.window_start)},
          {"window_end", time_or_null(job.window_end)},
          {"content_type", or_null(job.content_type)},
          {"content_encoding", or_null(job.content_encoding)},
          {"finished_at", time_or_null(job.finished_at)},
          {"error", or_null(job.error)},
          {"output_path", or_null(job.output_path)},
          {"bytes", or_null(job.bytes)},
          {"sha256", or_null(job.sha256)}};
}

std::string short_time(const std::optional<TimePoint>& t) {
  return t ? format_iso8601(*t).substr(0, 19) : std::string("-");
}

void print_table(const std::vector<store::Job>& jobs) {
  std::printf("%-6s %-24s %-19s %-11s %5s %4s %12s %-19s %s\n", "ID", "EXPORT", "SCHEDULED (UTC)", "STATE", "POLLS",
              "HTTP", "BYTES", "FINISHED (UTC)", "OUTPUT / ERROR");
  for (const auto& job : jobs) {
    const std::string detail = job.output_path ? *job.output_path : job.error.value_or("");
    std::printf("%-6lld %-24s %-19s %-11s %5d %4s %12s %-19s %s\n", static_cast<long long>(job.id),
                job.export_name.c_str(), short_time(job.scheduled_for).c_str(),
                std::string(store::to_string(job.state)).c_str(), job.polls,
                job.last_http_status ? std::to_string(*job.last_http_status).c_str() : "-",
                job.bytes ? std::to_string(*job.bytes).c_str() : "-", short_time(job.finished_at).c_str(),
                detail.c_str());
  }
}

// --limit N: a whole number (0 or less means no limit); anything else is a usage error.
int parse_limit(const std::string& text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
    throw UsageError("--limit expects a whole number of rows, got '" + text + "'");
  return value;
}

constexpr OptionHelp kJobsOptions[] = {
    {"--config FILE", "the configuration file (see apsis-exportd.yaml(5))"},
    {"--export NAME", "only the jobs of this export"},
    {"--state STATE", "only jobs in STATE: pending, submitted, downloading, succeeded, failed, expired"},
    {"--limit N", "at most N rows (0 or less: no limit)"},
    {"--json", "print a JSON array of the rows, every column"}};

}  // namespace

const CommandHelp kJobsHelp{
    .name = "jobs",
    .synopsis = "--config FILE [--export NAME] [--state STATE] [--limit N] [--json]",
    .summary = "show the job table",
    .details = "Reads the job table read-only; it needs no running service.",
    .options = kJobsOptions};

int jobs_command(const std::vector<std::string>& args) {
  const auto arguments = parse_arguments(args, {"config", "export", "state", "limit"}, {"json"});
  if (!arguments.positional.empty()) throw UsageError("jobs takes no positional arguments");
  const auto config = load_config_or_report(arguments.required("config"));
  if (!config) return kExitBadConfig;
  store::JobFilter filter;
  filter.export_name = arguments.option("export");
  if (const auto state = arguments.option("state")) {
    filter.state = store::parse_job_state(*state);
    if (!filter.state)
      throw UsageError("unknown state '" + *state + "' (pending, submitted, downloading, succeeded, failed, expired)");
  }
  if (const auto limit = arguments.option("limit")) filter.limit = parse_limit(*limit);
  if (filter.limit && *filter.limit <= 0) filter.limit.reset();
  std::vector<store::Job> jobs;
  try {
    jobs = store::open_job_store({config->state_db, config->state_db_url}, {.read_only = true})->list(filter);
  } catch (const store::NotInitialised& e) {
    // Nothing has run yet, or the daemon is creating the database at this moment: no jobs.
    std::fprintf(stderr, "apsis-exportd jobs: %s\n", e.what());
  }
  if (arguments.flag("json")) {
    json::array out;
    for (const auto& job : jobs) out.push_back(job_to_json(job));
    std::printf("%s\n", json::serialize(out).c_str());
  } else {
    print_table(jobs);
  }
  return kExitOk;
}

}  // namespace apsis::cli
