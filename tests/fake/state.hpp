#pragma once

// Everything the fake remembers between requests: settings, armed faults, tokens,
// exports and statistics. Owned by main and shared by reference; the server is
// single-threaded, so nothing here needs locking.

#include <boost/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <string_view>

namespace apsis_fake {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Credentials {
    std::string client_id;
    std::string client_secret;
};

// Knobs that tests may change at run time through POST /_fake/faults.
struct Settings {
    milliseconds token_ttl{std::chrono::hours(1)};
    milliseconds ready_after{std::chrono::seconds(2)};
    milliseconds validity{std::chrono::hours(24)};
    std::uint64_t size = 1048576;
    bool chunked = false;
    unsigned auth_failure_status = 403;
    unsigned retry_after = 1;
};

enum class Fault : std::size_t {
    token_5xx,
    token_429,
    submit_5xx,
    submit_429,
    submit_400,
    submit_413,
    submit_401,
    submit_403_gateway,
    submit_malformed,
    submit_no_poll_url,
    submit_location,
    submit_foreign_poll_url,
    poll_5xx,
    poll_429,
    poll_401,
    poll_403_gateway,
    poll_410,
    download_cut,
    download_short_length,
    download_cut_chunked,
    download_corrupt_gzip,
    download_slow,
    poll_reset,
    count_
};

inline constexpr std::size_t fault_count = static_cast<std::size_t>(Fault::count_);

// Indexed by Fault; these are also the JSON field names of the control API.
inline constexpr std::array<std::string_view, fault_count> fault_names{
    "token_5xx",          "token_429",          "submit_5xx",          "submit_429",
    "submit_400",         "submit_413",         "submit_401",          "submit_403_gateway",
    "submit_malformed",   "submit_no_poll_url", "submit_location",     "submit_foreign_poll_url",
    "poll_5xx",           "poll_429",           "poll_401",            "poll_403_gateway",
    "poll_410",           "download_cut",       "download_short_length", "download_cut_chunked",
    "download_corrupt_gzip", "download_slow", "poll_reset"};

// Each fault is a counter: fire on the next N matching requests, -1 forever, 0 never.
class Faults {
public:
    bool take(Fault fault);
    void set(Fault fault, std::int64_t remaining) { counters_[index(fault)] = remaining; }
    std::int64_t remaining(Fault fault) const { return counters_[index(fault)]; }

private:
    static std::size_t index(Fault fault) { return static_cast<std::size_t>(fault); }
    std::array<std::int64_t, fault_count> counters_{};
};

struct Counters {
    std::uint64_t token_requests = 0;
    std::uint64_t submissions = 0;
    std::uint64_t submit_requests = 0;
    std::uint64_t polls = 0;
    std::uint64_t downloads_started = 0;
    std::uint64_t downloads_completed = 0;
};

struct Export {
    std::string id;
    std::string kind;
    boost::json::value body;
    Clock::time_point created;
    // Fixed at creation so every download of one export is byte-identical.
    std::uint64_t size = 0;
    std::uint64_t polls = 0;
    std::uint64_t downloads = 0;
};

struct RequestRecord {
    std::string method;
    std::string target;
    unsigned status = 0;
    std::string authorization;
    std::string accept;
    std::string accept_encoding;
};

class State {
public:
    State(Settings initial, Credentials credentials);

    Settings settings;
    Faults faults;
    Counters counters;

    bool credentials_match(std::string_view id, std::string_view secret) const;
    std::uint64_t next_token_id() { return next_token_id_++; }
    void add_token(std::string token, Clock::time_point expiry);
    bool token_valid(std::string_view token) const;
    void expire_tokens() { tokens_.clear(); }

    Export& create_export(std::string kind, boost::json::value body);
    Export* find_export(std::string_view id);

    void record(RequestRecord request);
    void reset();

    boost::json::object faults_json() const;
    boost::json::object stats_json() const;

private:
    void prune_expired_tokens();

    Settings initial_;
    Credentials credentials_;
    std::map<std::string, Clock::time_point, std::less<>> tokens_;
    std::map<std::string, Export, std::less<>> exports_;
    std::deque<RequestRecord> requests_;
    std::uint64_t next_token_id_ = 1;
    std::uint64_t next_export_id_ = 1;
    std::mt19937_64 random_;
};

} // namespace apsis_fake
