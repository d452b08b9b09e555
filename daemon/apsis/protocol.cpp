#include "apsis/protocol.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>

namespace apsis::apsis_one {
namespace {

constexpr std::string_view kGatewayDeny = "not authorized to access this resource";

std::string cut(std::string_view text, std::size_t limit = 300) {
  std::string out;
  for (char c : text.substr(0, limit)) out += (c == '\n' || c == '\r') ? ' ' : c;
  if (text.size() > limit) out += "…";
  return out;
}

std::string reason_phrase(unsigned status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

}  // namespace

Verdict classify(Call call, unsigned status, std::string_view body, config::PollUrlField field) {
  if (call == Call::poll) {
    const bool v2 = field == config::PollUrlField::file_download_url_v2;
    if (status == 200) return Verdict::success;
    if (status == 202 && v2) return Verdict::in_progress;
    if (status == 404) return v2 ? Verdict::unknown_export : Verdict::in_progress;
    if (status == 410) return Verdict::gone;
    if (status == 503) return Verdict::export_failing;
  } else if (status >= 200 && status < 300) {
    return Verdict::success;
  }
  if (status == 401 && call != Call::token) return Verdict::token_rejected;
  if (status == 403 && call != Call::token && body.find(kGatewayDeny) != std::string_view::npos)
    return Verdict::token_rejected;
  if (status == 429) return Verdict::rate_limited;
  if (status >= 500 || status == 408) return Verdict::transient;
  return Verdict::permanent;
}

std::string api_message(std::string_view body) {
  boost::system::error_code ec;
  const auto value = boost::json::parse(body, ec);
  if (!ec && value.is_object()) {
    for (const char* key : {"message", "detail", "title", "error_description", "error"}) {
      if (const auto* field = value.as_object().if_contains(key); field && field->is_string())
        return cut(field->as_string());
    }
  }
  return cut(body);
}

std::string describe_failure(Call call, unsigned status, std::string_view body) {
  const char* what = call == Call::token ? "token request" : call == Call::submit ? "export submit" : "poll";
  std::string text = std::string("APSIS One answered the ") + what + " with " + std::to_string(status);
  if (const auto phrase = reason_phrase(status); !phrase.empty()) text += " " + phrase;
  if (status == 413)
    text += ": APSIS One documents two causes: a request body over 100 kB, or more topics, attributes or tags "
            "than the API supports; reduce them in the export's request";
  if (status == 404 && call == Call::poll)
    text += ": APSIS One does not know this export (on a file_download_url_v2, 404 means an unknown id)";
  if (status == 503 && call == Call::poll) text += ": APSIS One's sign of a failed export when it repeats";
  if (status == 403 && call != Call::token) text += " even with a fresh token: the API client lacks permission";
  if (const auto message = api_message(body); !message.empty()) text += " (API says: " + message + ")";
  return text;
}

std::optional<PollUrl> find_poll_url(std::string_view body, config::PollUrlField wanted, std::string* why) {
  boost::system::error_code ec;
  const auto parsed = boost::json::parse(body, ec);
  if (ec || !parsed.is_object()) {
    if (why) *why = "the submit answer is not a JSON object (body starts: " + cut(body, 80) + ")";
    return std::nullopt;
  }
  const auto& answer = parsed.as_object();
  const auto url_in = [&](config::PollUrlField field) -> std::optional<std::string> {
    const auto* value = answer.if_contains(config::to_string(field));
    if (!value || !value->is_string() || value->as_string().empty()) return std::nullopt;
    return std::string(value->as_string());
  };
  if (auto url = url_in(wanted)) return PollUrl{std::move(*url), wanted, ""};
  if (wanted == config::PollUrlField::file_download_url_v2) {
    if (auto url = url_in(config::PollUrlField::file_download_url))
      return PollUrl{std::move(*url), config::PollUrlField::file_download_url,
                     "the submit answer has no file_download_url_v2 (poll_url_field: file_download_url_v2); "
                     "polling its file_download_url instead"};
  }
  if (why) {
    std::string fields;
    for (const auto& field : answer) fields += (fields.empty() ? "" : ", ") + std::string(field.key());
    *why = "the submit answer has no " + std::string(config::to_string(wanted)) +
           " field (fields received: " + (fields.empty() ? std::string("none") : fields) + ")";
  }
  return std::nullopt;
}

std::optional<Milliseconds> parse_retry_after(std::string_view value, TimePoint now) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (value.size() > 9) return std::nullopt;
    return std::chrono::seconds(std::stol(std::string(value)));
  }
  std::tm tm{};
  const std::string text(value);
  if (!strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return std::nullopt;
  const auto at = Clock::from_time_t(timegm(&tm));
  return at > now ? std::chrono::duration_cast<Milliseconds>(at - now) : Milliseconds(0);
}

std::optional<Milliseconds> bounded_retry_after(std::optional<Milliseconds> retry_after, Milliseconds max_delay) {
  if (!retry_after) return std::nullopt;
  return std::min(*retry_after, max_delay);
}

std::string_view file_media_type(config::FileFormat format) {
  switch (format) {
    case config::FileFormat::csv: return "text/csv";
    case config::FileFormat::xlsx: return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    case config::FileFormat::json: return "application/json";
  }
  return "text/csv";
}

bool is_media_type(std::string_view content_type, std::string_view media_type) {
  auto type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && std::isspace(static_cast<unsigned char>(type.front()))) type.remove_prefix(1);
  while (!type.empty() && std::isspace(static_cast<unsigned char>(type.back()))) type.remove_suffix(1);
  return std::ranges::equal(type, media_type, [](unsigned char a, unsigned char b) {
    return std::tolower(a) == std::tolower(b);
  });
}

std::string unpublishable_body(std::string_view content_type, config::FileFormat format, bool end_framed, bool gzip) {
  const auto expected = file_media_type(format);
  if (!is_media_type(content_type, expected))
    return "the 200 answer is " + (content_type.empty() ? std::string("without a Content-Type")
                                                        : "of type '" + cut(content_type, 100) + "'") +
           ", not the export file's " + std::string(expected);
  if (!end_framed && !gzip)
    return "the body had no Content-Length and no chunked encoding, so only the server closing the connection "
           "ended it: a cut there cannot be told from the end";
  return "";
}

std::optional<TimePoint> jwt_expiry(std::string_view token) {
  const auto first = token.find('.');
  const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  std::string payload(token.substr(first + 1, second - first - 1));
  for (auto& c : payload) c = c == '-' ? '+' : c == '_' ? '/' : c;
  const auto unpadded = payload.size();
  while (payload.size() % 4) payload += '=';
  std::string decoded(boost::beast::detail::base64::decoded_size(payload.size()), '\0');
  const auto [written, read] = boost::beast::detail::base64::decode(decoded.data(), payload.data(), payload.size());
  if (read < unpadded) return std::nullopt;  // stopped at a character outside the alphabet
  decoded.resize(written);
  boost::system::error_code ec;
  const auto claims = boost::json::parse(decoded, ec);
  if (ec || !claims.is_object()) return std::nullopt;
  const auto* exp = claims.as_object().if_contains("exp");
  if (!exp || !exp->is_number()) return std::nullopt;
  const auto seconds = exp->to_number<std::int64_t>();
  return TimePoint(std::chrono::seconds(seconds));
}

}  // namespace apsis::apsis_one
