// The file as a whole and its small sections (polling, retry); accounts and exports have their own files.
#include "config/config_loader.hpp"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <sstream>
#include <system_error>

#include "admin/listen_address.hpp"
#include "pg/settings.hpp"
#include "util/duration.hpp"
#include "config/loader_sections.hpp"

namespace apsis::config {
namespace detail {
namespace {

constexpr std::array<std::string_view, 12> kTopKeys{
    "state_db", "output_dir",   "accounts",           "polling",     "retry", "exports", "max_concurrent_downloads",
    "admin_listen", "admin_allow_remote", "history_days", "lease_ttl", "include"};
// Renewed every third of it: shorter than this, a busy database or loop would drop leases.
constexpr Milliseconds kMinLeaseTtl{std::chrono::seconds(1)};
constexpr std::array<std::string_view, 5> kPollingKeys{"initial_delay", "multiplier", "max_delay", "url_validity",
                                                       "failed_export_after_503s"};
constexpr std::array<std::string_view, 5> kRetryKeys{"initial_delay", "multiplier", "max_delay", "max_attempts",
                                                     "max_download_attempts"};

// initial_delay, multiplier and max_delay over `backoff`. The order of the delays is checked where
// this mapping sets one of them, so an inherited pair is not blamed twice.
void read_backoff(LoadContext& ctx, const Mapping& mapping, BackoffPolicy& backoff) {
  const auto initial = mapping.get("initial_delay");
  const auto max = mapping.get("max_delay");
  bool readable = true;
  if (initial) {
    const auto value = read_duration(ctx, *initial);
    readable = readable && value;
    if (value) backoff.initial_delay = *value;
  }
  if (max) {
    const auto value = read_duration(ctx, *max);
    readable = readable && value;
    if (value) backoff.max_delay = *value;
  }
  if (const auto field = mapping.get("multiplier"))
    if (const auto value = read_number(ctx, *field, 1.0)) backoff.multiplier = *value;

  if (!readable || backoff.max_delay >= backoff.initial_delay || (!initial && !max)) return;
  const auto initial_text = format_duration(backoff.initial_delay);
  const auto max_text = format_duration(backoff.max_delay);
  if (max) {
    ctx.errors.add(max->mark(), max->path + ": " + max_text + " is shorter than initial_delay (" + initial_text +
                                    (initial ? "" : ", inherited") + "): expected max_delay >= initial_delay");
  } else {
    ctx.errors.add(initial->mark(), initial->path + ": " + initial_text + " is longer than max_delay (" + max_text +
                                        ", inherited): expected initial_delay <= max_delay");
  }
}

// Records where each document's root node starts; a root's position is that of its first event.
class RootMarks : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> roots;

