#pragma once

// The /_fake/* endpoints tests use to arm faults, change settings and read statistics.

#include "reply.hpp"
#include "state.hpp"

#include <string_view>

namespace apsis_fake {

inline constexpr std::string_view control_prefix = "/_fake/";

Response handle_control(const Request& req, std::string_view path, State& state);

} // namespace apsis_fake
