// `apsis-exportd status`: every export on one screen, from the configuration and the job table
// (read-only, like `jobs`), for people on a terminal and, with --json, for scripts.
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>

#include "cli/arguments.hpp"
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "cli/status_format.hpp"
#include "schedule/schedule.hpp"
#include "config/env_expand.hpp"
#include "lease/holders.hpp"
#include "pg/settings.hpp"
#include "service/config_hash.hpp"
#include "store/open_store.hpp"
#include "store/job_store.hpp"

namespace apsis::cli {
namespace {

namespace json = boost::json;
using store::JobState;
using std::chrono::seconds;

constexpr std::size_t kScreenWidth = 80;
constexpr std::size_t kLabelWidth = 13;  // "  next run   ": two spaces of indent, the label, its padding
constexpr std::size_t kValueWidth = kScreenWidth - kLabelWidth;
// Enough for the daemon's explanation and the API's own message, few enough to keep one screen.
constexpr std::size_t kErrorLines = 3;
constexpr std::string_view kNoJobTableZone = "UTC";  // exports gone from the file have no zone any more

constexpr JobState kInFlight[] = {JobState::pending, JobState::submitted, JobState::downloading};
constexpr JobState kAllStates[] = {JobState::pending,   JobState::submitted, JobState::downloading,
                                   JobState::succeeded, JobState::failed,    JobState::expired,
                                   JobState::skipped};

// One export as the report shows it: its definition (none for an export only the job table still
// knows) and what the job table says about it.
struct ExportStatus {
  std::string name{};
  const config::ExportDefinition* definition{nullptr};
  std::optional<TimePoint> next_run{};
  std::optional<store::Job> last_result{};
  std::map<JobState, std::int64_t> counts{};

  std::int64_t count(JobState state) const {
    const auto found = counts.find(state);
    return found == counts.end() ? 0 : found->second;
  }
  bool needs_attention() const {
    return last_result && (last_result->state == JobState::failed || last_result->state == JobState::expired);
  }
  std::string_view zone() const { return definition ? std::string_view(definition->timezone) : kNoJobTableZone; }
};

struct StatusReport {
  TimePoint now{};
  std::string config_path{};
  std::string state_db{};
  bool job_table_exists{true};
  // PostgreSQL: the live instances and who holds which account; the hash of this configuration file,
  // which each instance records (a different one means they run different configurations).
  std::optional<lease::LeaseView> leases{};
  std::string config_hash{};
  std::vector<ExportStatus> exports{};          // in the configuration, by name
  std::vector<ExportStatus> unknown_exports{};  // only in the job table, by name
};

std::optional<TimePoint> next_run(const config::ExportDefinition& definition, TimePoint now) {
  if (!definition.schedule) return std::nullopt;
  const auto schedule = schedule::Schedule::parse(*definition.schedule, definition.timezone);
  if (!schedule) return std::nullopt;  // cannot happen: loading the file has validated the schedule
  return schedule->next_after(now);
}

// The export's newest job that ran to an end. A skipped slot is only the shadow of a job still running
// at that time, so when the newest finished row is one, the outcome of the job that ran is what counts.
std::optional<store::Job> last_result(store::JobStore& store, const std::string& name) {
  auto latest = store.latest_finished(name);
  if (!latest || latest->state != JobState::skipped) return latest;
  std::optional<store::Job> ran;
  for (const auto state : {JobState::succeeded, JobState::failed, JobState::expired}) {
    auto newest = store.list({.export_name = name, .state = state, .limit = 1});
    if (!newest.empty() && (!ran || newest.front().finished_at > ran->finished_at)) ran = std::move(newest.front());
  }
  return ran ? ran : latest;
}

void read_job_table(StatusReport& report, store::JobStore& store) {
  std::map<std::string, std::map<JobState, std::int64_t>> counts;
  for (const auto& row : store.count_by_export_and_state()) counts[row.export_name][row.state] = row.count;
  for (auto& status : report.exports) {
    if (const auto found = counts.find(status.name); found != counts.end()) {
      status.counts = std::move(found->second);
      counts.erase(found);
    }
    status.last_result = last_result(store, status.name);
  }
  for (auto& [name, by_state] : counts)
    report.unknown_exports.push_back(
        {.name = name, .last_result = last_result(store, name), .counts = std::move(by_state)});
}

// Throws std::runtime_error, naming the file, for a job table this binary cannot read (newer, corrupt).
StatusReport build_report(const config::Config& config, TimePoint now) {
  StatusReport report{.now = now, .config_path = config.source.string(), .state_db = config.state_db.string()};
  if (config.state_db_url) {
    const auto settings = pg::parse_database_url(*config.state_db_url, config::process_environment());
    report.state_db = pg::redacted(settings);
    report.config_hash = service::config_hash(config);
    try {
      report.leases = lease::read_leases(settings);
    } catch (const std::exception&) {
      // No lease tables yet (no instance ever ran), or the database is away: the job table says which.
    }
  }
  for (const auto& [name, definition] : config.exports)
    report.exports.push_back({.name = name, .definition = &definition, .next_run = next_run(definition, now)});
  try {
    auto store_owner = store::open_job_store({config.state_db, config.state_db_url}, {.read_only = true});
    auto& store = *store_owner;
    read_job_table(report, store);
  } catch (const store::NotInitialised&) {
    // Nothing has run yet, or the daemon is creating the database right now: every export has no jobs.
    report.job_table_exists = false;
  } catch (const std::exception& e) {
    const std::string problem = e.what();
    const bool names_file = problem.find(report.state_db) != std::string::npos;
    throw std::runtime_error("cannot read the job table: " + (names_file ? problem : report.state_db + ": " + problem));
  }
  return report;
}

seconds whole_seconds(TimePoint::duration d) { return std::chrono::floor<seconds>(d); }

// The daemon sets finished_at with every final state; created_at only stands in for a row written by hand.
TimePoint finished_time(const store::Job& job) { return job.finished_at.value_or(job.created_at); }

// ---- terminal ----

// ANSI colours, empty when stdout is not a terminal or NO_COLOR (no-color.org) is set.
struct Palette {
  std::string bold, red, green, reset;

