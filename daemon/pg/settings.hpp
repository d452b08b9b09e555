// What `state_db: postgresql://...` says: the libpq connection URI after ${NAME} expansion, and where
// the password comes from. Parsed once at the edge; no I/O here.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace apsis::pg {

// The value of an environment variable, nullopt when it is not set. The same type as
// config::EnvLookup, so the configuration hands its environment over unchanged; injected for tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

struct ConnectionSettings {
  // A URI libpq accepts, without our own `password_file` parameter.
  std::string conninfo;
  // A file whose first line is the password (a container secret), read at each connect so a rotated
  // secret needs no restart. Unlike PGPASSFILE (which libpq keeps honouring) it holds only the
  // password, not host:port:db:user:password lines.
  std::optional<std::filesystem::path> password_file;
};

// Throws std::invalid_argument naming what is wrong: not a postgresql:// or postgres:// URI, an unset
// variable (by name), an unterminated "${", or libpq's own complaint about the URI. Messages never
// quote the URI (it may hold a password). `${NAME}` is replaced by the variable's value as it is
// (not percent-encoded); `$$` is a literal '$'.
ConnectionSettings parse_database_url(std::string_view url, const EnvLookup& env);

// The URI for logs and `status`: any password (user:password@ or password=) replaced by ***.
std::string redacted(const ConnectionSettings& settings);

// The password in `file`: its first line without the line break. Throws std::runtime_error naming
// the file when it cannot be read.
std::string read_password_file(const std::filesystem::path& file);

}  // namespace apsis::pg
