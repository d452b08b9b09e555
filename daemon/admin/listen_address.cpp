#include "admin/listen_address.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace apsis::admin {
namespace {

namespace ip = boost::asio::ip;
using Endpoint = ip::tcp::endpoint;

constexpr std::string_view kExpected = "expected HOST:PORT, like 127.0.0.1:9464, [::1]:9464 or localhost:9464";

std::optional<Endpoint> fail(std::string* error, const std::string& problem) {
  if (error) *error = problem + " (" + std::string(kExpected) + ")";
  return std::nullopt;
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

bool is_localhost(std::string_view host) {
  return std::ranges::equal(host, std::string_view("localhost"),
                            [](unsigned char a, unsigned char b) { return std::tolower(a) == b; });
}

std::optional<unsigned short> parse_port(std::string_view text) {
  if (text.empty() || !std::ranges::all_of(text, [](unsigned char c) { return std::isdigit(c); })) return {};
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > 65535) return {};
  return static_cast<unsigned short>(value);
}

// An unbracketed host: IPv4 or localhost. Anything else would need DNS, or brackets.
std::optional<ip::address> parse_plain_host(std::string_view host, std::string* error) {
  if (is_localhost(host)) return ip::address(ip::address_v4::loopback());
  boost::system::error_code ec;
  const auto v4 = ip::make_address_v4(std::string(host), ec);
  if (!ec) return ip::address(v4);
  if (ip::make_address_v6(std::string(host), ec); !ec) {
    fail(error, "IPv6 address " + quoted(host) + " must be in brackets");
    return std::nullopt;
  }
  fail(error, "host " + quoted(host) + " is not an IP address: use an IP address or localhost, no DNS names");
  return std::nullopt;
}

}  // namespace

std::optional<Endpoint> parse_listen_address(std::string_view text, std::string* error) {
  if (text.empty()) return fail(error, "empty address");
  std::string_view host;
  std::string_view rest;
  bool bracketed = false;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fail(error, "missing ']' after the IPv6 address");
    host = text.substr(1, close - 1);
    rest = text.substr(close + 1);
    bracketed = true;
  } else {
    const auto colon = text.rfind(':');
    host = text.substr(0, colon == std::string_view::npos ? text.size() : colon);
    rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon);
  }
  if (host.empty()) return fail(error, "missing host in " + quoted(text));
  if (!rest.empty() && rest.front() != ':')
    return fail(error, "unexpected " + quoted(rest) + " after the IPv6 address");
  if (rest.size() <= 1) return fail(error, "missing port in " + quoted(text));
  const auto port = parse_port(rest.substr(1));
  if (!port)
    return fail(error, "port " + quoted(rest.substr(1)) + " is not a number from 0 to 65535 (0: any free port)");

  if (bracketed) {
    boost::system::error_code ec;
    const auto v6 = ip::make_address_v6(std::string(host), ec);
    if (ec) return fail(error, quoted(host) + " in brackets is not an IPv6 address");
    return Endpoint(v6, *port);
  }
  const auto address = parse_plain_host(host, error);
  if (!address) return std::nullopt;
  return Endpoint(*address, *port);
}

bool is_loopback(const Endpoint& endpoint) {
  const auto address = endpoint.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return ip::make_address_v4(ip::v4_mapped, address.to_v6()).is_loopback();
  return address.is_loopback();
}

}  // namespace apsis::admin
