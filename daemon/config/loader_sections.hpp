// Internal to the config loader: one reader per section of the file (config_loader.cpp,
// config_accounts.cpp, config_exports.cpp). Each reports its problems and returns its best effort.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/loader_support.hpp"

namespace apsis::config::detail {

struct AccountsSection {
  std::map<std::string, Account> accounts;
  std::vector<std::string> names;  // every name written, even of an account with errors
};

// accounts: at least one unless `may_be_empty` (drop-ins may hold the rest); reads secrets from their
// files and checks ca_file.
AccountsSection read_accounts(LoadContext& ctx, const Field& field, bool may_be_empty = false);

// polling: keys read over `base` (the defaults, or the top-level polling for an export's override).
PollingPolicy read_polling(LoadContext& ctx, const Field& field, const PollingPolicy& base);

RetryPolicy read_retry(LoadContext& ctx, const Field& field);

// exports: each must use one of `account_names`; `polling` is what their own polling: overrides.
std::map<std::string, ExportDefinition> read_exports(LoadContext& ctx, const Field& field,
                                                     const std::vector<std::string>& account_names,
                                                     const PollingPolicy& polling);

// The document in `text`, or nullopt with the reason reported; a null node for an empty document.
std::optional<YAML::Node> parse_document(const std::string& text, ErrorSink& errors);

inline constexpr std::size_t kMaxConfigBytes = 16 * 1024 * 1024;

// A file read through the main file's include: (config_include.cpp), with its own errors, which
// carry its own path; relative paths in it resolve against its directory.
struct DropIn {
  // `shown` names the file in errors: beside the main file's name as the user gave it, when it can.
  DropIn(std::filesystem::path file, std::string shown, const LoadOptions& options);
  DropIn(const DropIn&) = delete;  // ctx refers to errors
  DropIn& operator=(const DropIn&) = delete;

  std::filesystem::path path;
  ErrorSink errors;
  LoadContext ctx;
  std::optional<Field> accounts;
  std::optional<Field> exports;
};
using DropIns = std::vector<std::unique_ptr<DropIn>>;

// The drop-ins the main file's `include` field names, read, parsed and checked at their top level,
// where only accounts: and exports: are allowed. `main_file` is never its own drop-in; `top_keys` are the
// main file's keys, refused in a drop-in by name.
DropIns read_includes(LoadContext& ctx, const Field& include, const std::filesystem::path& main_file,
                      std::span<const std::string_view> top_keys);

// The drop-ins' accounts added to `section`, which holds those of the main file's `main_field`. A name
// defined in two files is an error at the second, naming the first.
void add_drop_in_accounts(const LoadContext& ctx, const std::optional<Field>& main_field, DropIns& drop_ins,
                          AccountsSection& section);

// The drop-ins' exports added to `exports`, as add_drop_in_accounts does for accounts.
void add_drop_in_exports(const LoadContext& ctx, const std::optional<Field>& main_field, DropIns& drop_ins,
                         const std::vector<std::string>& account_names, const PollingPolicy& polling,
                         std::map<std::string, ExportDefinition>& exports);

// The system's glob(3), for FileAccess::glob.
std::optional<std::vector<std::filesystem::path>> glob_files(const std::string& pattern, std::string* error);

}  // namespace apsis::config::detail
