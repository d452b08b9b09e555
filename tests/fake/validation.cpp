#include "validation.hpp"

#include <optional>

namespace apsis_fake {

namespace json = boost::json;

namespace {

Rejection bad_request(std::string detail) { return {http::status::bad_request, "Bad Request", std::move(detail)}; }

bool non_empty_array(const json::object& body, std::string_view key)
{
    const auto* value = body.if_contains(key);
    return value && value->is_array() && !value->get_array().empty();
}

bool present(const json::object& body, std::string_view key)
{
    const auto* value = body.if_contains(key);
    return value && !value->is_null();
}

bool asks_for(const json::object& body, std::string_view key)
{
    return present(body, key) && !(body.at(key).is_array() && body.at(key).get_array().empty());
}

// A segment export names an existing segment or defines one, never both.
std::optional<Rejection> check_segments(const json::object& body)
{
    bool by_name = present(body, "segment_discriminator");
    bool by_definition = present(body, "segment_definition");
    if (by_name == by_definition)
        return bad_request("Exactly one of segment_discriminator and segment_definition is required");
    return std::nullopt;
}

// Without an attribute or a tag no profile would appear; events need a start.
std::optional<Rejection> check_events(const json::object& body)
{
    if (!non_empty_array(body, "attributes") && !non_empty_array(body, "tags"))
        return bad_request("At least one of attributes and tags must be a non-empty array");
    if (asks_for(body, "events") && !present(body, "start_at"))
        return bad_request("start_at is required when events are requested");
    return std::nullopt;
}

std::optional<Rejection> check_kind(std::string_view kind, const json::object& body)
{
    if (kind == "segments")
        return check_segments(body);
    if (kind == "events")
        return check_events(body);
    return std::nullopt;
}

} // namespace

std::variant<json::object, Rejection> check_export_request(std::string_view kind, std::string_view body)
{
    if (body.size() > max_export_request_bytes)
        return Rejection{http::status::payload_too_large, "Request Entity Too Large",
                         "The request body is limited to 100 kB, got " + std::to_string(body.size()) + " bytes"};
    boost::system::error_code ec;
    json::value value = json::parse(body, ec);
    if (ec)
        return bad_request("Request body is not valid JSON: " + ec.message());
    if (!value.is_object())
        return bad_request("Request body must be a JSON object");
    if (auto rejection = check_kind(kind, value.as_object()))
        return std::move(*rejection);
    return std::move(value.as_object());
}

} // namespace apsis_fake
