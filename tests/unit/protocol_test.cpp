#include <doctest/doctest.h>

#include "apsis/protocol.hpp"

using namespace apsis;
using namespace apsis::apsis_one;
using namespace std::chrono_literals;

namespace {
constexpr const char* kGatewayBody = R"({"message":"User is not authorized to access this resource with an explicit deny"})";
}

TEST_CASE("poll answers follow the documented table, by the kind of URL polled") {
  using config::PollUrlField;
  struct Row {
    unsigned status;
    Verdict v1;  // file_download_url
    Verdict v2;  // file_download_url_v2
  };
  // ../shared/docs/apsis-api.md, "The poll URL".
  const Row table[] = {
      {202, Verdict::permanent, Verdict::in_progress},     // v1 never answers 202
      {404, Verdict::in_progress, Verdict::unknown_export},
      {200, Verdict::success, Verdict::success},
      {410, Verdict::gone, Verdict::gone},
      {503, Verdict::export_failing, Verdict::export_failing},
      {429, Verdict::rate_limited, Verdict::rate_limited},
      {500, Verdict::transient, Verdict::transient},
      {502, Verdict::transient, Verdict::transient},
      {400, Verdict::permanent, Verdict::permanent},
  };
  for (const auto& row : table) {
    CAPTURE(row.status);
    CHECK(classify(Call::poll, row.status, "", PollUrlField::file_download_url) == row.v1);
    CHECK(classify(Call::poll, row.status, "", PollUrlField::file_download_url_v2) == row.v2);
  }
  // Only polls read 503 as a failed export: on a submit or token request it is a busy gateway.
  CHECK(classify(Call::submit, 503, "") == Verdict::transient);
  CHECK(classify(Call::token, 503, "") == Verdict::transient);
}

