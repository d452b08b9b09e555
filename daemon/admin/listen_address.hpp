// The admin endpoint's listen address from the configuration: parsed once at the edge, with an error
// an operator can act on. Pure, no I/O, and no DNS: an address must not change with a resolver.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace apsis::admin {

// "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464", "[::]:9464" or "localhost:9464" (127.0.0.1).
// Other host names are refused rather than resolved. Port 0-65535; 0 picks any free port (tests
// read the real one from the daemon's log). nullopt with the reason and
// the expected form in *error otherwise.
std::optional<boost::asio::ip::tcp::endpoint> parse_listen_address(std::string_view text,
                                                                   std::string* error = nullptr);

// 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: addresses only local processes can reach.
bool is_loopback(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace apsis::admin
