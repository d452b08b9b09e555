#include "state.hpp"

#include <cstdio>

namespace apsis_fake {

namespace json = boost::json;

namespace {

constexpr std::size_t max_recorded_requests = 500;
// Benchmarks may fetch many tokens; forgetting dead ones keeps memory flat.
constexpr std::size_t token_prune_threshold = 10'000;

std::string_view state_name(ExportState state)
{
    switch (state) {
    case ExportState::in_progress:
        return "in_progress";
    case ExportState::ready:
        return "ready";
    case ExportState::failed:
        return "failed";
    default:
        return "gone";
    }
}

json::object export_json(const Export& e, const Settings& settings, Clock::time_point now)
{
    return {{"account", e.account},
            {"kind", e.kind},
            {"body", e.body},
            {"state", state_name(export_state(e, settings, now))},
            {"polls", e.polls},
            {"downloads", e.downloads}};
}

json::object request_json(const RequestRecord& r)
{
    return {{"method", r.method},
            {"target", r.target},
            {"status", r.status},
            {"authorization", r.authorization},
            {"accept", r.accept},
            {"accept_encoding", r.accept_encoding}};
}

// A kind that is not enforced shows as null.
json::object limits_json(const Limits& limits)
{
    json::object out;
    for (std::size_t i = 0; i < limit_kind_count; ++i) {
        const auto& limit = limits.get(static_cast<LimitKind>(i));
        if (limit)
            out[limit_kind_names[i]] = json::object{{"count", limit->count}, {"window_ms", limit->window.count()}};
        else
            out[limit_kind_names[i]] = nullptr;
    }
    return out;
}

template <typename Field>
json::object per_kind(const AccountUsage& usage, Field field)
{
    json::object out;
    for (std::size_t i = 0; i < limit_kind_count; ++i)
        out[limit_kind_names[i]] = usage.usage(static_cast<LimitKind>(i)).*field;
    return out;
}

json::object usage_json(const AccountUsage& usage, const Limits& limits)
{
    return {{"requests", per_kind(usage, &KindUsage::requests)},
            {"throttled", per_kind(usage, &KindUsage::throttled)},
            {"max_in_window", per_kind(usage, &KindUsage::max_in_window)},
            {"limits", limits_json(limits)}};
}

} // namespace

bool take_counter(std::int64_t& counter)
{
    if (counter == 0)
        return false;
    if (counter > 0)
        --counter;
    return true;
}

ExportState export_state(const Export& e, const Settings& settings, Clock::time_point now)
{
    auto age = now - e.created;
    bool prepared = age >= settings.ready_after;
    if (prepared && e.fails)
        return ExportState::failed;
    if (age >= settings.validity)
        return ExportState::gone;
    return prepared ? ExportState::ready : ExportState::in_progress;
}

State::State(Settings initial, std::vector<Credentials> accounts)
    : settings(initial), initial_(initial), random_(std::random_device{}())
{
    for (auto& credentials : accounts) {
        std::string id = credentials.client_id;
        accounts_.insert_or_assign(std::move(id), Account{std::move(credentials), {}});
    }
}

Account* State::account_for_credentials(std::string_view id, std::string_view secret)
{
    auto it = accounts_.find(id);
    return it != accounts_.end() && it->second.credentials.client_secret == secret ? &it->second : nullptr;
}

Account* State::account_for_token(std::string_view token)
{
    auto it = tokens_.find(token);
    if (it == tokens_.end() || Clock::now() >= it->second.expiry)
        return nullptr;
    auto account = accounts_.find(it->second.client_id);
    return account == accounts_.end() ? nullptr : &account->second;
}

bool State::admit(Account& account, std::initializer_list<LimitKind> kinds)
{
    return account.usage.admit(kinds, settings.limits, Clock::now());
}

void State::add_token(std::string token, std::string client_id, Clock::time_point expiry)
{
    if (tokens_.size() >= token_prune_threshold)
        prune_expired_tokens();
    tokens_.insert_or_assign(std::move(token), Token{expiry, std::move(client_id)});
}

void State::prune_expired_tokens()
{
    auto now = Clock::now();
    std::erase_if(tokens_, [now](const auto& entry) { return entry.second.expiry <= now; });
}

Export& State::create_export(const Account& account, std::string kind, json::value body)
{
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(random_() & 0xffffffffU));
    std::string id = "exp-" + std::to_string(next_export_id_++) + "-" + suffix;
    Export e{id, account.credentials.client_id, std::move(kind), std::move(body), Clock::now(), settings.size,
             take_counter(settings.fail_exports), 0, 0};
    return exports_.insert_or_assign(std::move(id), std::move(e)).first->second;
}

Export* State::find_export(std::string_view id)
{
    auto it = exports_.find(id);
    return it == exports_.end() ? nullptr : &it->second;
}

Export* State::find_export(const Account& account, std::string_view id)
{
    Export* e = find_export(id);
    return e && e->account == account.credentials.client_id ? e : nullptr;
}

void State::record(RequestRecord request)
{
    if (requests_.size() >= max_recorded_requests)
        requests_.pop_front();
    requests_.push_back(std::move(request));
}

void State::reset()
{
    settings = initial_;
    faults = Faults{};
    counters = Counters{};
    for (auto& [id, account] : accounts_)
        account.usage = AccountUsage{};
    tokens_.clear();
    exports_.clear();
    requests_.clear();
}

json::object State::faults_json() const
{
    json::object out;
    for (std::size_t i = 0; i < fault_count; ++i)
        out[fault_names[i]] = faults.remaining(static_cast<Fault>(i));
    out["ready_after_ms"] = settings.ready_after.count();
    out["validity_ms"] = settings.validity.count();
    out["token_ttl_ms"] = settings.token_ttl.count();
    out["size"] = settings.size;
    out["chunked"] = settings.chunked;
    out["auth_failure_status"] = settings.auth_failure_status;
    out["retry_after"] = settings.retry_after;
    out["submit_status"] = settings.submit_status;
    out["v2"] = settings.v2;
    out["fail_exports"] = settings.fail_exports;
    out["limits"] = limits_json(settings.limits);
    return out;
}

json::object State::accounts_json() const
{
    json::object out;
    for (const auto& [id, account] : accounts_)
        out[id] = usage_json(account.usage, settings.limits);
    return out;
}

json::object State::stats_json() const
{
    auto now = Clock::now();
    json::object exports;
    for (const auto& [id, e] : exports_)
        exports[id] = export_json(e, settings, now);
    json::array requests;
    requests.reserve(requests_.size());
    for (const auto& r : requests_)
        requests.push_back(request_json(r));
    return {{"token_requests", counters.token_requests},
            {"submissions", counters.submissions},
            {"submit_requests", counters.submit_requests},
            {"polls", counters.polls},
            {"downloads_started", counters.downloads_started},
            {"downloads_completed", counters.downloads_completed},
            {"accounts", accounts_json()},
            {"exports", std::move(exports)},
            {"requests", std::move(requests)},
            {"faults", faults_json()}};
}

} // namespace apsis_fake