  static Palette for_stdout() {
    const char* no_color = std::getenv("NO_COLOR");
    if (!::isatty(STDOUT_FILENO) || (no_color && *no_color)) return {};
    return {"\033[1m", "\033[31m", "\033[32m", "\033[0m"};
  }
  std::string paint(const std::string& colour, const std::string& text) const {
    return colour.empty() ? text : colour + text + reset;
  }
};

void add_field(std::string& out, std::string_view label, const std::string& value) {
  std::string line = "  " + std::string(label);
  line.resize(kLabelWidth, ' ');
  out += line + value + "\n";
}

std::string in_flight_text(const ExportStatus& status) {
  const auto total = status.count(JobState::pending) + status.count(JobState::submitted) +
                     status.count(JobState::downloading);
  if (total == 0) return "none";
  return std::to_string(status.count(JobState::pending)) + " pending, " +
         std::to_string(status.count(JobState::submitted)) + " submitted, " +
         std::to_string(status.count(JobState::downloading)) + " downloading";
}

std::string state_colour(const Palette& palette, JobState state) {
  if (state == JobState::succeeded) return palette.green;
  if (state == JobState::failed || state == JobState::expired) return palette.red;
  return {};
}

void add_last_result(std::string& out, const ExportStatus& status, const StatusReport& report,
                     const Palette& palette) {
  if (!status.last_result) {
    add_field(out, "last run", status.counts.empty() ? "no jobs yet" : "none finished yet");
    return;
  }
  const auto& job = *status.last_result;
  const std::string state(store::to_string(job.state));
  const auto finished = finished_time(job);
  const std::string when = format_local_time_short(finished, status.zone()) + ", " +
                           format_duration_short(whole_seconds(report.now - finished)) + " ago, job " +
                           std::to_string(job.id);
  add_field(out, "last run",
            palette.paint(state_colour(palette, job.state), state) + " " +
                fit_line(when, kValueWidth - state.size() - 1));
  if (job.state == JobState::succeeded && job.output_path) {
    std::string detail = job.bytes ? ", " + format_size(*job.bytes) : std::string();
    if (job.file_removed_at) detail += ", since removed (keep:)";
    add_field(out, "", fit_path(*job.output_path, kValueWidth - detail.size()) + detail);
  } else if (job.error) {
    for (const auto& line : wrap_lines(*job.error, kValueWidth, kErrorLines)) add_field(out, "", line);
  }
}

// "! name  details": the marker flags a failed or expired last run; the details give way to the name
// when the line is too long.
std::string heading(const ExportStatus& status, const std::string& details, const Palette& palette) {
  const std::string marker = status.needs_attention() ? palette.paint(palette.red, "!") + " " : "  ";
  const std::string name = fit_line(status.name, kScreenWidth - 2);
  const std::size_t room = kScreenWidth - 2 - std::min(name.size(), kScreenWidth - 2);
  const std::string rest = room > 8 ? "  " + fit_line(details, room - 2) : "";  // a few letters say nothing
  return marker + palette.paint(palette.bold, name) + rest + "\n";
}

// "instance 1a2b3c4d (host, pid 42)", or why nobody runs the account's jobs now.
std::string holder_text(const lease::LeaseView& leases, const std::string& account) {
  const auto* holder = leases.holder_of(account);
  if (!holder || !holder->live) return "nobody: no live instance holds account " + account;
  const auto* instance = leases.instance(*holder->owner);
  return "instance " + holder->owner->substr(0, 8) +
         (instance ? " (" + instance->host + ", pid " + std::to_string(instance->pid) + ")" : std::string()) +
         ", lease epoch " + std::to_string(holder->epoch);
}

std::string instances_block(const StatusReport& report) {
  std::string out = "\ninstances (PostgreSQL, sharing the accounts by lease)\n";
  const auto& leases = *report.leases;
  if (leases.instances.empty()) out += "  none running\n";
  for (const auto& instance : leases.instances) {
    const auto held = std::count_if(leases.accounts.begin(), leases.accounts.end(),
                                    [&](const auto& a) { return a.live && a.owner == instance.id; });
    std::string line = instance.id.substr(0, 8) + "  " + instance.host + ", pid " + std::to_string(instance.pid) +
                       ", " + std::to_string(held) + (held == 1 ? " account" : " accounts") + ", version " +
                       instance.version;
    if (instance.config_hash != report.config_hash) line += "; runs a DIFFERENT configuration";
    add_field(out, "", fit_line(line, kValueWidth));
  }
  return out;
}

std::string export_block(const ExportStatus& status, const StatusReport& report, const Palette& palette) {
  const auto& definition = *status.definition;
  std::string out =
      heading(status, std::string(config::to_string(definition.kind)) + ", account " + definition.account, palette);
  if (definition.schedule) {
    const std::string zone = "  (" + definition.timezone + ")";
    add_field(out, "schedule", fit_line(*definition.schedule, kValueWidth - zone.size()) + zone);
  } else {
    add_field(out, "schedule", "none (trigger/once only)");
  }
  if (status.next_run) {
    add_field(out, "next run",
              fit_line(format_local_time(*status.next_run, definition.timezone) + ", in " +
                           format_duration_short(whole_seconds(*status.next_run - report.now)),
                       kValueWidth));
  }
  add_last_result(out, status, report, palette);
  add_field(out, "in flight", in_flight_text(status));
  if (report.leases) add_field(out, "run by", fit_line(holder_text(*report.leases, definition.account), kValueWidth));
  return out;
}

// "! old-name  12 jobs (1 in flight), last failed 3d 2h ago"
std::string unknown_export_line(const ExportStatus& status, const StatusReport& report, const Palette& palette) {
  std::int64_t total = 0;
  for (const auto& [state, count] : status.counts) total += count;
  std::int64_t in_flight = 0;
  for (const auto state : kInFlight) in_flight += status.count(state);
  std::string text = std::to_string(total) + (total == 1 ? " job" : " jobs");
  if (in_flight > 0) text += " (" + std::to_string(in_flight) + " in flight)";
  if (status.last_result)
    text += ", last " + std::string(store::to_string(status.last_result->state)) + " " +
            format_duration_short(whole_seconds(report.now - finished_time(*status.last_result))) + " ago";
  return heading(status, text, palette);
}

std::string render_text(const StatusReport& report, const Palette& palette) {
  std::string out;
  add_field(out, "config", fit_path(report.config_path, kValueWidth));
  const std::string missing = report.job_table_exists ? "" : "  (no job table yet)";
  add_field(out, "state db", fit_path(report.state_db, kValueWidth - missing.size()) + missing);
  add_field(out, "now", format_local_time_short(report.now, "UTC"));
  if (report.leases) out += instances_block(report);
  for (const auto& status : report.exports) out += "\n" + export_block(status, report, palette);
  if (report.exports.empty()) out += "\nno exports configured\n";
  if (!report.unknown_exports.empty()) {
    out += "\nin the job table but no longer in the configuration:\n";
    for (const auto& status : report.unknown_exports) out += unknown_export_line(status, report, palette);
  }
  return out;
}

// ---- JSON ----

json::value last_result_json(const ExportStatus& status, TimePoint now) {
  if (!status.last_result) return nullptr;
  const auto& job = *status.last_result;
  json::value age = nullptr;
  if (job.finished_at) age = whole_seconds(now - *job.finished_at).count();
  return json::object{{"job_id", job.id},
                      {"state", store::to_string(job.state)},
                      {"scheduled_for", format_iso8601(job.scheduled_for)},
                      {"finished_at", time_or_null(job.finished_at)},
                      {"age_seconds", age},
                      {"error", or_null(job.error)},
                      {"output_path", or_null(job.output_path)},
                      {"bytes", or_null(job.bytes)}};
}

// What the job table says; for an export gone from the file, that is all there is to say.
void add_job_table_fields(json::object& out, const ExportStatus& status, TimePoint now) {
  json::object in_flight, counts;
  for (const auto state : kInFlight) in_flight[store::to_string(state)] = status.count(state);
  for (const auto state : kAllStates) counts[store::to_string(state)] = status.count(state);
  out["last_result"] = last_result_json(status, now);
  out["in_flight"] = std::move(in_flight);
  out["counts"] = std::move(counts);
}

json::object unknown_export_json(const ExportStatus& status, TimePoint now) {
  json::object out{{"name", status.name}};
  add_job_table_fields(out, status, now);
  return out;
}

json::object export_json(const ExportStatus& status, TimePoint now) {
  const auto& definition = *status.definition;
  json::value next_run_local = nullptr;
  if (status.next_run) next_run_local = format_local_iso8601(*status.next_run, definition.timezone);
  json::object out{{"name", status.name},
                   {"kind", config::to_string(definition.kind)},
                   {"account", definition.account},
                   {"schedule", or_null(definition.schedule)},
                   {"timezone", definition.timezone},
                   {"next_run", time_or_null(status.next_run)},
                   {"next_run_local", std::move(next_run_local)}};
  add_job_table_fields(out, status, now);
  return out;
}

json::value instances_json(const StatusReport& report) {
  if (!report.leases) return nullptr;
  json::array instances;
  for (const auto& instance : report.leases->instances) {
    json::array accounts;
    for (const auto& a : report.leases->accounts)
      if (a.live && a.owner == instance.id) accounts.emplace_back(a.account);
    instances.push_back(json::object{{"id", instance.id},
                                     {"host", instance.host},
                                     {"pid", instance.pid},
                                     {"version", instance.version},
                                     {"same_config", instance.config_hash == report.config_hash},
                                     {"accounts", std::move(accounts)}});
  }
  return instances;
}

json::object render_json(const StatusReport& report) {
  json::array exports, unknown;
  for (const auto& status : report.exports) {
    auto out = export_json(status, report.now);
    if (report.leases) {
      const auto* holder = report.leases->holder_of(status.definition->account);
      out["run_by"] = holder && holder->live ? json::value(*holder->owner) : json::value(nullptr);
    }
    exports.push_back(std::move(out));
  }
  for (const auto& status : report.unknown_exports) unknown.push_back(unknown_export_json(status, report.now));
  return {{"generated_at", format_iso8601(report.now)},
          {"config", report.config_path},
          {"state_db", report.state_db},
          {"instances", instances_json(report)},
          {"exports", std::move(exports)},
          {"unknown_exports", std::move(unknown)}};
}

constexpr OptionHelp kStatusOptions[] = {
    {"--config FILE", "the configuration file (see apsis-exportd.yaml(5))"},
    {"--json", "print the same as one JSON document (times in ISO 8601)"}};

}  // namespace

const CommandHelp kStatusHelp{
    .name = "status",
    .synopsis = "--config FILE [--json]",
    .summary = "every export at a glance: schedule, next run, last result, jobs in flight",
    .details = "Reads the configuration and the job table read-only; it needs no running service.\n"
               "Colour only on a terminal and without NO_COLOR.",
    .options = kStatusOptions};

int status_command(const std::vector<std::string>& args) {
  const auto arguments = parse_arguments(args, {"config"}, {"json"});
  if (!arguments.positional.empty()) throw UsageError("status takes no positional arguments");
  const auto config = load_config_or_report(arguments.required("config"));
  if (!config) return kExitBadConfig;
  const auto report = build_report(*config, Clock::now());
  if (arguments.flag("json"))
    std::printf("%s\n", json::serialize(render_json(report)).c_str());
  else
    std::fputs(render_text(report, Palette::for_stdout()).c_str(), stdout);
  return kExitOk;
}

}  // namespace apsis::cli