  void OnDocumentStart(const YAML::Mark&) override { in_root_ = false; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& mark) {
    if (!in_root_) roots.push_back(mark);
    in_root_ = true;
  }
  bool in_root_{false};
};

// Where each document's root starts; throws YAML::Exception like YAML::LoadAll. LoadAll itself is not
// used: yaml-cpp 0.7 returns the same empty document forever, allocating each time, when a document
// starts with a token no node can start with, such as a stray ',' (jbeder/yaml-cpp#1040). A document
// starting where the previous one did consumed nothing, so the scan stops there and `stuck` is set.
struct DocumentScan {
  std::vector<YAML::Mark> roots;
  bool stuck{false};
};

DocumentScan scan_documents(const std::string& text) {
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  RootMarks marks;
  DocumentScan scan;
  while (parser.HandleNextDocument(marks)) {
    const auto& roots = marks.roots;
    if (roots.size() >= 2 && roots.back().pos == roots[roots.size() - 2].pos) {
      scan.stuck = true;
      break;
    }
  }
  scan.roots = std::move(marks.roots);
  return scan;
}

std::string unexpected_token(std::string_view text, const YAML::Mark& mark) {
  const auto pos = static_cast<std::size_t>(mark.pos);
  if (pos >= text.size()) return "invalid YAML: unexpected end of the file";
  return "invalid YAML: unexpected '" + std::string(1, text[pos]) + "'";
}

// The endpoint shows export names and job details: reachable from other machines only when asked for.
std::optional<std::string> read_admin_listen(LoadContext& ctx, const Field& field, const Config& config) {
  auto text = read_nonempty_string(ctx, field);
  if (!text) return std::nullopt;
  std::string error;
  const auto endpoint = admin::parse_listen_address(*text, &error);
  if (!endpoint) {
    ctx.errors.add(field.mark(), field.path + ": " + error);
    return std::nullopt;
  }
  if (!admin::is_loopback(*endpoint) && !config.admin_allow_remote) {
    ctx.errors.add(field.mark(), field.path + ": " + *text +
                                     " is reachable from other machines; /metrics and /jobs have no authentication. "
                                     "Use 127.0.0.1 or [::1], or set admin_allow_remote: true");
    return std::nullopt;
  }
  return text;
}

bool is_database_url(std::string_view text) {
  return text.starts_with("postgresql://") || text.starts_with("postgres://");
}

// A path is a SQLite file; a postgresql:// URL (any URI libpq accepts) a PostgreSQL database.
void read_state_db(LoadContext& ctx, const Field& field, Config& config) {
  if (const auto text = field.value.IsScalar() ? std::optional(field.value.Scalar()) : std::nullopt;
      text && is_database_url(*text)) {
    try {
      (void)pg::parse_database_url(*text, ctx.options.env);  // checked now: a bad URL stops the start
      config.state_db_url = *text;
    } catch (const std::exception& e) {
      ctx.errors.add(field.mark(), field.path + ": " + e.what());
    }
    return;
  }
  if (auto path = read_path(ctx, field)) config.state_db = std::move(*path);
}

// How long an instance's account leases last without renewal: the failover time after a crash.
void read_lease_ttl(LoadContext& ctx, const Field& field, Config& config) {
  const auto value = read_duration(ctx, field);
  if (!value) return;
  if (!config.state_db_url) {
    ctx.errors.add(field.mark(), field.path + ": account leases need a postgresql:// state_db (SQLite serves one "
                                              "instance, which needs no lease)");
    return;
  }
  if (*value < kMinLeaseTtl) {
    ctx.errors.add(field.mark(), field.path + ": must be at least 1s (leases are renewed every third of it)");
    return;
  }
  config.lease_ttl = std::chrono::duration_cast<Milliseconds>(*value);
}

// With include:, the accounts may all live in drop-ins; at least one must exist somewhere.
void require_an_account(LoadContext& ctx, const Mapping& top, const std::optional<Field>& field,
                        const AccountsSection& accounts) {
  if (!accounts.names.empty()) return;
  if (field)
    ctx.errors.add(field->mark(), field->path + ": at least one account is required, here or in a file include: reads");
  else
    ctx.errors.add(top.mark(), "missing required key 'accounts' at the top level: expected a mapping from account "
                               "names to API credentials, here or in a file include: reads");
}

// `drop_ins` receives the files include: reads, whose errors the caller collects.
Config read_config(LoadContext& ctx, const YAML::Node& root, const std::filesystem::path& source, DropIns& drop_ins) {
  const Mapping top(ctx, root, kTopKeys);
  Config config;
  const auto include = top.get("include");
  if (include) drop_ins = read_includes(ctx, *include, source, kTopKeys);
  if (const auto field = top.require("state_db", "the path of the job database, e.g. ./state/jobs.sqlite3, or a "
                                                 "postgresql:// URL"))
    read_state_db(ctx, *field, config);
  if (const auto field = top.require("output_dir", "the directory exports are written to"))
    if (auto path = read_path(ctx, *field)) config.output_dir = std::move(*path);
  AccountsSection accounts;
  const auto accounts_field =
      include ? top.get("accounts") : top.require("accounts", "a mapping from account names to API credentials");
  if (accounts_field) accounts = read_accounts(ctx, *accounts_field, include.has_value());
  if (include) {
    add_drop_in_accounts(ctx, accounts_field, drop_ins, accounts);
    require_an_account(ctx, top, accounts_field, accounts);
  }
  if (const auto field = top.get("polling")) config.polling = read_polling(ctx, *field, config.polling);
  if (const auto field = top.get("retry")) config.retry = read_retry(ctx, *field);
  if (const auto field = top.get("max_concurrent_downloads"))
    if (const auto value = read_int(ctx, *field, 0)) config.max_concurrent_downloads = *value;
  if (const auto field = top.get("admin_allow_remote"))
    if (const auto value = read_bool(ctx, *field)) config.admin_allow_remote = *value;
  if (const auto field = top.get("admin_listen")) config.admin_listen = read_admin_listen(ctx, *field, config);
  if (const auto field = top.get("history_days")) config.history_days = read_int(ctx, *field, 1);
  if (const auto field = top.get("lease_ttl")) read_lease_ttl(ctx, *field, config);
  const auto exports_field = top.get("exports");
  if (exports_field) config.exports = read_exports(ctx, *exports_field, accounts.names, config.polling);
  if (include) add_drop_in_exports(ctx, exports_field, drop_ins, accounts.names, config.polling, config.exports);
  config.accounts = std::move(accounts.accounts);
  return config;
}

}  // namespace

std::optional<YAML::Node> parse_document(const std::string& text, ErrorSink& errors) {
  DocumentScan scan;
  std::optional<YAML::Node> root;  // emplaced, not assigned: assigning a YAML::Node writes through it
  try {
    scan = scan_documents(text);
    if (!scan.stuck) root.emplace(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    errors.add(e.mark, "invalid YAML: " + e.msg);
    return std::nullopt;
  }
  if (!root) {
    errors.add(scan.roots.back(), unexpected_token(text, scan.roots.back()));
    return std::nullopt;
  }
  if (!root->IsNull() && scan.roots.size() > 1)
    errors.add(scan.roots[1], "a second YAML document ('---'): expected a single configuration");
  return root;
}

PollingPolicy read_polling(LoadContext& ctx, const Field& field, const PollingPolicy& base) {
  const Mapping mapping(ctx, field, kPollingKeys);
  PollingPolicy polling = base;
  read_backoff(ctx, mapping, polling.backoff);
  if (const auto validity = mapping.get("url_validity"))
    if (const auto value = read_duration(ctx, *validity)) polling.url_validity = *value;
  if (const auto failed = mapping.get("failed_export_after_503s"))
    if (const auto value = read_int(ctx, *failed, 1)) polling.failed_export_after_503s = *value;
  return polling;
}

RetryPolicy read_retry(LoadContext& ctx, const Field& field) {
  const Mapping mapping(ctx, field, kRetryKeys);
  RetryPolicy retry;
  read_backoff(ctx, mapping, retry.backoff);
  if (const auto attempts = mapping.get("max_attempts"))
    if (const auto value = read_int(ctx, *attempts, 1)) retry.max_attempts = *value;
  if (const auto attempts = mapping.get("max_download_attempts"))
    if (const auto value = read_int(ctx, *attempts, 1)) retry.max_download_attempts = *value;
  return retry;
}

}  // namespace detail

FileAccess system_files() { return {detail::read_text_file, detail::check_readable_file, detail::glob_files}; }

std::string ConfigError::to_string() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

LoadResult load_config_string(std::string_view yaml, const std::filesystem::path& file_name_for_errors,
                              const LoadOptions& options) {
  detail::ErrorSink errors(file_name_for_errors.string());
  std::error_code ec;
  auto source = std::filesystem::absolute(file_name_for_errors, ec);
  if (ec) source = file_name_for_errors;
  source = source.lexically_normal();
  detail::LoadContext ctx{errors, options, source.parent_path()};

  const auto root = detail::parse_document(std::string(yaml), errors);
  if (!root) return {std::nullopt, errors.take()};
  if (root->IsNull()) {
    errors.add(YAML::Mark::null_mark(),
               "the configuration is empty: expected a mapping with state_db, output_dir and accounts");
    return {std::nullopt, errors.take()};
  }

  detail::DropIns drop_ins;
  Config config = detail::read_config(ctx, *root, source, drop_ins);
  config.source = source;
  // Each file's errors in its own order, the main file's first.
  LoadResult result{std::nullopt, errors.take(), errors.take_warnings()};
  for (auto& drop_in : drop_ins) {
    std::ranges::move(drop_in->errors.take(), std::back_inserter(result.errors));
    std::ranges::move(drop_in->errors.take_warnings(), std::back_inserter(result.warnings));
    config.drop_ins.push_back(drop_in->path);
  }
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

LoadResult load_config_file(const std::filesystem::path& file, const LoadOptions& options) {
  std::string reason;
  const auto text = detail::read_text_file(file, detail::kMaxConfigBytes, &reason);
  if (!text) {
    detail::ErrorSink errors(file.string());
    errors.add_whole_file("cannot read the configuration: " + reason);
    return {std::nullopt, errors.take()};
  }
  return load_config_string(*text, file, options);
}

}  // namespace apsis::config
