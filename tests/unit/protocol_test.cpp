#include <doctest/doctest.h>

#include "apsis/protocol.hpp"

using namespace apsis;
using namespace apsis::apsis_one;
using namespace std::chrono_literals;

namespace {
constexpr const char* kGatewayBody = R"({"message":"User is not authorized to access this resource with an explicit deny"})";
}

TEST_CASE("poll answers follow the documented protocol") {
  CHECK(classify(Call::poll, 200, "") == Verdict::success);
  CHECK(classify(Call::poll, 404, "") == Verdict::in_progress);
  CHECK(classify(Call::poll, 410, "") == Verdict::gone);
  CHECK(classify(Call::poll, 429, "") == Verdict::rate_limited);
  CHECK(classify(Call::poll, 503, "") == Verdict::transient);
  CHECK(classify(Call::poll, 400, "") == Verdict::permanent);
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
