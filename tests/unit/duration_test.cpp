#include "util/duration.hpp"

#include <doctest/doctest.h>

#include <limits>

using Duration = apsis::Milliseconds;
using apsis::format_duration;
using apsis::parse_duration;
using namespace std::chrono_literals;

namespace {

// The error message parse_duration gives for `text`, or "" when it parses.
std::string duration_error(std::string_view text) {
  std::string error;
  if (parse_duration(text, &error)) return "";
  return error;
}

}  // namespace

TEST_CASE("parse_duration reads each unit") {
  CHECK(parse_duration("1500ms") == Duration(1500));
  CHECK(parse_duration("10s") == Duration(10s));
  CHECK(parse_duration("5m") == Duration(5min));
  CHECK(parse_duration("2h") == Duration(2h));
  CHECK(parse_duration("1d") == Duration(24h));
  CHECK(parse_duration("0s") == Duration(0));
  CHECK(parse_duration("007s") == Duration(7s));
}

TEST_CASE("parse_duration reads compounds, largest unit first") {
  CHECK(parse_duration("1h30m") == Duration(90min));
  CHECK(parse_duration("1d2h3m4s5ms") == Duration(24h + 2h + 3min + 4s + 5ms));
  CHECK(parse_duration("1m30ms") == Duration(1min + 30ms));
  CHECK(parse_duration("90m") == Duration(90min));  // a part may exceed the next unit
}

TEST_CASE("parse_duration rejects malformed text with a message") {
  CHECK(duration_error("").find("empty duration") != std::string::npos);
  CHECK(duration_error("10") == "missing unit in '10': use ms, s, m, h or d");
  CHECK(duration_error("1h30").find("missing unit in '1h30'") != std::string::npos);
  CHECK(duration_error("10x") == "unknown unit 'x' in '10x': use ms, s, m, h or d");
  CHECK(duration_error("10sec").find("unknown unit 'sec'") != std::string::npos);
  CHECK(duration_error("10S").find("unknown unit 'S'") != std::string::npos);
  CHECK(duration_error("-5s").find("negative") != std::string::npos);
  CHECK(duration_error("+5s").find("unexpected '+'") != std::string::npos);
  CHECK(duration_error("1h 30m").find("spaces are not allowed") != std::string::npos);
  CHECK(duration_error(" 5s").find("spaces") != std::string::npos);
  CHECK(duration_error("5s ").find("spaces") != std::string::npos);
  CHECK(duration_error("10 s").find("spaces") != std::string::npos);
  CHECK(duration_error("1.5h").find("fractions are not allowed") != std::string::npos);
  CHECK(duration_error("s").find("unexpected 's'") != std::string::npos);
  CHECK(duration_error("30m1h").find("units out of order") != std::string::npos);
  CHECK(duration_error("1h1h").find("units out of order") != std::string::npos);
  CHECK(duration_error("5ms1s").find("units out of order") != std::string::npos);
}

TEST_CASE("parse_duration rejects values that overflow milliseconds") {
  // The largest representable value is a little over 106 751 991 167 days.
  CHECK(parse_duration("106751991167d").has_value());
  CHECK(duration_error("106751991168d").find("too large") != std::string::npos);
  CHECK(duration_error("99999999999999999999ms").find("too large") != std::string::npos);
  CHECK(duration_error("9223372036854775807ms").empty());
  CHECK(duration_error("9223372036854775807ms1ms").find("units out of order") != std::string::npos);
  CHECK(duration_error("106751991167d7h").empty());
  CHECK(duration_error("106751991167d8h").find("too large") != std::string::npos);
}

TEST_CASE("parse_duration without an error pointer just returns nullopt") {
  CHECK_FALSE(parse_duration("10").has_value());
  CHECK_FALSE(parse_duration("abc", nullptr).has_value());
}

TEST_CASE("format_duration gives the shortest compound text") {
  CHECK(format_duration(Duration(0)) == "0s");
  CHECK(format_duration(Duration(250)) == "250ms");
  CHECK(format_duration(Duration(90min)) == "1h30m");
  CHECK(format_duration(Duration(24h + 1s)) == "1d1s");
  CHECK(format_duration(Duration(1500)) == "1s500ms");
  CHECK(format_duration(Duration(5min)) == "5m");
  CHECK(format_duration(Duration(-10s)) == "-10s");
  CHECK_FALSE(format_duration(Duration(std::numeric_limits<Duration::rep>::min())).empty());
}

TEST_CASE("format_duration and parse_duration round-trip") {
  for (const auto value : {Duration(1), Duration(999), Duration(61s), Duration(25h + 1min + 1ms), Duration(7 * 24h),
                           Duration(std::numeric_limits<Duration::rep>::max())}) {
    CAPTURE(value.count());
    CHECK(parse_duration(format_duration(value)) == value);
  }
}