TEST_CASE("the poll URL is the submit answer's file_download_url, and nothing undocumented") {
  using config::PollUrlField;
  std::string why;
  auto url = find_poll_url(R"({"file_download_url":"https://api.apsis.one/x/1"})", PollUrlField::file_download_url, &why);
  REQUIRE(url);
  CHECK(url->url == "https://api.apsis.one/x/1");
  CHECK(url->field == PollUrlField::file_download_url);
  CHECK(url->note.empty());

  // A guess the documentation never makes is not accepted; the error names what came.
  CHECK_FALSE(find_poll_url(R"({"poll_url":"https://api.apsis.one/x/1","id":"7"})", PollUrlField::file_download_url, &why));
  CHECK(why == "the submit answer has no file_download_url field (fields received: poll_url, id)");
  CHECK_FALSE(find_poll_url("{}", PollUrlField::file_download_url, &why));
  CHECK(why.find("fields received: none") != std::string::npos);
  CHECK_FALSE(find_poll_url(R"({"file_download_url": 5})", PollUrlField::file_download_url, &why));
  CHECK_FALSE(find_poll_url("<html>", PollUrlField::file_download_url, &why));
  CHECK(why.find("not a JSON object") != std::string::npos);

  // Both fields: each account reads the one it asked for.
  const auto both = R"({"file_download_url":"https://h/v1","file_download_url_v2":"https://h/v2"})";
  CHECK(find_poll_url(both, PollUrlField::file_download_url, &why)->url == "https://h/v1");
  url = find_poll_url(both, PollUrlField::file_download_url_v2, &why);
  CHECK(url->url == "https://h/v2");
  CHECK(url->field == PollUrlField::file_download_url_v2);

  // The v2 opt-in falls back to the established URL, and says so.
  url = find_poll_url(R"({"file_download_url":"https://h/v1"})", PollUrlField::file_download_url_v2, &why);
  REQUIRE(url);
  CHECK(url->field == PollUrlField::file_download_url);
  CHECK(url->note.find("no file_download_url_v2") != std::string::npos);
  // The established URL never falls back to v2.
  CHECK_FALSE(find_poll_url(R"({"file_download_url_v2":"https://h/v2"})", PollUrlField::file_download_url, &why));
}

TEST_CASE("token rejections: 401, and 403 only with the gateway's message") {
  CHECK(classify(Call::submit, 401, "") == Verdict::token_rejected);
  CHECK(classify(Call::poll, 403, kGatewayBody) == Verdict::token_rejected);
  CHECK(classify(Call::submit, 403, R"({"message":"Forbidden: missing scope"})") == Verdict::permanent);
  // The token endpoint itself rejecting credentials is not "renew the token".
  CHECK(classify(Call::token, 401, "") == Verdict::permanent);
}

TEST_CASE("submit answers") {
  CHECK(classify(Call::submit, 200, "") == Verdict::success);
  CHECK(classify(Call::submit, 201, "") == Verdict::success);
  CHECK(classify(Call::submit, 202, "") == Verdict::success);
  CHECK(classify(Call::submit, 413, "") == Verdict::permanent);
  CHECK(classify(Call::submit, 400, "") == Verdict::permanent);
  CHECK(classify(Call::submit, 502, "") == Verdict::transient);
  CHECK(classify(Call::submit, 404, "") == Verdict::permanent);
}

TEST_CASE("failure text keeps the API's message and explains 413") {
  const auto text = describe_failure(Call::submit, 413, R"({"message":"Payload Too Large"})");
  CHECK(text.find("413 Payload Too Large") != std::string::npos);
  CHECK(text.find("topics, attributes or tags") != std::string::npos);
  CHECK(text.find("over 100 kB") != std::string::npos);
  CHECK(text.find("API says: Payload Too Large") != std::string::npos);
  CHECK(api_message(R"({"detail":"bad filter"})") == "bad filter");
  CHECK(api_message("plain text\nerror") == "plain text error");
  CHECK(api_message(std::string(1000, 'x')).size() < 320);
}

TEST_CASE("Retry-After as seconds or HTTP date") {
  const TimePoint now = Clock::from_time_t(1'784'000'000);  // 2026-07-14T03:33:20Z
  CHECK(parse_retry_after("7", now) == Milliseconds(7000));
  CHECK(parse_retry_after(" 0 ", now) == Milliseconds(0));
  CHECK(parse_retry_after("Tue, 14 Jul 2026 03:34:20 GMT", now) == Milliseconds(60000));
  CHECK(parse_retry_after("Tue, 14 Jul 2026 03:30:00 GMT", now) == Milliseconds(0));
  CHECK_FALSE(parse_retry_after("", now));
  CHECK_FALSE(parse_retry_after("soon", now));
  CHECK_FALSE(parse_retry_after("-5", now));
}

TEST_CASE("JWT exp claim") {
  // {"alg":"none"} . {"exp":1800000000,"sub":"x"} . sig, base64url without padding
  CHECK(jwt_expiry("eyJhbGciOiJub25lIn0.eyJleHAiOjE4MDAwMDAwMDAsInN1YiI6IngifQ.c2ln") ==
        TimePoint(std::chrono::seconds(1800000000)));
  CHECK_FALSE(jwt_expiry("opaque-token"));
  CHECK_FALSE(jwt_expiry("a.b"));
  CHECK_FALSE(jwt_expiry("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln"));  // no exp
}

TEST_CASE("a huge Retry-After is capped at the retry policy's max_delay") {
  const auto now = Clock::now();
  CHECK(bounded_retry_after(parse_retry_after("99999999", now), 60s) == Milliseconds(60s));
  CHECK(bounded_retry_after(parse_retry_after("7", now), 60s) == Milliseconds(7s));
  CHECK_FALSE(bounded_retry_after(parse_retry_after("", now), 60s));
}

TEST_CASE("media types compare without parameters and letter case") {
  CHECK(is_media_type("text/csv;charset=UTF-8;header=present", "text/csv"));
  CHECK(is_media_type(" Text/CSV ; charset=utf-8", "text/csv"));
  CHECK(is_media_type("application/json", "application/json"));
  CHECK_FALSE(is_media_type("application/json; charset=utf-8", "text/csv"));
  CHECK_FALSE(is_media_type("text/csvx", "text/csv"));
  CHECK_FALSE(is_media_type("", "text/csv"));
  CHECK(file_media_type(config::FileFormat::xlsx) ==
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
}

TEST_CASE("a 200 is the file only in the format's media type and with a verifiable end") {
  using config::FileFormat;
  CHECK(unpublishable_body("text/csv;charset=UTF-8;header=present", FileFormat::csv, true, false).empty());
  CHECK(unpublishable_body("application/json", FileFormat::json, true, true).empty());
  // An error JSON with status 200 is not the CSV.
  const auto wrong = unpublishable_body("application/json", FileFormat::csv, true, false);
  CHECK(wrong.find("application/json") != std::string::npos);
  CHECK(wrong.find("text/csv") != std::string::npos);
  CHECK_FALSE(unpublishable_body("", FileFormat::xlsx, true, false).empty());
  CHECK_FALSE(unpublishable_body("text/csv", FileFormat::xlsx, true, false).empty());
  // Ended by the connection closing: trusted only when a gzip trailer vouches for the end.
  CHECK(unpublishable_body("text/csv", FileFormat::csv, false, false).find("Content-Length") != std::string::npos);
  CHECK(unpublishable_body("text/csv", FileFormat::csv, false, true).empty());
}
