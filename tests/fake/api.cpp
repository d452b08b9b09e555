#include "api.hpp"

#include "validation.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace apsis_fake {

namespace json = boost::json;
using http::status;

namespace {

constexpr std::string_view gateway_deny = "User is not authorized to access this resource with an explicit deny";
constexpr std::string_view legacy_prefix = "/exports/";
constexpr std::string_view v2_prefix = "/v2/exports/";

// The export kinds and where each is requested (docs/apsis-api.md, "The asynchronous exports").
constexpr std::array<std::pair<std::string_view, std::string_view>, 4> submit_routes{{
    {"/audience/profiles/reports/duplicates", "duplicates"},
    {"/audience/profiles/reports/consents", "consents"},
    {"/audience/profiles/reports/segments", "segments"},
    {"/audience/profiles/exports", "events"},
}};

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

json::object parse_object_or_empty(std::string_view body)
{
    boost::system::error_code ec;
    json::value value = json::parse(body, ec);
    return !ec && value.is_object() ? std::move(value.as_object()) : json::object{};
}

std::string_view string_field(const json::object& obj, std::string_view key)
{
    auto* value = obj.if_contains(key);
    return value && value->is_string() ? std::string_view(value->get_string()) : std::string_view{};
}

std::string make_jwt(std::string_view client_id, std::chrono::milliseconds ttl, std::uint64_t token_id)
{
    auto iat = unix_seconds();
    auto exp = iat + std::chrono::duration_cast<std::chrono::seconds>(ttl).count();
    json::object claims{{"sub", client_id}, {"exp", exp}, {"iat", iat}, {"jti", token_id}};
    return base64url(R"({"alg":"none","typ":"JWT"})") + "." + base64url(json::serialize(claims)) + ".c2ln";
}

std::optional<std::string_view> submit_kind(std::string_view path)
{
    for (const auto& [route, kind] : submit_routes)
        if (path == route)
            return kind;
    return std::nullopt;
}

// Returns the export id if path is a poll URL of that kind.
std::optional<std::string_view> poll_id(std::string_view path, std::string_view prefix)
{
    if (!path.starts_with(prefix) || path.size() == prefix.size())
        return std::nullopt;
    return path.substr(prefix.size());
}

Response wrong_method() { return message_response(status::method_not_allowed, "Method Not Allowed"); }

} // namespace

Reply Api::handle(const Request& req, std::string_view path)
{
    if (path == "/oauth/token") {
        ++state_.counters.token_requests;
        return req.method() == http::verb::post ? issue_token(req) : wrong_method();
    }
    if (auto kind = submit_kind(path)) {
        if (req.method() != http::verb::post)
            return wrong_method();
        ++state_.counters.submit_requests;
        return submit(req, *kind);
    }
    for (auto [prefix, url] : {std::pair{legacy_prefix, PollUrl::legacy}, std::pair{v2_prefix, PollUrl::v2}}) {
        if (auto id = poll_id(path, prefix)) {
            if (req.method() != http::verb::get)
                return wrong_method();
            ++state_.counters.polls;
            return poll(req, *id, url);
        }
    }
    // The real gateway rejects unauthenticated calls before it knows whether a route exists.
    if (!bearer_account(req))
        return auth_failure();
    return message_response(status::not_found, "Not found");
}

Response Api::issue_token(const Request& req)
{
    json::object body = parse_object_or_empty(req.body());
    Account* account =
        state_.account_for_credentials(string_field(body, "client_id"), string_field(body, "client_secret"));
    if (account && !state_.admit(*account, {LimitKind::tokens}))
        return too_many_requests();
    if (state_.faults.take(Fault::token_5xx))
        return server_error();
    if (state_.faults.take(Fault::token_429))
        return too_many_requests();
    if (!account || string_field(body, "grant_type") != "client_credentials")
        return message_response(status::unauthorized, "invalid_client");

    auto ttl = state_.settings.token_ttl;
    std::string token = make_jwt(account->credentials.client_id, ttl, state_.next_token_id());
    state_.add_token(token, account->credentials.client_id, Clock::now() + ttl);
    return json_response(status::ok, json::object{{"access_token", token},
                                                  {"expires_in", ttl.count() / 1000},
                                                  {"token_type", "Bearer"}});
}

// Throttling comes first, as at a gateway: a throttled request reaches nothing behind it.
Reply Api::submit(const Request& req, std::string_view kind)
{
    Account* account = bearer_account(req);
    if (account && !admit_submit(*account, kind))
        return too_many_requests();
    if (auto fault = submit_fault())
        return std::move(*fault);
    if (!account)
        return auth_failure();

    auto checked = check_export_request(kind, req.body());
    if (auto* rejection = std::get_if<Rejection>(&checked))
        return problem_response(rejection->status, rejection->title, rejection->detail);
    // A broken success answer: no export exists behind it.
    if (state_.faults.take(Fault::submit_malformed)) {
        Response res{status::ok, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"file_download_url": )";
        res.prepare_payload();
        return res;
    }
    Export& e = state_.create_export(*account, std::string(kind), std::move(std::get<json::object>(checked)));
    ++state_.counters.submissions;
    // Fault: the export exists, but the answer is lost with the connection (reset).
    if (state_.faults.take(Fault::submit_reset))
        return Reset{};
    return submit_answer(e);
}

