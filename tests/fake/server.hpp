#pragma once

// Accepts connections and runs one coroutine per connection: read a request, route
// it to the API or control handlers, write the reply, repeat while kept alive.

#include "api.hpp"
#include "state.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <string>

namespace apsis_fake {

struct ServerConfig {
    std::string listen;
    std::uint16_t port = 0;
    bool quiet = false;
};

class Server {
public:
    Server(boost::asio::io_context& io, const ServerConfig& config, State& state);

    std::uint16_t port() const { return port_; }
    const std::string& base_url() const { return urls_.base; }

    void start();

private:
    boost::asio::awaitable<void> accept_loop();

    boost::asio::ip::tcp::acceptor acceptor_;
    std::uint16_t port_;
    PublicUrls urls_;
    State& state_;
    Api api_;
    bool quiet_;
};

} // namespace apsis_fake
