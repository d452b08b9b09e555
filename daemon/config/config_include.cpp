// include: drop-in files beside the main configuration (conf.d/*.yaml), as systemd and nginx read them,
// so a package, Ansible or a team adds one file per account or export without editing the main file.
//
// The rules (README "Drop-in files"), chosen so that no result depends on which file was read last:
// - include: is a glob(7) pattern or a list of them, relative to the main file's directory. Patterns are
//   read in the order written, each one's matches in byte order of their paths (systemd's order); a file
//   matched twice is read once, and the main file is never its own drop-in (include: "*.yaml" beside it).
// - A pattern with *, ? or [ may match nothing (an empty conf.d); one without names a file that must exist.
// - A drop-in holds accounts: and exports: only: every other key is global and stays in the main file,
//   so there is no precedence to learn. A drop-in's include: is refused: one level, no cycles.
// - Account and export names are unique across all files: a second definition is an error at its own
//   FILE:LINE:COL naming the first one's. Exports may use accounts of any file.
// - Relative paths in a drop-in (client_secret_file, ca_file) resolve against the drop-in's directory,
//   as the main file's do against its own: a drop-in and its secret file move together.
#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <system_error>

#include "config/loader_sections.hpp"
#include "config/output_template.hpp"

namespace apsis::config::detail {
namespace {

constexpr std::string_view kDropInKeys = "accounts: and exports:";

std::string location(const LoadContext& ctx, const YAML::Mark& mark) {
  return ctx.errors.file() + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

bool has_wildcard(std::string_view pattern) { return pattern.find_first_of("*?[") != std::string_view::npos; }

// `dir` as a glob prefix: its own *, ?, [ and \ match themselves.
std::string escape_glob(const std::string& dir) {
  std::string out;
  for (const char c : dir) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// The patterns of include:, one Field each; reports a value that is neither a string nor a list of them.
std::vector<Field> pattern_fields(LoadContext& ctx, const Field& include) {
  std::vector<Field> fields;
  if (include.value.IsScalar()) {
    fields.push_back(include);
  } else if (include.value.IsSequence()) {
    for (std::size_t i = 0; i < include.value.size(); ++i)
      fields.push_back({include.path + "[" + std::to_string(i) + "]", include.value[i], include.value[i]});
  } else {
    ctx.errors.add(include.mark(), include.path + ": expected a glob such as conf.d/*.yaml, or a list of them");
  }
  return fields;
}

// A file a pattern names: where it is, and how errors name it.
struct Match {
  std::filesystem::path path;
  std::string shown;
};

// The paths a pattern with wildcards matches, in byte order; nullopt when a directory cannot be read.
std::optional<std::vector<std::filesystem::path>> glob_pattern(LoadContext& ctx, const Field& field,
                                                               const std::string& pattern) {
  std::string error = "no glob in this build";
  std::optional<std::vector<std::filesystem::path>> paths;
  if (ctx.options.files.glob) {
    const bool relative = std::filesystem::path(pattern).is_relative();
    paths = ctx.options.files.glob(relative ? escape_glob(ctx.base_dir.string()) + "/" + pattern : pattern, &error);
  }
  if (!paths) {
    ctx.errors.add(field.mark(), field.path + ": cannot match " + pattern + ": " + error);
    return std::nullopt;
  }
  std::ranges::sort(*paths, [](const auto& a, const auto& b) { return a.native() < b.native(); });
  return paths;
}

// The files `field`'s pattern names, in byte order.
std::vector<Match> matches_of(LoadContext& ctx, const Field& field) {
  const auto pattern = read_nonempty_string(ctx, field);
  if (!pattern) return {};
  const std::filesystem::path written(*pattern);
  std::vector<std::filesystem::path> paths;
  if (!has_wildcard(*pattern)) {
    paths.push_back(written.is_relative() ? ctx.base_dir / written : written);
  } else if (auto found = glob_pattern(ctx, field, *pattern)) {
    paths = std::move(*found);
  }
  // Named beside the main file as the user named it: "etc/conf.d/a.yaml", not /home/.../etc/conf.d/a.yaml.
  const auto shown_dir = std::filesystem::path(ctx.errors.file()).parent_path();
  std::vector<Match> matches;
  for (auto& path : paths) {
    path = path.lexically_normal();
    const auto shown = written.is_relative() ? shown_dir / path.lexically_relative(ctx.base_dir) : path;
    matches.push_back({path, shown.lexically_normal().string()});
  }
  return matches;
}

// The drop-in's top level: keeps accounts: and exports:, refuses the main file's other keys by name.
void read_top_level(DropIn& drop_in, const YAML::Node& root, const std::string& main_shown,
                    std::span<const std::string_view> top_keys) {
  if (root.IsNull()) return;  // an empty drop-in, e.g. one commented out
  if (!root.IsMap()) {
    drop_in.errors.add(root.Mark(), "expected a mapping at the top level with " + std::string(kDropInKeys) +
                                        " (a drop-in file), got something else");
    return;
  }
  const Mapping top(drop_in.ctx, root, top_keys);
  for (const auto& field : top.fields()) {
    const auto& key = field.key.Scalar();
    if (key == "accounts") {
      drop_in.accounts = field;
    } else if (key == "exports") {
      drop_in.exports = field;
    } else if (key == "include") {
      drop_in.errors.add(field.key.Mark(), "include: only the main file (" + main_shown +
                                               ") may include files; a drop-in holds " + std::string(kDropInKeys));
    } else {
      drop_in.errors.add(field.key.Mark(), key + ": a drop-in file holds only " + std::string(kDropInKeys) +
                                               "; set " + key + " in the main file (" + main_shown + ")");
    }
  }
}

// Where each account or export name was first defined, across the main file and its drop-ins.
class FirstDefinitions {
 public:
  explicit FirstDefinitions(std::string what) : what_(std::move(what)) {}

  // The names in `field`'s mapping another file defined first, each reported at its place here. A
  // name repeated within one file is left to Mapping, which reports it with both lines.
  std::set<std::string> claim(const LoadContext& ctx, const Field& field) {
    std::set<std::string> taken;
    if (!field.value.IsMap()) return taken;
    for (const auto& entry : field.value) {
      if (!entry.first.IsScalar()) continue;
      const auto& name = entry.first.Scalar();
      const auto [first, inserted] = first_.emplace(name, Place{ctx.errors.file(), location(ctx, entry.first.Mark())});
      if (inserted || first->second.file == ctx.errors.file()) continue;
      ctx.errors.add(entry.first.Mark(),
                     "duplicate " + what_ + " '" + name + "': already defined at " + first->second.where);
      taken.insert(name);
    }
    return taken;
  }

 private:
  struct Place {
    std::string file;
    std::string where;  // FILE:LINE:COL
  };
  std::string what_;
  std::map<std::string, Place, std::less<>> first_;
};

// config_exports.cpp refuses two exports of one file sharing a template without {export} or {job};
// this does the same for exports of different files.
class SharedTemplates {
 public:
  void check(const LoadContext& ctx, const Field& field, const std::map<std::string, ExportDefinition>& exports) {
    if (!field.value.IsMap()) return;
    for (const auto& entry : field.value) {
      const YAML::Node& body = entry.second;
      if (!entry.first.IsScalar() || !body.IsMap() || !body["output"]) continue;
      const auto found = exports.find(entry.first.Scalar());
      if (found == exports.end() || names_export_or_job(found->second.output_template)) continue;
      const auto mark = body["output"].Mark();
      const auto path = "exports." + found->first + ".output";
      const Place here{ctx.errors.file(), path + " (" + location(ctx, mark) + ")"};
      const auto [first, inserted] = first_.emplace(found->second.output_template, here);
      if (!inserted && first->second.file != ctx.errors.file())
        ctx.errors.add(mark, path + ": the same template as " + first->second.where +
                                 ": the two exports would write the same files; add {export}");
    }
  }

 private:
  struct Place {
    std::string file;
    std::string where;
  };
  std::map<std::string, Place> first_;  // template → its first user
};

}  // namespace

DropIn::DropIn(std::filesystem::path file, std::string shown, const LoadOptions& options)
    : path(std::move(file)), errors(std::move(shown)), ctx{errors, options, path.parent_path()} {}

DropIns read_includes(LoadContext& ctx, const Field& include, const std::filesystem::path& main_file,
                      std::span<const std::string_view> top_keys) {
  DropIns drop_ins;
  std::set<std::filesystem::path> seen{main_file.lexically_normal()};
  for (const auto& field : pattern_fields(ctx, include)) {
    for (auto& match : matches_of(ctx, field)) {
      if (!seen.insert(match.path).second) continue;
      std::string reason;
      const auto text = ctx.options.files.read_text(match.path, kMaxConfigBytes, &reason);
      if (!text) {
        ctx.errors.add(field.mark(), field.path + ": cannot read " + match.shown + ": " + reason);
        continue;
      }
      auto& drop_in = *drop_ins.emplace_back(std::make_unique<DropIn>(match.path, match.shown, ctx.options));
      if (const auto root = parse_document(*text, drop_in.errors))
        read_top_level(drop_in, *root, ctx.errors.file(), top_keys);
    }
  }
  return drop_ins;
}

void add_drop_in_accounts(const LoadContext& ctx, const std::optional<Field>& main_field, DropIns& drop_ins,
                          AccountsSection& section) {
  FirstDefinitions first("account");
  if (main_field) first.claim(ctx, *main_field);
  for (auto& drop_in : drop_ins) {
    if (!drop_in->accounts) continue;
    const auto taken = first.claim(drop_in->ctx, *drop_in->accounts);
    auto more = read_accounts(drop_in->ctx, *drop_in->accounts, true);
    for (auto& name : more.names)
      if (!taken.contains(name)) section.names.push_back(name);
    for (auto& [name, account] : more.accounts)
      if (!taken.contains(name)) section.accounts.emplace(name, std::move(account));
  }
}

void add_drop_in_exports(const LoadContext& ctx, const std::optional<Field>& main_field, DropIns& drop_ins,
                         const std::vector<std::string>& account_names, const PollingPolicy& polling,
                         std::map<std::string, ExportDefinition>& exports) {
  FirstDefinitions first("export");
  SharedTemplates templates;
  if (main_field) {
    first.claim(ctx, *main_field);
    templates.check(ctx, *main_field, exports);
  }
  for (auto& drop_in : drop_ins) {
    if (!drop_in->exports) continue;
    const auto taken = first.claim(drop_in->ctx, *drop_in->exports);
    auto more = read_exports(drop_in->ctx, *drop_in->exports, account_names, polling);
    std::erase_if(more, [&](const auto& entry) { return taken.contains(entry.first); });
    templates.check(drop_in->ctx, *drop_in->exports, more);
    exports.merge(more);
  }
}

// Without GLOB_ERR a directory that cannot be read just matches nothing: when nothing matched, the
// pattern's fixed leading directory is checked, so an unreadable conf.d is an error, not an empty one.
std::optional<std::vector<std::filesystem::path>> glob_files(const std::string& pattern, std::string* error) {
  glob_t found{};
  const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &found);
  std::vector<std::filesystem::path> paths;
  if (rc == 0)
    for (std::size_t i = 0; i < found.gl_pathc; ++i) paths.emplace_back(found.gl_pathv[i]);
  ::globfree(&found);
  if (rc == GLOB_NOSPACE) {
    if (error) *error = "out of memory";
    return std::nullopt;
  }
  if (!paths.empty()) return paths;
  const auto wildcard = pattern.find_first_of("*?[");
  const auto slash = pattern.rfind('/', wildcard);
  if (slash == std::string::npos) return paths;
  const std::string dir = slash == 0 ? "/" : pattern.substr(0, slash);
  if (dir.find('\\') == std::string::npos && ::access(dir.c_str(), R_OK | X_OK) != 0 && errno != ENOENT &&
      errno != ENOTDIR) {
    if (error) *error = dir + ": " + std::generic_category().message(errno);
    return std::nullopt;
  }
  return paths;
}

}  // namespace apsis::config::detail
