// What APSIS One's answers mean, as pure functions over status, headers and body text.
// The client and the job lifecycle act on these verdicts; nothing here does I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "util/time.hpp"

namespace apsis::apsis_one {

enum class Verdict {
  success,         // 2xx on token/submit; 200 on a poll: the file streams now
  in_progress,     // a poll: 404 on a file_download_url, 202 on a file_download_url_v2
  gone,            // 410 on a poll
  export_failing,  // 503 on a poll: the export failed at APSIS, once it comes several times in a row
  unknown_export,  // 404 on a file_download_url_v2: APSIS One has no such export
  token_rejected,  // 401, or 403 with the gateway's "not authorized" message: renew the token once
  rate_limited,    // 429: wait (Retry-After when given)
  transient,       // 5xx, 408: retry with back-off
  permanent,       // anything else, e.g. 400, 413, a 403 that is not about the token
};

enum class Call { token, submit, poll };

// For a poll, `field` says which kind of URL was polled: their answers differ.
Verdict classify(Call call, unsigned status, std::string_view body,
                 config::PollUrlField field = config::PollUrlField::file_download_url);

// The API's own error text from a JSON body ("message", "title", "detail", "error_description"...),
// else the body itself cut to a readable length.
std::string api_message(std::string_view body);

// A one-line explanation for a job's `error` column, e.g.
// "APSIS One answered 413 Payload Too Large: the request asks for more topics/attributes/tags than the API supports (...)".
std::string describe_failure(Call call, unsigned status, std::string_view body);

// The poll URL of an accepted export, from the submit answer's JSON body.
struct PollUrl {
  std::string url;
  config::PollUrlField field{config::PollUrlField::file_download_url};
  std::string note;  // set when the answer lacked the field asked for and another one was used
};

// Reads the field the account asks for (`file_download_url` unless it opted in to the v2 URL).
// Only documented fields count: no `poll_url`, no Location header. With the v2 opt-in, an answer
// that carries only `file_download_url` is used as such (and `note` says so). Without a usable field,
// nullopt and `why` names the fields the answer had.
std::optional<PollUrl> find_poll_url(std::string_view body, config::PollUrlField wanted, std::string* why);

// Retry-After as delta-seconds or an HTTP-date, relative to now; nullopt if absent or unreadable.
std::optional<Milliseconds> parse_retry_after(std::string_view value, TimePoint now);

// How long to wait after an answer that asked for `retry_after`: never longer than `max_delay`
// (the retry policy's), so a huge Retry-After cannot park a job for years.
std::optional<Milliseconds> bounded_retry_after(std::optional<Milliseconds> retry_after, Milliseconds max_delay);

// The media type the export's format is answered in: text/csv, the spreadsheet type, application/json.
std::string_view file_media_type(config::FileFormat format);

// True when a Content-Type value names `media_type`, whatever its parameters and letter case
// ("Text/CSV; charset=UTF-8" is text/csv).
bool is_media_type(std::string_view content_type, std::string_view media_type);

// Why a 200's body cannot be published as the export's file, or "" when it can: a media type
// other than the format's, or an uncompressed body whose end only the connection closing marked
// (no Content-Length, no chunking, no gzip trailer: a cut looks exactly like the end).
std::string unpublishable_body(std::string_view content_type, config::FileFormat format, bool end_framed, bool gzip);

// The `exp` claim of a JWT access token, if the token is a JWT that carries one.
std::optional<TimePoint> jwt_expiry(std::string_view token);

}  // namespace apsis::apsis_one
