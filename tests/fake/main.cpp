// apsis-fake: a fake APSIS One API server for integration tests, demos and benchmarks.

#include "options.hpp"
#include "server.hpp"
#include "state.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace {

using namespace apsis_fake;

// Benchmarks hold thousands of connections open at once.
void raise_fd_limit()
{
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

// Written via rename so a watcher never reads a half-written port number.
void write_port_file(const std::string& path, std::uint16_t port)
{
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << port << '\n';
        out.close();
        if (!out)
            throw std::runtime_error("cannot write " + tmp);
    }
    std::filesystem::rename(tmp, path);
}

int run(const Options& options)
{
    raise_fd_limit();
    State state(options.settings, options.accounts);
    boost::asio::io_context io(1);
    Server server(io, ServerConfig{options.listen, options.port, options.quiet}, state);
    server.start();

    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](const boost::system::error_code&, int) { io.stop(); });

    std::cout << "apsis-fake listening on " << server.base_url() << std::endl;
    if (!options.port_file.empty())
        write_port_file(options.port_file, server.port());
    io.run();
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    std::signal(SIGPIPE, SIG_IGN);
    try {
        Options options = parse_options(argc, argv);
        if (options.help) {
            std::cout << usage();
            return 0;
        }
        return run(options);
    } catch (const UsageError& e) {
        std::cerr << "apsis-fake: " << e.what() << "\n" << usage();
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "apsis-fake: " << e.what() << "\n";
        return 1;
    }
}
