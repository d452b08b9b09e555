#pragma once

// Everything the fake remembers between requests: settings, armed faults, accounts and their
// tokens, exports and statistics. Owned by main and shared by reference; the server is
// single-threaded, so nothing here needs locking.

#include "limits.hpp"

#include <boost/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace apsis_fake {

struct Credentials {
    std::string client_id;
    std::string client_secret;
};

// Knobs that tests may change at run time through POST /_fake/faults. The defaults are the
// documented APSIS One behaviour (docs/apsis-api.md); the faults below are not.
struct Settings {
    milliseconds token_ttl{std::chrono::hours(1)};
    milliseconds ready_after{std::chrono::seconds(2)};
    milliseconds validity{std::chrono::hours(24)};
    std::uint64_t size = 1048576;
    bool chunked = false;
    unsigned auth_failure_status = 403;
    // No Retry-After is documented, so none is sent unless a test asks for one.
    unsigned retry_after = 0;
    // The docs leave 201 vs 202 open.
    unsigned submit_status = 201;
    // Submit answers also carry file_download_url_v2 ("in development" at APSIS).
    bool v2 = false;
    // Counter like a fault's: the next N exports created fail at APSIS (documented, not a fault).
    std::int64_t fail_exports = 0;
    Limits limits = Limits::documented();
};

// Undocumented misbehaviour, all off by default.
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
    submit_no_download_url,
    submit_location_only,
    submit_foreign_download_url,
    submit_v1_only,
    poll_5xx,
    poll_503,
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
    download_unframed,
    download_empty,
    download_error_json,
    download_multi_member_gzip,
    interim_100,
    submit_reset,
    count_
};

inline constexpr std::size_t fault_count = static_cast<std::size_t>(Fault::count_);

// Indexed by Fault; these are also the JSON field names of the control API.
inline constexpr std::array<std::string_view, fault_count> fault_names{
    "token_5xx",           "token_429",
    "submit_5xx",          "submit_429",
    "submit_400",          "submit_413",
    "submit_401",          "submit_403_gateway",
    "submit_malformed",    "submit_no_download_url",
    "submit_location_only", "submit_foreign_download_url",
    "submit_v1_only",      "poll_5xx",
    "poll_503",            "poll_429",
    "poll_401",            "poll_403_gateway",
    "poll_410",            "download_cut",
    "download_short_length", "download_cut_chunked",
    "download_corrupt_gzip", "download_slow",
    "poll_reset",          "download_unframed",
    "download_empty",      "download_error_json",
    "download_multi_member_gzip", "interim_100",
    "submit_reset"};

// Takes one from a "next N times, -1 forever, 0 never" counter; says whether it fired.
bool take_counter(std::int64_t& counter);

class Faults {
public:
    bool take(Fault fault) { return take_counter(counters_[index(fault)]); }
    void set(Fault fault, std::int64_t remaining) { counters_[index(fault)] = remaining; }
    std::int64_t remaining(Fault fault) const { return counters_[index(fault)]; }

private:
    static std::size_t index(Fault fault) { return static_cast<std::size_t>(fault); }
    std::array<std::int64_t, fault_count> counters_{};
};

// Totals over all accounts, unauthenticated requests included.
struct Counters {
    std::uint64_t token_requests = 0;
    std::uint64_t submissions = 0;
    std::uint64_t submit_requests = 0;
    std::uint64_t polls = 0;
    std::uint64_t downloads_started = 0;
    std::uint64_t downloads_completed = 0;
};

struct Account {
    Credentials credentials;
    AccountUsage usage;
};

enum class ExportState { in_progress, ready, failed, gone };

struct Export {
    std::string id;
    std::string account;
    std::string kind;
    boost::json::value body;
    Clock::time_point created;
    // Fixed at creation so every download of one export is byte-identical.
    std::uint64_t size = 0;
    bool fails = false;
    std::uint64_t polls = 0;
    std::uint64_t downloads = 0;
};

// A failed export answers 503 forever once prepared, even after its URL would have expired;
// any other export is gone once its URL's validity has passed, prepared or not.
ExportState export_state(const Export& e, const Settings& settings, Clock::time_point now);

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
    State(Settings initial, std::vector<Credentials> accounts);

    Settings settings;
    Faults faults;
    Counters counters;

    // Null for unknown credentials or tokens: such requests count against no account.
    Account* account_for_credentials(std::string_view id, std::string_view secret);
    Account* account_for_token(std::string_view token);
    // Applies the account's rate limits to a request that counts as every kind listed.
    bool admit(Account& account, std::initializer_list<LimitKind> kinds);

    std::uint64_t next_token_id() { return next_token_id_++; }
    void add_token(std::string token, std::string client_id, Clock::time_point expiry);
    void expire_tokens() { tokens_.clear(); }

    Export& create_export(const Account& account, std::string kind, boost::json::value body);
    // Only the account that created an export can see it.
    Export* find_export(const Account& account, std::string_view id);
    Export* find_export(std::string_view id);

    void record(RequestRecord request);
    void reset();

    boost::json::object faults_json() const;
    boost::json::object stats_json() const;

private:
    struct Token {
        Clock::time_point expiry;
        std::string client_id;
    };

    void prune_expired_tokens();
    boost::json::object accounts_json() const;

    Settings initial_;
    std::map<std::string, Account, std::less<>> accounts_;
    std::map<std::string, Token, std::less<>> tokens_;
    std::map<std::string, Export, std::less<>> exports_;
    std::deque<RequestRecord> requests_;
    std::uint64_t next_token_id_ = 1;
    std::uint64_t next_export_id_ = 1;
    std::mt19937_64 random_;
};

} // namespace apsis_fake
