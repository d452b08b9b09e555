#include "options.hpp"

#include <charconv>
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
           "                  [--client-id demo-client] [--client-secret demo-secret]\n"
           "                  [--token-ttl 1h] [--ready-after 2s] [--validity 24h]\n"
           "                  [--size 1048576] [--chunked] [--quiet]\n"
           "Durations take ms, s, m, h or d suffixes (e.g. 1500ms, 2s).\n";
}

Options parse_options(int argc, char** argv)
{
    Options options;
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
        else if (name == "--client-id")
            options.credentials.client_id = args.value();
        else if (name == "--client-secret")
            options.credentials.client_secret = args.value();
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
    return options;
}

} // namespace apsis_fake
