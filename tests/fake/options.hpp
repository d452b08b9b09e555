#pragma once

#include "state.hpp"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace apsis_fake {

struct Options {
    std::string listen = "127.0.0.1";
    std::uint16_t port = 0;
    std::string port_file;
    // One account unless --client names several; tokens, limits and statistics are per account.
    std::vector<Credentials> accounts{{"demo-client", "demo-secret"}};
    Settings settings;
    bool quiet = false;
    bool help = false;
};

// Thrown for bad command lines; main prints it with the usage text.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

Options parse_options(int argc, char** argv);
std::string_view usage();

// "1500ms", "2s", "5m", "1h", "1d"; a bare number means seconds.
std::chrono::milliseconds parse_duration(std::string_view text);

} // namespace apsis_fake
