// Plain value types for a loaded, fully validated configuration.
// Parsed once at the edge (config_loader), then passed around as values; never YAML nodes.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/backoff.hpp"

namespace apsis::config {

using Duration = std::chrono::milliseconds;

// The four asynchronous exports of APSIS One (../shared/docs/apsis-api.md); events files are JSON.
enum class ExportKind { duplicates, consents, segments, events };
enum class FileFormat { csv, xlsx, json };
enum class Compression { none, gzip };
// After downtime: run the most recent missed slot once (like systemd's Persistent=true), or none.
enum class Catchup { latest, none };
// A slot that comes while the export's previous job still runs: record it as skipped, or run both.
enum class Overlap { skip, allow };
// A job whose poll URL expired (410 or its day is over): submit it once more, or leave it expired.
enum class OnExpired { resubmit, fail };
// A job whose export failed at APSIS (503 on its poll URL several times in a row): request a new
// export, or leave the job failed.
enum class OnFailedExport { resubmit, fail };
// Which submit-answer field holds the poll URL. The two answer "in progress" differently
// (404 vs 202), so a job records which one it polls.
enum class PollUrlField { file_download_url, file_download_url_v2 };

std::string_view to_string(ExportKind);
std::string_view to_string(FileFormat);
std::string_view to_string(Compression);
std::string_view to_string(Catchup);
std::string_view to_string(Overlap);
std::string_view to_string(OnExpired);
std::string_view to_string(OnFailedExport);
std::string_view to_string(PollUrlField);
std::optional<PollUrlField> parse_poll_url_field(std::string_view);

// Exponential back-off with full jitter, defined beside its arithmetic in util/backoff.hpp.
using BackoffPolicy = apsis::BackoffPolicy;

struct PollingPolicy {
  BackoffPolicy backoff{};
  // APSIS One documents a poll URL as valid for one day from the submit; configurable for tests.
  Duration url_validity{std::chrono::hours(24)};
  // This many 503 answers in a row on one poll URL mean the export failed at APSIS (a lone 503 may
  // be an overloaded gateway). Between them the URL is polled on the retry back-off (seconds).
  int failed_export_after_503s{3};
};

// Transient failures (429, 5xx, connection errors) of any request.
struct RetryPolicy {
  BackoffPolicy backoff{std::chrono::seconds(1), 2.0, std::chrono::minutes(1)};
  int max_attempts{8};
  // A cut or corrupt download is fetched again from the same poll URL this many times.
  int max_download_attempts{5};
};

// At most `count` requests in any sliding window of length `window`.
struct RateBudget {
  int count{1};
  Duration window{std::chrono::seconds(1)};
  friend bool operator==(const RateBudget&, const RateBudget&) = default;
};

// An account's API budget per call kind, shared by every job of the account. The limits APSIS One
// documents are per account and shared with the customer's other integrations, so the defaults
// spend half of each: submits 1/s, event exports 1/min, polls 60/min, tokens 10/min.
struct AccountBudget {
  RateBudget submits{1, std::chrono::seconds(2)};        // every export POST
  RateBudget event_submits{1, std::chrono::minutes(2)};  // event-export POSTs, counted in submits too
  RateBudget polls{30, std::chrono::minutes(1)};         // every GET of a poll URL, downloads included
  RateBudget tokens{5, std::chrono::minutes(1)};         // token requests
  friend bool operator==(const AccountBudget&, const AccountBudget&) = default;
};

struct Account {
  std::string name;
  std::string base_url;  // scheme://host[:port], no trailing slash
  std::string client_id;
  std::string client_secret;  // never logged, never stored in the job table
  std::optional<std::filesystem::path> ca_file;
  std::string token_path{"/oauth/token"};
  std::map<ExportKind, std::string> export_paths{
      {ExportKind::duplicates, "/audience/profiles/reports/duplicates"},
      {ExportKind::consents, "/audience/profiles/reports/consents"},
      {ExportKind::segments, "/audience/profiles/reports/segments"},
      {ExportKind::events, "/audience/profiles/exports"}};
  Duration request_timeout{std::chrono::seconds(60)};
  int max_connections{16};  // open connections to the account's origin; 0 = unlimited
  PollUrlField poll_url_field{PollUrlField::file_download_url};
  AccountBudget budget{};

  friend bool operator==(const Account&, const Account&) = default;
};

// keep: which published files of an export stay on disk; the rest (and their manifests) are deleted
// after each successful publish. Neither set: every file stays.
struct Retention {
  std::optional<int> count;  // the newest N files
  std::optional<int> days;   // files whose slot is at most D days old

  bool any() const { return count || days; }
  friend bool operator==(const Retention&, const Retention&) = default;
};

// on_success: a command run after each publish, without a shell.
struct SuccessHook {
  std::vector<std::string> argv;
  Duration timeout{std::chrono::minutes(5)};

  friend bool operator==(const SuccessHook&, const SuccessHook&) = default;
};

struct ExportDefinition {
  std::string name;
  std::string account;
  ExportKind kind{ExportKind::duplicates};
  std::optional<std::string> schedule;  // evaluated by the daemon's scheduler
  std::string timezone{"UTC"};
  std::string request_json{"{}"};  // the `request:` mapping serialised as JSON, sent unchanged
  FileFormat format{FileFormat::csv};
  Compression compression{Compression::none};
  // Relative to Config::output_dir; placeholders are checked by output_template.hpp.
  std::string output_template{"{export}/{export}-{scheduled:%Y%m%dT%H%M%SZ}.{ext}"};
  PollingPolicy polling{};
  Catchup catchup{Catchup::latest};
  Overlap overlap{Overlap::skip};
  OnExpired on_expired{OnExpired::resubmit};
  OnFailedExport on_failed_export{OnFailedExport::resubmit};
  // New exports requested for one job after an expired URL or a failed export, together.
  int max_resubmits{1};
  // Event exports only: each job asks for [slot - window, slot) unless the request sets start_at/end_at.
  std::optional<Duration> window;
  bool manifest{true};  // a <file>.json sidecar beside each published file
  Retention keep{};
  std::optional<SuccessHook> on_success;
};

struct Config {
  std::filesystem::path source;  // the YAML file this was loaded from
  std::vector<std::filesystem::path> drop_ins;  // the files its include: read, in the order read
  std::filesystem::path state_db;              // SQLite: the job table's file
  std::optional<std::string> state_db_url;     // PostgreSQL instead: the URL as written (${ENV} unexpanded)
  // PostgreSQL: how long this instance's account leases last unrenewed (renewed every third of it).
  Milliseconds lease_ttl{std::chrono::seconds(15)};
  std::filesystem::path output_dir;
  std::map<std::string, Account> accounts;
  PollingPolicy polling{};
  RetryPolicy retry{};
  int max_concurrent_downloads{8};  // poll/download transfers in flight at once; 0 = unlimited
  // "HOST:PORT" of the HTTP endpoint for /metrics, /healthz and /jobs; none = not served.
  std::optional<std::string> admin_listen;
  bool admin_allow_remote{false};  // without it, admin_listen must be a loopback address
  std::optional<int> history_days;  // finished job rows older than this are deleted; none = kept
  std::map<std::string, ExportDefinition> exports;
};

}  // namespace apsis::config
