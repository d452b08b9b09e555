// An absolute http(s) URL split into the parts the client needs. Pure, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace apsis::http {

struct Url {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // lower case; IPv6 without brackets
  std::string port;    // always set: explicit or the scheme's default
  std::string target;  // path and query, at least "/"

  bool is_tls() const { return scheme == "https"; }
  // scheme://host:port — two URLs with the same origin may share a bearer token and a connection.
  std::string origin() const;
  friend bool operator==(const Url&, const Url&) = default;
};

// Parses "scheme://host[:port][/path][?query]"; nullopt with a reason in *error otherwise.
std::optional<Url> parse_url(std::string_view text, std::string* error = nullptr);

// A reference from a response (absolute URL, or absolute path) resolved against `base`.
std::optional<Url> resolve_reference(const Url& base, std::string_view reference, std::string* error = nullptr);

// The text with any userinfo ("user:password@") replaced by "***@", for messages and logs: a URL
// is never echoed with its credential. Text that is not a URL comes back as it is.
std::string redact_userinfo(std::string_view text);

// localhost, 127.0.0.0/8 and ::1: the only hosts plain http is allowed to reach.
bool is_loopback_host(std::string_view host);

}  // namespace apsis::http
