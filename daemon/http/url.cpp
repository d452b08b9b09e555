#include "http/url.hpp"

#include <algorithm>
#include <cctype>

namespace apsis::http {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::ranges::transform(out, out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return false;
}

bool valid_port(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  if (!std::ranges::all_of(port, [](unsigned char c) { return std::isdigit(c); })) return false;
  const int value = std::stoi(std::string(port));
  return value > 0 && value <= 65535;
}

bool split_authority(std::string_view authority, Url& url, std::string* error) {
  if (authority.find('@') != std::string_view::npos)
    return fail(error, "credentials in the URL are not allowed");
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail(error, "unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail(error, "unexpected text after IPv6 address");
      port = rest.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return fail(error, "missing host");
  url.host = lower(host);
  if (!port.empty() || authority.ends_with(':')) {
    // Not echoed: in "https://user:pa/ss@host" the authority is "user:pa", and the "port" a password.
    if (!valid_port(port)) return fail(error, "invalid port (expected a number from 1 to 65535)");
    url.port = std::string(port);
  } else {
    url.port = url.is_tls() ? "443" : "80";
  }
  return true;
}

}  // namespace

std::string Url::origin() const {
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + port;
}

std::optional<Url> parse_url(std::string_view text, std::string* error) {
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return fail(error, "not an absolute URL (expected scheme://host)"), std::nullopt;
  Url url;
  url.scheme = lower(text.substr(0, sep));
  if (url.scheme != "http" && url.scheme != "https")
    return fail(error, "unsupported scheme '" + url.scheme + "' (use https)"), std::nullopt;
  auto rest = text.substr(sep + 3);
  const auto path_start = rest.find_first_of("/?#");
  const auto authority = rest.substr(0, path_start);
  if (!split_authority(authority, url, error)) return std::nullopt;
  std::string_view target = path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
  if (const auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  url.target = target.empty() ? "/" : std::string(target);
  if (url.target.front() == '?') url.target.insert(0, "/");
  if (std::ranges::any_of(url.target, [](unsigned char c) { return c <= 0x20 || c == 0x7f; }))
    return fail(error, "URL contains spaces or control characters"), std::nullopt;
  return url;
}

std::string redact_userinfo(std::string_view text) {
  const auto sep = text.find("://");
  const auto start = sep == std::string_view::npos ? 0 : sep + 3;
  // The last '@' before the query or fragment: a password may hold '/', but then so could a path,
  // and hiding a path's "user@host" part costs less than showing a password.
  const auto end = std::min(text.find_first_of("?#", start), text.size());
  const auto at = text.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(text);
  return std::string(text.substr(0, start)) + "***" + std::string(text.substr(at));
}

std::optional<Url> resolve_reference(const Url& base, std::string_view reference, std::string* error) {
  if (reference.find("://") != std::string_view::npos) return parse_url(reference, error);
  if (reference.starts_with("//")) return parse_url(base.scheme + ":" + std::string(reference), error);
  if (!reference.starts_with('/'))
    return fail(error, "relative reference '" + redact_userinfo(reference) + "' is not an absolute path"), std::nullopt;
  Url url = base;
  url.target = std::string(reference);
  return url;
}

bool is_loopback_host(std::string_view host) {
  const auto h = lower(host);
  if (h == "localhost" || h == "::1") return true;
  // 127.0.0.0/8 as a dotted quad only: "127.example.com" is a name anyone can register.
  int parts = 0;
  std::size_t start = 0;
  while (start <= h.size()) {
    const auto end = std::min(h.find('.', start), h.size());
    const auto part = std::string_view(h).substr(start, end - start);
    if (part.empty() || part.size() > 3 || !std::ranges::all_of(part, [](unsigned char c) { return std::isdigit(c); }) ||
        std::stoi(std::string(part)) > 255)
      return false;
    ++parts;
    start = end + 1;
  }
  return parts == 4 && h.starts_with("127.");
}

}  // namespace apsis::http
