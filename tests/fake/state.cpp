#include "state.hpp"

#include <cstdio>

namespace apsis_fake {

namespace json = boost::json;

namespace {

constexpr std::size_t max_recorded_requests = 500;
// Benchmarks may fetch many tokens; forgetting dead ones keeps memory flat.
constexpr std::size_t token_prune_threshold = 10'000;

json::object export_json(const Export& e)
{
    return {{"kind", e.kind}, {"body", e.body}, {"polls", e.polls}, {"downloads", e.downloads}};
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

} // namespace

bool Faults::take(Fault fault)
{
    auto& counter = counters_[index(fault)];
    if (counter == 0)
        return false;
    if (counter > 0)
        --counter;
    return true;
}

State::State(Settings initial, Credentials credentials)
    : settings(initial), initial_(initial), credentials_(std::move(credentials)),
      random_(std::random_device{}())
{
}

bool State::credentials_match(std::string_view id, std::string_view secret) const
{
    return id == credentials_.client_id && secret == credentials_.client_secret;
}

void State::add_token(std::string token, Clock::time_point expiry)
{
    if (tokens_.size() >= token_prune_threshold)
        prune_expired_tokens();
    tokens_.insert_or_assign(std::move(token), expiry);
}

void State::prune_expired_tokens()
{
    auto now = Clock::now();
    std::erase_if(tokens_, [now](const auto& entry) { return entry.second <= now; });
}

bool State::token_valid(std::string_view token) const
{
    auto it = tokens_.find(token);
    return it != tokens_.end() && Clock::now() < it->second;
}

Export& State::create_export(std::string kind, json::value body)
{
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(random_() & 0xffffffffU));
    std::string id = "exp-" + std::to_string(next_export_id_++) + "-" + suffix;
    Export e{id, std::move(kind), std::move(body), Clock::now(), settings.size, 0, 0};
    return exports_.insert_or_assign(std::move(id), std::move(e)).first->second;
}

Export* State::find_export(std::string_view id)
{
    auto it = exports_.find(id);
    return it == exports_.end() ? nullptr : &it->second;
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
    return out;
}

json::object State::stats_json() const
{
    json::object exports;
    for (const auto& [id, e] : exports_)
        exports[id] = export_json(e);
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
            {"exports", std::move(exports)},
            {"requests", std::move(requests)},
            {"faults", faults_json()}};
}

} // namespace apsis_fake
