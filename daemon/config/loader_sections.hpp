// Internal to the config loader: one reader per section of the file (config_loader.cpp,
// config_accounts.cpp, config_exports.cpp). Each reports its problems and returns its best effort.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/loader_support.hpp"

namespace apsis::config::detail {

struct AccountsSection {
  std::map<std::string, Account> accounts;
  std::vector<std::string> names;  // every name written, even of an account with errors
};

// accounts: at least one; reads secrets from their files and checks ca_file.
AccountsSection read_accounts(LoadContext& ctx, const Field& field);

// polling: keys read over `base` (the defaults, or the top-level polling for an export's override).
PollingPolicy read_polling(LoadContext& ctx, const Field& field, const PollingPolicy& base);

RetryPolicy read_retry(LoadContext& ctx, const Field& field);

// admin_web: loads cert_file and key_file with OpenSSL and checks each hash is bcrypt.
AdminWeb read_admin_web(LoadContext& ctx, const Field& field);

// exports: each must use one of `account_names`; `polling` is what their own polling: overrides.
std::map<std::string, ExportDefinition> read_exports(LoadContext& ctx, const Field& field,
                                                     const std::vector<std::string>& account_names,
                                                     const PollingPolicy& polling);

}  // namespace apsis::config::detail
