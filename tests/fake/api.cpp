#include "api.hpp"

#include <algorithm>
#include <cctype>

namespace apsis_fake {

namespace json = boost::json;
using http::status;

namespace {

constexpr std::string_view gateway_deny = "User is not authorized to access this resource with an explicit deny";
constexpr std::string_view exports_prefix = "/exports/";

std::string base64url(std::string_view in)
{
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(alphabet[(acc >> bits) & 0x3f]);
        }
    }
    if (bits > 0)
        out.push_back(alphabet[(acc << (6 - bits)) & 0x3f]);
    return out;
}

bool contains_nocase(std::string_view haystack, std::string_view needle)
{
    auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    });
    return it != haystack.end();
}

std::string_view header(const Request& req, http::field field)
{
    auto it = req.find(field);
    return it == req.end() ? std::string_view{} : std::string_view(it->value());
}

std::int64_t unix_seconds()
{
    using namespace std::chrono;
    return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

std::optional<json::object> parse_object(std::string_view body, std::string& problem)
{
    boost::system::error_code ec;
    json::value value = json::parse(body, ec);
    if (ec) {
        problem = "Request body is not valid JSON: " + ec.message();
        return std::nullopt;
    }
    if (!value.is_object()) {
        problem = "Request body must be a JSON object";
        return std::nullopt;
    }
    return std::move(value.as_object());
}

std::string_view string_field(const json::object& obj, std::string_view key)
{
    auto* value = obj.if_contains(key);
    return value && value->is_string() ? std::string_view(value->get_string()) : std::string_view{};
}

} // namespace

Reply Api::handle(const Request& req, std::string_view path)
{
    if (path == "/oauth/token") {
        ++state_.counters.token_requests;
        if (req.method() != http::verb::post)
            return message_response(status::method_not_allowed, "Method Not Allowed");
        return issue_token(req);
    }
    if (path == "/audience/profiles/reports/duplicates" || path == "/audience/profiles/reports/consents") {
        if (req.method() != http::verb::post)
            return message_response(status::method_not_allowed, "Method Not Allowed");
        ++state_.counters.submit_requests;
        return submit(req, path.substr(path.rfind('/') + 1));
    }
    if (path.starts_with(exports_prefix) && path.size() > exports_prefix.size()) {
        if (req.method() != http::verb::get)
            return message_response(status::method_not_allowed, "Method Not Allowed");
        ++state_.counters.polls;
        return poll(req, path.substr(exports_prefix.size()));
    }
    // The real gateway rejects unauthenticated calls before it knows whether a route exists.
    if (!authorized(req))
        return auth_failure();
    return message_response(status::not_found, "Not found");
}

Response Api::issue_token(const Request& req)
{
    if (state_.faults.take(Fault::token_5xx))
        return server_error();
    if (state_.faults.take(Fault::token_429))
        return too_many_requests();

    std::string problem;
    auto body = parse_object(req.body(), problem);
    if (!body || string_field(*body, "grant_type") != "client_credentials" ||
        !state_.credentials_match(string_field(*body, "client_id"), string_field(*body, "client_secret")))
        return message_response(status::unauthorized, "invalid_client");

    auto ttl = state_.settings.token_ttl;
    auto iat = unix_seconds();
    auto exp = iat + std::chrono::duration_cast<std::chrono::seconds>(ttl).count();
    std::string token = base64url(R"({"alg":"none","typ":"JWT"})") + "." +
                        base64url(json::serialize(json::object{
                            {"exp", exp}, {"iat", iat}, {"jti", state_.next_token_id()}})) +
                        ".c2ln";
    state_.add_token(token, Clock::now() + ttl);
    return json_response(status::ok, json::object{{"access_token", token},
                                                  {"expires_in", ttl.count() / 1000},
                                                  {"token_type", "Bearer"}});
}

Response Api::submit(const Request& req, std::string_view kind)
{
    if (auto fault = submit_fault())
        return std::move(*fault);
    if (!authorized(req))
        return auth_failure();

    std::string problem;
    auto body = parse_object(req.body(), problem);
    if (!body)
        return message_response(status::bad_request, problem);
    // These imitate a broken success response, so no export exists behind them.
    if (state_.faults.take(Fault::submit_malformed)) {
        Response res{status::ok, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"poll_url": )";
        res.prepare_payload();
        return res;
    }
    if (state_.faults.take(Fault::submit_no_poll_url))
        return json_response(status::ok, json::object{{"id", "abc"}});

    Export& e = state_.create_export(std::string(kind), std::move(*body));
    ++state_.counters.submissions;
    if (auto shaped = submit_shape_fault(e))
        return std::move(*shaped);
    return json_response(status::ok, json::object{{"poll_url", urls_.base + "/exports/" + e.id}});
}

