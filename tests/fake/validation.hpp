#pragma once

// The checks APSIS documents for export requests (docs/apsis-api.md), as a pure function so the
// API handler stays about HTTP. Anything undocumented is accepted.

#include "reply.hpp"

#include <boost/json.hpp>

#include <string>
#include <string_view>
#include <variant>

namespace apsis_fake {

inline constexpr std::size_t max_export_request_bytes = 100'000;

struct Rejection {
    http::status status;
    std::string title;
    std::string detail;
};

// The parsed body of an acceptable request, or why APSIS would refuse it.
std::variant<boost::json::object, Rejection> check_export_request(std::string_view kind, std::string_view body);

} // namespace apsis_fake
