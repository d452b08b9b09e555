#include "control.hpp"

#include <functional>
#include <stdexcept>
#include <optional>
#include <vector>

namespace apsis_fake {

namespace json = boost::json;
using http::status;

namespace {

using Update = std::function<void(State&)>;

// Validates every field before applying any, so a rejected request changes nothing.
class FaultRequest {
public:
    explicit FaultRequest(const json::object& fields)
    {
        for (const auto& [key, value] : fields)
            parse_field(key, value);
    }

    const std::string& problems() const { return problems_; }
    const std::string& unknown() const { return unknown_; }

    void apply(State& state) const
    {
        for (const auto& update : updates_)
            update(state);
    }

private:
    void parse_field(std::string_view key, const json::value& value)
    {
        for (std::size_t i = 0; i < fault_count; ++i)
            if (key == fault_names[i])
                return parse_counter(static_cast<Fault>(i), key, value);
        if (key == "ready_after_ms")
            parse_ms(key, value, [](State& s, milliseconds v) { s.settings.ready_after = v; });
        else if (key == "validity_ms")
            parse_ms(key, value, [](State& s, milliseconds v) { s.settings.validity = v; });
        else if (key == "token_ttl_ms")
            parse_ms(key, value, [](State& s, milliseconds v) { s.settings.token_ttl = v; });
        else if (key == "size") {
            if (auto n = integer(key, value, 0))
                updates_.push_back([n = *n](State& s) { s.settings.size = static_cast<std::uint64_t>(n); });
        } else if (key == "retry_after") {
            if (auto n = integer(key, value, 0))
                updates_.push_back([n = *n](State& s) { s.settings.retry_after = static_cast<unsigned>(n); });
        } else if (key == "auth_failure_status") {
            auto n = integer(key, value, 401);
            if (n && *n != 401 && *n != 403)
                complain(key, "must be 401 or 403");
            else if (n)
                updates_.push_back([n = *n](State& s) { s.settings.auth_failure_status = static_cast<unsigned>(n); });
        } else if (key == "submit_status") {
            auto n = integer(key, value, 200);
            if (n && *n > 299)
                complain(key, "must be a 2xx status");
            else if (n)
                updates_.push_back([n = *n](State& s) { s.settings.submit_status = static_cast<unsigned>(n); });
        } else if (key == "v2") {
            if (auto b = boolean(key, value))
                updates_.push_back([b = *b](State& s) { s.settings.v2 = b; });
        } else if (key == "fail_exports") {
            if (auto n = counter(key, value))
                updates_.push_back([n = *n](State& s) { s.settings.fail_exports = n; });
        } else if (key == "limits")
            parse_limits(key, value);
        else if (key == "chunked") {
            if (auto b = boolean(key, value))
                updates_.push_back([b = *b](State& s) { s.settings.chunked = b; });
        } else if (key == "expire_tokens") {
            auto b = boolean(key, value);
            if (b && *b)
                updates_.push_back([](State& s) { s.expire_tokens(); });
        } else
            unknown_ += (unknown_.empty() ? "" : ", ") + std::string(key);
    }

    void parse_counter(Fault fault, std::string_view key, const json::value& value)
    {
        if (auto n = counter(key, value))
            updates_.push_back([fault, n = *n](State& s) { s.faults.set(fault, n); });
    }

    // true/false are shorthand for "once" and "off".
    std::optional<std::int64_t> counter(std::string_view key, const json::value& value)
    {
        if (value.is_bool())
            return value.get_bool() ? 1 : 0;
        return integer(key, value, -1);
    }

    // "off", "documented", or {"polls": "5/2s", "tokens": "off", ...} changing only those kinds.
    void parse_limits(std::string_view key, const json::value& value)
    {
        if (value == "off")
            return updates_.push_back([](State& s) { s.settings.limits = Limits::off(); });
        if (value == "documented")
            return updates_.push_back([](State& s) { s.settings.limits = Limits::documented(); });
        if (!value.is_object())
            return complain(key, "must be \"off\", \"documented\" or an object of KIND: \"COUNT/DURATION\"");
        for (const auto& [name, limit] : value.get_object())
            parse_limit(name, limit);
    }

    void parse_limit(std::string_view name, const json::value& value)
    {
        auto kind = parse_limit_kind(name);
        std::string what = "limits." + std::string(name);
        if (!kind)
            return complain(what, "is not a limit (submits, event_submits, polls, tokens)");
        if (!value.is_string())
            return complain(what, "must be a string such as \"5/2s\", \"off\" or \"documented\"");
        try {
            auto limit = parse_rate_limit(value.get_string(), *kind);
            updates_.push_back([kind = *kind, limit](State& s) { s.settings.limits.set(kind, limit); });
        } catch (const std::invalid_argument& e) {
            complain(what, e.what());
        }
    }

    template <typename Setter>
    void parse_ms(std::string_view key, const json::value& value, Setter setter)
    {
        if (auto n = integer(key, value, 0))
            updates_.push_back([n = *n, setter](State& s) { setter(s, milliseconds(n)); });
    }

    std::optional<std::int64_t> integer(std::string_view key, const json::value& value, std::int64_t min)
    {
        boost::system::error_code ec;
        auto n = value.is_number() ? value.to_number<std::int64_t>(ec) : 0;
        if (!value.is_number() || ec) {
            complain(key, "must be an integer");
            return std::nullopt;
        }
        if (n < min) {
            complain(key, "must be at least " + std::to_string(min));
            return std::nullopt;
        }
        return n;
    }

    std::optional<bool> boolean(std::string_view key, const json::value& value)
    {
        if (!value.is_bool()) {
            complain(key, "must be true or false");
            return std::nullopt;
        }
        return value.get_bool();
    }

    void complain(std::string_view key, std::string_view problem)
    {
        problems_ += (problems_.empty() ? "" : "; ") + std::string(key) + " " + std::string(problem);
    }

    std::vector<Update> updates_;
    std::string problems_;
    std::string unknown_;
};

Response set_faults(const Request& req, State& state)
{
    boost::system::error_code ec;
    json::value body = json::parse(req.body(), ec);
    if (ec || !body.is_object())
        return message_response(status::bad_request, "Body must be a JSON object");
    FaultRequest parsed(body.as_object());
    if (!parsed.unknown().empty())
        return message_response(status::bad_request, "Unknown fault or setting: " + parsed.unknown());
    if (!parsed.problems().empty())
        return message_response(status::bad_request, parsed.problems());
    parsed.apply(state);
    return json_response(status::ok, state.faults_json());
}

} // namespace

Response handle_control(const Request& req, std::string_view path, State& state)
{
    auto method = req.method();
    if (path == "/_fake/faults" && method == http::verb::post)
        return set_faults(req, state);
    if (path == "/_fake/faults" && method == http::verb::get)
        return json_response(status::ok, state.faults_json());
    if (path == "/_fake/stats" && method == http::verb::get)
        return json_response(status::ok, state.stats_json());
    if (path == "/_fake/reset" && method == http::verb::post) {
        state.reset();
        return json_response(status::ok, json::object{{"message", "reset"}});
    }
    return message_response(status::not_found, "Not found");
}

} // namespace apsis_fake
