#include "options.hpp"

#include <charconv>
#include <optional>
#include <set>
#include <span>

namespace apsis_fake {

namespace {

std::uint64_t parse_unsigned(std::string_view text, std::string_view what)
{
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
        throw UsageError("invalid " + std::string(what) + ": '" + std::string(text) + "'");
    return value;
}

// Accepts both "--name value" and "--name=value".
class ArgCursor {
public:
    explicit ArgCursor(std::span<char*> args) : args_(args) {}

    bool next()
    {
        if (index_ >= args_.size())
            return false;
        std::string_view arg = args_[index_++];
        has_inline_value_ = false;
        if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            has_inline_value_ = true;
            inline_value_ = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        }
        name_ = arg;
        return true;
    }

    std::string_view name() const { return name_; }

    std::string_view value()
    {
        if (has_inline_value_)
            return inline_value_;
        if (index_ >= args_.size())
            throw UsageError("missing value for " + std::string(name_));
        return args_[index_++];
    }

    void no_value() const
    {
        if (has_inline_value_)
            throw UsageError(std::string(name_) + " takes no value");
    }

private:
    std::span<char*> args_;
    std::size_t index_ = 0;
    std::string_view name_;
    bool has_inline_value_ = false;
    std::string_view inline_value_;
};

Credentials parse_client(std::string_view text)
{
    auto colon = text.find(':');
    if (colon == 0 || colon == std::string_view::npos || colon + 1 == text.size())
        throw UsageError("--client takes ID:SECRET, got '" + std::string(text) + "'");
    return {std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
}

// KIND=COUNT/DURATION, KIND=off or KIND=documented.
void apply_limit(std::string_view text, Limits& limits)
{
    auto eq = text.find('=');
    auto kind = parse_limit_kind(text.substr(0, eq));
    if (eq == std::string_view::npos || !kind)
        throw UsageError("--limit takes KIND=COUNT/DURATION with KIND one of submits, event_submits, polls, "
                         "tokens; got '" + std::string(text) + "'");
    try {
        limits.set(*kind, parse_rate_limit(text.substr(eq + 1), *kind));
    } catch (const std::invalid_argument& e) {
        throw UsageError("--limit " + std::string(text) + ": " + e.what());
    }
}

unsigned parse_submit_status(std::string_view text)
{
    auto status = parse_unsigned(text, "submit status");
    if (status < 200 || status > 299)
        throw UsageError("--submit-status must be a 2xx status");
    return static_cast<unsigned>(status);
}

// --client names the accounts; --client-id/--client-secret adjust the first (or only) one.
struct AccountOptions {
    std::vector<Credentials> clients;
    std::optional<std::string> first_id;
    std::optional<std::string> first_secret;

    std::vector<Credentials> resolve() const
    {
        std::vector<Credentials> accounts = clients;
        if (accounts.empty())
            accounts.push_back({"demo-client", "demo-secret"});
        if (first_id)
            accounts.front().client_id = *first_id;
        if (first_secret)
            accounts.front().client_secret = *first_secret;
        std::set<std::string> seen;
        for (const auto& account : accounts)
            if (!seen.insert(account.client_id).second)
                throw UsageError("client id '" + account.client_id + "' is given twice");
        return accounts;
    }
};

} // namespace

std::chrono::milliseconds parse_duration(std::string_view text)
{
    auto digits_end = text.find_first_not_of("0123456789");
    std::string_view number = text.substr(0, digits_end);
    std::string_view unit = digits_end == std::string_view::npos ? "s" : text.substr(digits_end);
    std::uint64_t n = parse_unsigned(number, "duration");
    std::uint64_t scale = 0;
    if (unit == "ms")
        scale = 1;
    else if (unit == "s")
        scale = 1000;
    else if (unit == "m")
        scale = 60'000;
    else if (unit == "h")
        scale = 3'600'000;
    else if (unit == "d")
        scale = 86'400'000;
    else
        throw UsageError("invalid duration unit in '" + std::string(text) + "' (use ms, s, m, h or d)");
    return std::chrono::milliseconds(static_cast<std::int64_t>(n * scale));
}

std::string_view usage()
{
    return "usage: apsis-fake [--listen 127.0.0.1] [--port 0] [--port-file FILE]\n"
           "                  [--client ID:SECRET]... [--client-id demo-client] [--client-secret demo-secret]\n"
           "                  [--token-ttl 1h] [--ready-after 2s] [--validity 24h]\n"
           "                  [--size 1048576] [--chunked] [--submit-status 201] [--v2]\n"
           "                  [--limit KIND=COUNT/DURATION]... [--no-limits] [--quiet]\n"
           "Defaults follow the documented APSIS One API: one account demo-client:demo-secret;\n"
           "submit answers carry file_download_url (and file_download_url_v2 with --v2);\n"
           "per-account sliding-window rate limits submits=1/1s, event_submits=1/1m,\n"
           "polls=60/1m, tokens=10/1m, over which requests get 429 without Retry-After.\n"
           "--client is repeatable; --client-id/--client-secret change the first account.\n"
           "--limit is repeatable; KIND is submits, event_submits, polls or tokens, and\n"
           "KIND=off or KIND=documented also work. --no-limits turns every limit off.\n"
           "Durations take ms, s, m, h or d suffixes (e.g. 1500ms, 2s); limit windows ms, s or m.\n"
           "Tests change settings and arm faults at run time: POST /_fake/faults, GET /_fake/stats,\n"
           "POST /_fake/reset.\n";
}

Options parse_options(int argc, char** argv)
{
    Options options;
    AccountOptions accounts;
    ArgCursor args(std::span<char*>(argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0)));
    while (args.next()) {
        std::string_view name = args.name();
        if (name == "--listen")
            options.listen = args.value();
        else if (name == "--port") {
            auto port = parse_unsigned(args.value(), "port");
            if (port > 65535)
                throw UsageError("port out of range");
            options.port = static_cast<std::uint16_t>(port);
        } else if (name == "--port-file")
            options.port_file = args.value();
        else if (name == "--client")
            accounts.clients.push_back(parse_client(args.value()));
        else if (name == "--client-id")
            accounts.first_id = args.value();
        else if (name == "--client-secret")
            accounts.first_secret = args.value();
        else if (name == "--limit")
            apply_limit(args.value(), options.settings.limits);
        else if (name == "--no-limits") {
            args.no_value();
            options.settings.limits = Limits::off();
        } else if (name == "--submit-status")
            options.settings.submit_status = parse_submit_status(args.value());
        else if (name == "--v2") {
            args.no_value();
            options.settings.v2 = true;
        }
        else if (name == "--token-ttl")
            options.settings.token_ttl = parse_duration(args.value());
        else if (name == "--ready-after")
            options.settings.ready_after = parse_duration(args.value());
        else if (name == "--validity")
            options.settings.validity = parse_duration(args.value());
        else if (name == "--size")
            options.settings.size = parse_unsigned(args.value(), "size");
        else if (name == "--chunked") {
            args.no_value();
            options.settings.chunked = true;
        } else if (name == "--quiet") {
            args.no_value();
            options.quiet = true;
        } else if (name == "--help" || name == "-h")
            options.help = true;
        else
            throw UsageError("unknown option '" + std::string(name) + "'");
    }
    options.accounts = accounts.resolve();
    return options;
}

} // namespace apsis_fake