// Event exports are export POSTs too, so they count against both limits.
bool Api::admit_submit(Account& account, std::string_view kind)
{
    if (kind == "events")
        return state_.admit(account, {LimitKind::submits, LimitKind::event_submits});
    return state_.admit(account, {LimitKind::submits});
}

std::optional<Response> Api::submit_fault()
{
    auto& faults = state_.faults;
    if (faults.take(Fault::submit_5xx))
        return server_error();
    if (faults.take(Fault::submit_429))
        return too_many_requests();
    if (faults.take(Fault::submit_400))
        return problem_response(status::bad_request, "Bad Request", "Invalid filter expression: unknown segment 'x'");
    if (faults.take(Fault::submit_413))
        return problem_response(status::payload_too_large, "Request Entity Too Large", "Too many topics");
    if (faults.take(Fault::submit_401))
        return message_response(status::unauthorized, "Unauthorized");
    if (faults.take(Fault::submit_403_gateway))
        return message_response(status::forbidden, gateway_deny);
    return std::nullopt;
}

// The documented answer carries file_download_url (and file_download_url_v2 in v2 mode); the
// faults here change its shape while the export itself exists at APSIS.
Response Api::submit_answer(const Export& e)
{
    auto ok = static_cast<status>(state_.settings.submit_status);
    auto& faults = state_.faults;
    json::object queued{{"id", e.id}, {"status", "queued"}};
    if (faults.take(Fault::submit_no_download_url))
        return json_response(ok, queued);
    if (faults.take(Fault::submit_location_only)) {
        Response res = json_response(status::created, queued);
        res.set(http::field::location, std::string(legacy_prefix) + e.id);
        return res;
    }
    bool v2 = state_.settings.v2 && !faults.take(Fault::submit_v1_only);
    const std::string& base = faults.take(Fault::submit_foreign_download_url) ? urls_.foreign_base : urls_.base;
    json::object body{{"file_download_url", base + std::string(legacy_prefix) + e.id}};
    if (v2)
        body["file_download_url_v2"] = base + std::string(v2_prefix) + e.id;
    return json_response(ok, body);
}

Reply Api::poll(const Request& req, std::string_view id, PollUrl url)
{
    Account* account = bearer_account(req);
    if (account && !state_.admit(*account, {LimitKind::polls}))
        return too_many_requests();
    Export* e = account ? state_.find_export(*account, id) : nullptr;
    if (e)
        ++e->polls;
    if (auto fault = poll_fault())
        return std::move(*fault);
    if (!account)
        return auth_failure();
    if (!e)
        return message_response(status::not_found, "Not found");
    return poll_answer(req, *e, url);
}

// The poll table of docs/apsis-api.md: the two URLs differ only while the export is in progress.
Reply Api::poll_answer(const Request& req, Export& e, PollUrl url)
{
    switch (export_state(e, state_.settings, Clock::now())) {
    case ExportState::in_progress:
        if (url == PollUrl::v2)
            return message_response(status::accepted, "Accepted");
        return message_response(status::not_found, "Not found");
    case ExportState::failed:
        return message_response(status::service_unavailable, "Service Unavailable");
    case ExportState::gone:
        return message_response(status::gone, "Gone");
    case ExportState::ready:
        break;
    }
    // Fault: a 200 that is an error, not the file (seen from gateways): it must never be saved as the file.
    if (state_.faults.take(Fault::download_error_json))
        return json_response(status::ok, boost::json::object{{"error", "export file unavailable"}});
    return plan_download(req, e);
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
    // Looks exactly like a failed export's answer; only its not repeating tells them apart.
    if (faults.take(Fault::poll_503))
        return message_response(status::service_unavailable, "Service Unavailable");
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
    if (e.kind == "events")
        d.format = Format::json;
    else
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
    d.unframed = faults.take(Fault::download_unframed);
    d.empty = faults.take(Fault::download_empty);
    d.multi_member = d.gzip && faults.take(Fault::download_multi_member_gzip);
    return d;
}

Account* Api::bearer_account(const Request& req)
{
    std::string_view value = header(req, http::field::authorization);
    constexpr std::string_view scheme = "Bearer ";
    if (value.size() <= scheme.size() || !contains_nocase(value.substr(0, scheme.size()), scheme))
        return nullptr;
    value.remove_prefix(scheme.size());
    while (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
    return state_.account_for_token(value);
}

Response Api::auth_failure() const
{
    if (state_.settings.auth_failure_status == 401)
        return message_response(status::unauthorized, "Unauthorized");
    return message_response(status::forbidden, gateway_deny);
}

// Throttling and the 429 faults answer alike: the gateway's body, and no Retry-After (none is
// documented) unless a test sets retry_after.
Response Api::too_many_requests() const
{
    Response res = message_response(status::too_many_requests, "Too Many Requests");
    if (state_.settings.retry_after > 0)
        res.set(http::field::retry_after, std::to_string(state_.settings.retry_after));
    return res;
}

} // namespace apsis_fake