std::optional<Response> Api::submit_fault()
{
    auto& faults = state_.faults;
    if (faults.take(Fault::submit_5xx))
        return server_error();
    if (faults.take(Fault::submit_429))
        return too_many_requests();
    if (faults.take(Fault::submit_400))
        return message_response(status::bad_request, "Invalid filter expression: unknown segment 'x'");
    if (faults.take(Fault::submit_413))
        return message_response(status::payload_too_large, "Payload Too Large");
    if (faults.take(Fault::submit_401))
        return message_response(status::unauthorized, "Unauthorized");
    if (faults.take(Fault::submit_403_gateway))
        return message_response(status::forbidden, gateway_deny);
    return std::nullopt;
}

std::optional<Response> Api::submit_shape_fault(const Export& e)
{
    if (state_.faults.take(Fault::submit_location)) {
        Response res{status::created, 11};
        res.set(http::field::location, std::string(exports_prefix) + e.id);
        res.prepare_payload();
        return res;
    }
    if (state_.faults.take(Fault::submit_foreign_poll_url))
        return json_response(status::ok, json::object{{"poll_url", urls_.foreign_base + "/exports/" + e.id}});
    return std::nullopt;
}

Reply Api::poll(const Request& req, std::string_view id)
{
    Export* e = state_.find_export(id);
    if (e)
        ++e->polls;
    if (auto fault = poll_fault())
        return std::move(*fault);
    if (!authorized(req))
        return auth_failure();
    if (!e)
        return message_response(status::not_found, "Not found");

    auto age = Clock::now() - e->created;
    if (age >= state_.settings.validity)
        return message_response(status::gone, "Gone");
    if (age < state_.settings.ready_after)
        return message_response(status::not_found, "Not found");
    return plan_download(req, *e);
}

Response Api::server_error()
{
    switch (server_errors_++ % 3) {
    case 0:
        return message_response(status::service_unavailable, "Service Unavailable");
    case 1:
        return message_response(status::internal_server_error, "Internal Server Error");
    default:
        return message_response(status::bad_gateway, "Bad Gateway");
    }
}

std::optional<Reply> Api::poll_fault()
{
    auto& faults = state_.faults;
    if (faults.take(Fault::poll_reset))
        return Reset{};
    if (faults.take(Fault::poll_5xx))
        return server_error();
    if (faults.take(Fault::poll_429))
        return too_many_requests();
    if (faults.take(Fault::poll_401))
        return message_response(status::unauthorized, "Unauthorized");
    if (faults.take(Fault::poll_403_gateway))
        return message_response(status::forbidden, gateway_deny);
    if (faults.take(Fault::poll_410))
        return message_response(status::gone, "Gone");
    return std::nullopt;
}

Download Api::plan_download(const Request& req, Export& e)
{
    ++state_.counters.downloads_started;
    ++e.downloads;
    Download d;
    d.export_id = e.id;
    d.size = e.size;
    d.format = contains_nocase(header(req, http::field::accept), "spreadsheetml") ? Format::xlsx : Format::csv;
    d.gzip = contains_nocase(header(req, http::field::accept_encoding), "gzip");
    d.chunked = d.gzip || state_.settings.chunked;

    auto& faults = state_.faults;
    if (faults.take(Fault::download_cut))
        d.ending = DownloadEnding::cut;
    else if (faults.take(Fault::download_short_length))
        d.ending = DownloadEnding::short_length;
    else if (faults.take(Fault::download_cut_chunked)) {
        d.ending = DownloadEnding::cut;
        d.chunked = true;
    } else if (d.gzip && faults.take(Fault::download_corrupt_gzip))
        d.ending = DownloadEnding::corrupt_gzip;
    d.slow = faults.take(Fault::download_slow);
    return d;
}

bool Api::authorized(const Request& req) const
{
    std::string_view value = header(req, http::field::authorization);
    constexpr std::string_view scheme = "Bearer ";
    if (value.size() <= scheme.size() || !contains_nocase(value.substr(0, scheme.size()), scheme))
        return false;
    value.remove_prefix(scheme.size());
    while (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
    return state_.token_valid(value);
}

Response Api::auth_failure() const
{
    if (state_.settings.auth_failure_status == 401)
        return message_response(status::unauthorized, "Unauthorized");
    return message_response(status::forbidden, gateway_deny);
}

Response Api::too_many_requests() const
{
    Response res = message_response(status::too_many_requests, "Too Many Requests");
    if (state_.settings.retry_after > 0)
        res.set(http::field::retry_after, std::to_string(state_.settings.retry_after));
    return res;
}

} // namespace apsis_fake
