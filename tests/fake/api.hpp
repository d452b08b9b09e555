#pragma once

// The APSIS One endpoints: OAuth token, the four export submissions and the two kinds of poll
// URL, with the documented per-account rate limits in front of them.

#include "reply.hpp"
#include "state.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace apsis_fake {

// Base URLs put into download URLs. The foreign one names the same server by a different
// host string so tests can check that clients do not trust arbitrary hosts blindly.
struct PublicUrls {
    std::string base;
    std::string foreign_base;
};

// file_download_url (established) or file_download_url_v2 ("in development"): their answers
// differ while an export is in progress.
enum class PollUrl { legacy, v2 };

class Api {
public:
    Api(State& state, PublicUrls urls) : state_(state), urls_(std::move(urls)) {}

    Reply handle(const Request& req, std::string_view path);

private:
    Response issue_token(const Request& req);
    Reply submit(const Request& req, std::string_view kind);
    Response submit_answer(const Export& e);
    Reply poll(const Request& req, std::string_view id, PollUrl url);
    Reply poll_answer(const Request& req, Export& e, PollUrl url);

    bool admit_submit(Account& account, std::string_view kind);
    std::optional<Response> submit_fault();
    std::optional<Reply> poll_fault();
    Download plan_download(const Request& req, Export& e);

    Account* bearer_account(const Request& req);
    Response auth_failure() const;
    Response too_many_requests() const;
    Response server_error();

    State& state_;
    PublicUrls urls_;
    unsigned server_errors_ = 0;  // the storms cycle through 503, 500 and 502
};

} // namespace apsis_fake
