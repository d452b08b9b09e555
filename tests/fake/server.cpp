#include "server.hpp"

#include "control.hpp"
#include "download.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <iostream>
#include <optional>

namespace apsis_fake {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

constexpr std::uint64_t max_request_body = 1024 * 1024;
// Back off briefly when accept fails, typically on fd exhaustion, instead of spinning.
constexpr std::chrono::milliseconds accept_retry_delay{50};

struct Services {
    State& state;
    Api& api;
    bool quiet;
};

std::string header_value(const Request& req, http::field field)
{
    auto it = req.find(field);
    return it == req.end() ? std::string() : std::string(it->value());
}

// Errors from Beast's HTTP category mean a malformed request, which deserves a 400;
// the rest come from the socket (or a clean end of stream) and warrant silence.
bool is_disconnect(const boost::system::error_code& ec)
{
    return ec == http::error::end_of_stream || ec == http::error::partial_message ||
           ec.category() != http::make_error_code(http::error::end_of_stream).category();
}

class Connection {
public:
    Connection(tcp::socket socket, Services services) : socket_(std::move(socket)), services_(services) {}

    awaitable<void> run()
    {
        try {
            while (auto req = co_await read_request())
                if (!co_await respond(*req))
                    break;
        } catch (const boost::system::system_error&) {
            // The client went away mid-response; nothing to tell anyone.
        } catch (const std::exception& e) {
            if (!services_.quiet)
                std::cerr << std::string("apsis-fake: connection error: ") + e.what() + "\n";
        }
        close();
    }

private:
    awaitable<std::optional<Request>> read_request()
    {
        http::request_parser<http::string_body> parser;
        parser.body_limit(max_request_body);
        auto [ec, n] = co_await http::async_read_header(socket_, buffer_, parser, asio::as_tuple(use_awaitable));
        if (!ec && !parser.is_done()) {
            if (parser.get()[http::field::expect] == "100-continue")
                co_await asio::async_write(socket_, asio::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")),
                                           use_awaitable);
            std::tie(ec, n) = co_await http::async_read(socket_, buffer_, parser, asio::as_tuple(use_awaitable));
        }
        if (ec == http::error::body_limit)
            co_await send_final(problem_response(http::status::payload_too_large, "Request Entity Too Large",
                                                 "The request body is limited to 100 kB"));
        else if (ec && !is_disconnect(ec))
            co_await send_final(message_response(http::status::bad_request, "Bad Request"));
        if (ec)
            co_return std::nullopt;
        co_return parser.release();
    }

    // Returns whether the connection stays open for another request.
    awaitable<bool> respond(const Request& req)
    {
        std::string_view target = req.target();
        std::string_view path = target.substr(0, target.find('?'));
        bool control = path.starts_with(control_prefix);
        Reply reply = control ? Reply(handle_control(req, path, services_.state)) : services_.api.handle(req, path);

        if (std::holds_alternative<Reset>(reply)) {
            note(req, 0, control);
            reset();
            co_return false;
        }
        // Fault: an interim answer first (RFC 9110 15.2: a client must accept it, then read the real one).
        if (!control && services_.state.faults.take(Fault::interim_100))
            co_await asio::async_write(socket_, asio::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")),
                                       use_awaitable);
        if (auto* res = std::get_if<Response>(&reply)) {
            note(req, res->result_int(), control);
            co_return co_await send(std::move(*res), req);
        }
        note(req, 200, control);
        auto result = co_await stream_download(socket_, std::get<Download>(reply), req.version(), req.keep_alive());
        if (result == DownloadResult::aborted)
            co_return false;
        ++services_.state.counters.downloads_completed;
        co_return result == DownloadResult::completed && req.keep_alive();
    }

    awaitable<bool> send(Response res, const Request& req)
    {
        res.version(req.version());
        res.keep_alive(req.keep_alive());
        res.set(http::field::server, "apsis-fake");
        co_await http::async_write(socket_, res, use_awaitable);
        co_return req.keep_alive();
    }

    // For requests that could not be parsed; errors are moot as we close anyway.
    awaitable<void> send_final(Response res)
    {
        res.keep_alive(false);
        res.set(http::field::server, "apsis-fake");
        co_await http::async_write(socket_, res, asio::as_tuple(use_awaitable));
    }

    // Control traffic is left out of the request log so tests see only client calls.
    void note(const Request& req, unsigned status, bool control)
    {
        if (!services_.quiet)
            std::cerr << std::string(req.method_string()) + " " + std::string(req.target()) + " " +
                             std::to_string(status) + "\n";
        if (control)
            return;
        services_.state.record(RequestRecord{std::string(req.method_string()), std::string(req.target()), status,
                                             header_value(req, http::field::authorization),
                                             header_value(req, http::field::accept),
                                             header_value(req, http::field::accept_encoding)});
    }

    // SO_LINGER 0 makes close() send RST instead of FIN: the client sees "connection reset".
    void reset()
    {
        boost::system::error_code ignored;
        socket_.set_option(asio::socket_base::linger(true, 0), ignored);
        socket_.close(ignored);
    }

    void close()
    {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        socket_.close(ignored);
    }

    tcp::socket socket_;
    beast::flat_buffer buffer_;
    Services services_;
};

awaitable<void> serve(tcp::socket socket, Services services)
{
    Connection connection(std::move(socket), services);
    co_await connection.run();
}

std::string url_host(const asio::ip::address& address)
{
    if (address.is_unspecified())
        return "127.0.0.1";
    return address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
}

tcp::acceptor open_acceptor(asio::io_context& io, const tcp::endpoint& endpoint)
{
    tcp::acceptor acceptor(io);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
    return acceptor;
}

} // namespace

Server::Server(asio::io_context& io, const ServerConfig& config, State& state)
    : acceptor_(open_acceptor(io, tcp::endpoint(asio::ip::make_address(config.listen), config.port))),
      port_(acceptor_.local_endpoint().port()),
      urls_{"http://" + url_host(acceptor_.local_endpoint().address()) + ":" + std::to_string(port_),
            "http://localhost:" + std::to_string(port_)},
      state_(state), api_(state, urls_), quiet_(config.quiet)
{
}

void Server::start() { asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached); }

awaitable<void> Server::accept_loop()
{
    Services services{state_, api_, quiet_};
    asio::steady_timer backoff(acceptor_.get_executor());
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(use_awaitable));
        if (ec == asio::error::operation_aborted)
            co_return;
        if (ec) {
            if (!quiet_)
                std::cerr << "apsis-fake: accept failed: " + ec.message() + "\n";
            backoff.expires_after(accept_retry_delay);
            co_await backoff.async_wait(asio::as_tuple(use_awaitable));
            continue;
        }
        // Small JSON replies must not sit behind Nagle + delayed ACK.
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket), services), asio::detached);
    }
}

} // namespace apsis_fake
