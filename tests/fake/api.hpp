#pragma once

// The APSIS One endpoints: OAuth token, export submission and the poll/download URL.

#include "reply.hpp"
#include "state.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace apsis_fake {

// Base URLs put into poll URLs. The foreign one names the same server by a different
// host string so tests can check that clients do not trust arbitrary hosts blindly.
struct PublicUrls {
    std::string base;
    std::string foreign_base;
};

class Api {
public:
    Api(State& state, PublicUrls urls) : state_(state), urls_(std::move(urls)) {}

    Reply handle(const Request& req, std::string_view path);

private:
    Response issue_token(const Request& req);
    Response submit(const Request& req, std::string_view kind);
    Reply poll(const Request& req, std::string_view id);

    std::optional<Response> submit_fault();
    std::optional<Response> submit_shape_fault(const Export& e);
    std::optional<Reply> poll_fault();
    Download plan_download(const Request& req, Export& e);

    bool authorized(const Request& req) const;
    Response auth_failure() const;
    Response too_many_requests() const;
    Response server_error();

    State& state_;
    PublicUrls urls_;
    unsigned server_errors_ = 0;  // the storms cycle through 503, 500 and 502
};

} // namespace apsis_fake
