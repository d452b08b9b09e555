// What APSIS One's answers mean, as pure functions over status, headers and body text.
// The client and the job lifecycle act on these verdicts; nothing here does I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/time.hpp"

namespace apsis::apsis_one {

enum class Verdict {
  success,         // 2xx on token/submit; 200 on a poll: the file streams now
  in_progress,     // 404 on a poll
  gone,            // 410 on a poll
  token_rejected,  // 401, or 403 with the gateway's "not authorized" message: renew the token once
  rate_limited,    // 429: wait (Retry-After when given)
  transient,       // 5xx, 408: retry with back-off
  permanent,       // anything else, e.g. 400, 413, a 403 that is not about the token
};

enum class Call { token, submit, poll };

Verdict classify(Call call, unsigned status, std::string_view body);

// The API's own error text from a JSON body ("message", "title", "detail", "error_description"...),
// else the body itself cut to a readable length.
std::string api_message(std::string_view body);

// A one-line explanation for a job's `error` column, e.g.
// "APSIS One answered 413 Payload Too Large: the request asks for more topics/attributes/tags than the API supports (...)".
std::string describe_failure(Call call, unsigned status, std::string_view body);

// Retry-After as delta-seconds or an HTTP-date, relative to now; nullopt if absent or unreadable.
std::optional<Milliseconds> parse_retry_after(std::string_view value, TimePoint now);

// The `exp` claim of a JWT access token, if the token is a JWT that carries one.
std::optional<TimePoint> jwt_expiry(std::string_view token);

}  // namespace apsis::apsis_one
