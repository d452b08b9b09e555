// Plain value types for a loaded, fully validated configuration.
// Parsed once at the edge (config_loader), then passed around as values; never YAML nodes.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace apsis::config {

using Duration = std::chrono::milliseconds;

enum class ExportKind { duplicates, consents };
enum class FileFormat { csv, xlsx };
enum class Compression { none, gzip };
// After downtime: run the most recent missed slot once (like systemd's Persistent=true), or none.
enum class Catchup { latest, none };
// A slot that comes while the export's previous job still runs: record it as skipped, or run both.
enum class Overlap { skip, allow };
// A job whose poll URL expired (410 or its day is over): submit it once more, or leave it expired.
enum class OnExpired { resubmit, fail };

std::string_view to_string(ExportKind);
std::string_view to_string(FileFormat);
std::string_view to_string(Compression);
std::string_view to_string(Catchup);
std::string_view to_string(Overlap);
std::string_view to_string(OnExpired);

// Exponential back-off with full jitter: delay n is uniform in [0, min(max_delay, initial * multiplier^n)].
struct BackoffPolicy {
  Duration initial_delay{std::chrono::seconds(10)};
  double multiplier{2.0};
  Duration max_delay{std::chrono::minutes(5)};
};

struct PollingPolicy {
  BackoffPolicy backoff{};
  // APSIS One documents a poll URL as valid for one day from the submit; configurable for tests.
  Duration url_validity{std::chrono::hours(24)};
};

// Transient failures (429, 5xx, connection errors) of any request.
struct RetryPolicy {
  BackoffPolicy backoff{std::chrono::seconds(1), 2.0, std::chrono::minutes(1)};
  int max_attempts{8};
  // A cut or corrupt download is fetched again from the same poll URL this many times.
  int max_download_attempts{5};
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
      {ExportKind::consents, "/audience/profiles/reports/consents"}};
  Duration request_timeout{std::chrono::seconds(60)};
  double max_requests_per_second{10.0};  // token bucket over every request to this account; 0 = unlimited
  int max_connections{16};               // open connections to the account's origin; 0 = unlimited

  friend bool operator==(const Account&, const Account&) = default;
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
};

struct Config {
  std::filesystem::path source;  // the YAML file this was loaded from
  std::filesystem::path state_db;
  std::filesystem::path output_dir;
  std::map<std::string, Account> accounts;
  PollingPolicy polling{};
  RetryPolicy retry{};
  int max_concurrent_downloads{8};  // poll/download transfers in flight at once; 0 = unlimited
  std::map<std::string, ExportDefinition> exports;
};

}  // namespace apsis::config
