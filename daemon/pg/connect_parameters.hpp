// The keyword/value pairs handed to PQconnectStartParams: the URI's own, plus the addresses Asio
// resolved (hostaddr) and the password from password_file.
#pragma once

#include "pg/settings.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace apsis::pg {

class ConnectParameters {
 public:
  // The URI's parameters as libpq parses them (throws Error on a URI libpq rejects).
  static ConnectParameters from_conninfo(const std::string& conninfo);

  std::optional<std::string> get(std::string_view keyword) const;
  void set(const std::string& keyword, std::string value);

  // Null-terminated arrays for libpq, valid until the next set().
  const char* const* keywords();
  const char* const* values();

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
  std::vector<const char*> keywords_;
  std::vector<const char*> values_;
};

// One entry of libpq's host list and what it resolved to: no addresses for a Unix-socket directory
// (a path) or an abstract socket ("@name"), which libpq handles without a lookup.
struct ResolvedHost {
  std::string host;
  std::vector<std::string> addresses;
};

// host, hostaddr and port lists with one entry per address, so libpq tries every address of a name
// in turn (as it would after its own lookup) while `host` keeps the name for TLS verification and
// the password file. Pure; `ports` is the URI's port list (empty, one port, or one per host).
struct HostLists {
  std::string host;
  std::string hostaddr;
  std::string port;
};
HostLists expand_hosts(const std::vector<ResolvedHost>& hosts, std::string_view ports);

// Splits libpq's comma-separated lists.
std::vector<std::string> split_list(std::string_view list);

// Everything connect() hands to libpq: resolution on Asio's resolver, the password file read.
// Host names that come from PGHOST rather than the URI are not seen here, so libpq looks them up
// itself (blocking): put remote hosts in the URI.
boost::asio::awaitable<ConnectParameters> prepare_connect(const ConnectionSettings& settings);

}  // namespace apsis::pg
