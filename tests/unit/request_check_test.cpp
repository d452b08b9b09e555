#include <doctest/doctest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "config/request_check.hpp"
#include "config/segment_filter.hpp"

using namespace apsis::config;
namespace json = boost::json;

namespace {

std::vector<RequestProblem> check(ExportKind kind, std::string_view body_json) {
  return check_request(kind, json::parse(body_json));
}

std::string describe(const std::vector<RequestProblem>& problems) {
  std::string text;
  for (const auto& problem : problems) {
    std::string path;
    for (const auto& step : problem.path) path += (path.empty() ? "" : ".") + step;
    text += "[" + path + "] " + problem.message + " (column " + std::to_string(problem.column) + ")\n";
  }
  return text;
}

// The one problem, which must sit at `path` and say `words`.
void check_only(const std::vector<RequestProblem>& problems, const std::vector<std::string>& path,
                std::initializer_list<std::string_view> words, int column = 0) {
  INFO(describe(problems));
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == path);
  CHECK(problems[0].column == column);
  for (auto word : words) CHECK_MESSAGE(problems[0].message.find(word) != std::string::npos, word);
}

// The filter's single error (column, message), with `women` and `europe` defined.
FilterError filter_error(std::string_view expression) {
  const auto errors = check_segment_filter(expression, {"women", "europe"});
  INFO(expression);
  REQUIRE(errors.size() == 1);
  return errors[0];
}

}  // namespace

TEST_CASE("the request bodies of config/example.yaml and config/demo.yaml pass") {
  const auto duplicates = R"({
    "segments": {
      "timezone": "Europe/Stockholm",
      "segment_discriminators": {"women": "usercreated.segments.women-rjz6b8td2n",
                                 "europe": "usercreated.segments.europe-d8jye63u2y"},
      "filter": "!(europe) & women"},
    "consent_list_discriminator": "usercreated.targets.fashion-ufk6unuwec",
    "topic_discriminators": ["usercreated.topics.shoes-8u78kijgzn", "usercreated.topics.hats-udj7e6ywh3"],
    "channel_discriminator": "com.apsis1.channels.email",
    "attributes": [{"field_name": "email", "attribute_version_id": "5c2f4a6e-8a4d-4c8b-9a51-3f0e7d2b6c11"},
                   {"field_name": "first_name", "attribute_version_id": "9d7b1e20-46f3-4e6a-8f0c-2a5b8c1d4e77"}]})";
  CHECK(describe(check(ExportKind::duplicates, duplicates)).empty());

  const auto consents = R"({
    "section_discriminator": "usercreated.sections.webshop-se-7h2k9x4m1q",
    "segments": {"timezone": "Europe/Stockholm",
                 "segment_discriminators": {"customers": "usercreated.segments.customers-k3v9q2w8ze"},
                 "filter": "customers"},
    "consent_list_discriminator": "usercreated.targets.newsletter-p4m8s1t6yd",
    "topic_discriminators": ["usercreated.topics.weekly-offers-b2n5c8v1xq"],
    "channels": [{"field_name": "email_consent", "channel_discriminator": "com.apsis1.channels.email"},
                 {"field_name": "sms_consent", "channel_discriminator": "com.apsis1.channels.sms"}],
    "attributes": [{"field_name": "email", "attribute_version_id": "5c2f4a6e-8a4d-4c8b-9a51-3f0e7d2b6c11"}]})";
  CHECK(describe(check(ExportKind::consents, consents)).empty());

  const auto demo_consents = R"({"section_discriminator": "com.apsis1.sections.default",
    "consent_list_discriminator": "usercreated.targets.fashion-ufk6unuwec",
    "channel_discriminator": "com.apsis1.channels.sms"})";
  CHECK(describe(check(ExportKind::consents, demo_consents)).empty());
}

TEST_CASE("nothing at the top level is required, and undocumented keys far from documented ones pass") {
  CHECK(check(ExportKind::duplicates, "{}").empty());
  CHECK(check(ExportKind::consents, "{}").empty());
  // The extras of tests/unit/config_test.cpp: the API may know more than its documentation shows.
  const auto extras = R"({"segments": {"segment_discriminators": {"women": "usercreated.segments.women-rjz6b8td2n"},
                                       "filter": "women"},
    "topic_discriminators": ["usercreated.topics.shoes-8u78kijgzn"],
    "limit": 100, "ratio": 0.5, "enabled": true, "nothing": null, "code": "007", "export_key": "email"})";
  CHECK(describe(check(ExportKind::duplicates, extras)).empty());
  // Documented for consents only, yet not wrong in a duplicates body.
  CHECK(check(ExportKind::duplicates, R"({"section_discriminator": "s", "channels": 1})").empty());
  // The reference page shows no shape for tags.
  CHECK(check(ExportKind::duplicates, R"({"tags": [{"x": 1}]})").empty());
}

TEST_CASE("a body that is not a mapping is one problem at the body itself") {
  check_only(check_request(ExportKind::duplicates, json::value(3)), {}, {"expected a mapping", "got the number 3"});
}

TEST_CASE("segments needs one map of names and a filter") {
  check_only(check(ExportKind::duplicates, R"({"segments": {"filter": "a"}})"), {"segments"},
             {"missing segment_discriminators", "segment_definitions"});
  check_only(check(ExportKind::duplicates, R"({"segments": {"timezone": "UTC"}})"), {"segments"},
             {"missing segment_discriminators"});
  check_only(check(ExportKind::duplicates, R"({"segments": {"segment_discriminators": {"s": "d"}}})"), {"segments"},
             {"missing required key 'filter'", "!(europe) & women"});
  CHECK(check(ExportKind::duplicates, R"({"segments": {"segment_definitions": {"big": "q"}, "filter": "big"}})").empty());
}

TEST_CASE("segment_discriminators and segment_definitions together are an error at the second key") {
  const auto problems = check(ExportKind::duplicates, R"({"segments": {
    "segment_discriminators": {"women": "usercreated.segments.women-rjz6b8td2n"},
    "segment_definitions": {"opened": "some AQL"}, "filter": "women | opened"}})");
  check_only(problems, {"segments", "segment_definitions"}, {"not allowed together with segment_discriminators"});
  CHECK(problems[0].at_key);
}

TEST_CASE("wrong types are reported with their path below the request") {
  check_only(check(ExportKind::duplicates, R"({"attributes": [{"field_name": "email", "attribute_version_id": "a"},
                                                             {"field_name": 12345, "attribute_version_id": "b"}]})"),
             {"attributes", "1", "field_name"}, {"expected a string", "got the number 12345", "quotes"});
  check_only(check(ExportKind::duplicates, R"({"attributes": [{"field_name": "email"}]})"), {"attributes", "0"},
             {"missing required key 'attribute_version_id'"});
  check_only(check(ExportKind::duplicates, R"({"attributes": {"field_name": "email"}})"), {"attributes"},
             {"expected a list", "field_name and attribute_version_id", "got a mapping"});
  check_only(check(ExportKind::duplicates, R"({"attributes": ["email"]})"), {"attributes", "0"},
             {"expected a mapping with field_name and attribute_version_id", "got a string"});
  check_only(check(ExportKind::duplicates, R"({"topic_discriminators": "usercreated.topics.shoes"})"),
             {"topic_discriminators"}, {"expected a list of discriminators", "got a string"});
  check_only(check(ExportKind::duplicates, R"({"topic_discriminators": ["a", ""]})"), {"topic_discriminators", "1"},
             {"must not be empty"});
  check_only(check(ExportKind::duplicates, R"({"channel_discriminator": true})"), {"channel_discriminator"},
             {"expected a string", "got true"});
  check_only(check(ExportKind::duplicates, R"({"consent_list_discriminator": null})"),
             {"consent_list_discriminator"}, {"expected a string", "got nothing"});
  check_only(check(ExportKind::duplicates, R"({"segments": ["women"]})"), {"segments"},
             {"expected a mapping", "got a list"});
  check_only(check(ExportKind::duplicates, R"({"segments": {"timezone": "Europe Stockholm",
                                                            "segment_discriminators": {"s": "d"}, "filter": "s"}})"),
             {"segments", "timezone"}, {"invalid time zone 'Europe Stockholm'"});
  check_only(check(ExportKind::duplicates, R"({"segments": {"segment_discriminators": {"s": 1}, "filter": "s"}})"),
             {"segments", "segment_discriminators", "s"}, {"expected a string", "segment discriminator"});
  check_only(check(ExportKind::duplicates, R"({"segments": {"segment_discriminators": ["s"], "filter": "s"}})"),
             {"segments", "segment_discriminators"}, {"expected a mapping of short names"});
  check_only(check(ExportKind::duplicates, R"({"segments": {"segment_discriminators": {"s": "d"}, "filter": 1}})"),
             {"segments", "filter"}, {"expected a string", "expression"});
}

TEST_CASE("consents: section_discriminator is a string; one channel_discriminator or a channels list") {
  check_only(check(ExportKind::consents, R"({"section_discriminator": 7})"), {"section_discriminator"},
             {"expected a string"});
  const auto both = check(ExportKind::consents, R"({"channel_discriminator": "com.apsis1.channels.sms",
    "channels": [{"field_name": "sms", "channel_discriminator": "com.apsis1.channels.sms"}]})");
  check_only(both, {"channels"}, {"not allowed together with channel_discriminator"});
  check_only(check(ExportKind::consents, R"({"channels": [{"field_name": "sms"}]})"), {"channels", "0"},
             {"missing required key 'channel_discriminator'"});
  check_only(check(ExportKind::consents, R"({"channels": [{"field_name": "sms", "channel_discriminator": ""}]})"),
             {"channels", "0", "channel_discriminator"}, {"must not be empty"});
}

TEST_CASE("an unknown key one or two typos from a documented one is reported at the key") {
  const auto problems = check(ExportKind::duplicates, R"({"segmnts": {"filter": "a"}})");
  check_only(problems, {"segmnts"}, {"unknown key 'segmnts'", "did you mean 'segments'?"});
  CHECK(problems[0].at_key);
  check_only(check(ExportKind::duplicates, R"({"topic_discriminator": ["t"]})"), {"topic_discriminator"},
             {"did you mean 'topic_discriminators'?"});
  check_only(check(ExportKind::consents, R"({"sectoin_discriminator": "s"})"), {"sectoin_discriminator"},
             {"did you mean 'section_discriminator'?"});
  check_only(check(ExportKind::duplicates, R"({"segments": {"segment_discriminators": {"s": "d"}, "filter": "s",
                                                            "timezon": "UTC"}})"),
             {"segments", "timezon"}, {"did you mean 'timezone'?"});
  check_only(check(ExportKind::duplicates, R"({"attributes": [{"field_name": "e", "attribute_version_id": "v",
                                                               "fieldname": "x"}]})"),
             {"attributes", "0", "fieldname"}, {"did you mean 'field_name'?"});
}

TEST_CASE("filter errors are reported at their column inside the filter") {
  const auto problems = check(ExportKind::duplicates, R"({"segments": {
    "segment_discriminators": {"women": "usercreated.segments.women-rjz6b8td2n",
                               "europe": "usercreated.segments.europe-d8jye63u2y"},
    "filter": "!(europ) & women"}})");
  check_only(problems, {"segments", "filter"},
             {"unknown segment 'europ' at column 3 (defined: europe, women); did you mean 'europe'?"}, 3);

  check_only(check(ExportKind::duplicates, R"j({"segments": {"segment_discriminators": {"s": "d"},
                                                             "filter": "s & (s | s))"}})j"),
             {"segments", "filter"}, {"unbalanced parenthesis: ')' at column 12 has no matching '('"}, 12);
}

TEST_CASE("without a usable map of names the filter's syntax is still checked") {
  const auto problems = check(ExportKind::duplicates, R"({"segments": {"filter": "a &"}})");
  INFO(describe(problems));
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].message.find("missing segment_discriminators") != std::string::npos);
  CHECK(problems[1].message == "expression ends after '&' at column 3; expected a segment name, '!' or '('");
  CHECK(problems[1].column == 3);
}

TEST_CASE("segment filter syntax errors say what and where") {
  struct Case {
    std::string_view expression;
    int column;
    std::string_view message;
  };
  const Case cases[] = {
      {"", 1, "empty expression"},
      {"   ", 4, "empty expression"},
      {"women &", 7, "expression ends after '&' at column 7; expected a segment name, '!' or '('"},
      {"!", 1, "expression ends after '!' at column 1"},
      {"(women", 1, "unbalanced parenthesis: '(' at column 1 is never closed"},
      {"((women) & europe", 1, "unbalanced parenthesis: '(' at column 1 is never closed"},
      {"women)", 6, "unbalanced parenthesis: ')' at column 6 has no matching '('"},
      {"women & )", 9, "unexpected ')' at column 9; expected a segment name, '!' or '('"},
      {"women & ()", 9, "empty parentheses at column 9"},
      {"& women", 1, "unexpected '&' at column 1; expected a segment name, '!' or '('"},
      {"women | & europe", 9, "unexpected '&' at column 9"},
      {"women && europe", 7, "'&&' at column 7: write a single '&'"},
      {"women || europe", 7, "'||' at column 7: write a single '|'"},
      {"women europe", 7, "missing '&' or '|' before 'europe' at column 7"},
      {"women !europe", 7, "missing '&' or '|' before '!' at column 7"},
      {"(women) (europe)", 9, "missing '&' or '|' before '(' at column 9"},
      {"women and europe", 7, "'and' at column 7 is not an operator: write '&'"},
      {"women OR europe", 7, "'OR' at column 7 is not an operator: write '|'"},
      {"women, europe", 6, "unexpected ',' at column 6: a filter is segment names"},
      {"women & ~europe", 9, "unexpected '~' at column 9"},
      {"women & \xc3\xa9urope", 9, "unexpected '\xc3\xa9' at column 9"},
      {"women &\x01", 8, "unexpected control character 1 at column 8"},
  };
  for (const auto& c : cases) {
    const auto error = filter_error(c.expression);
    INFO(c.expression, " -> ", error.message);
    CHECK(error.column == c.column);
    CHECK(error.message.find(c.message) != std::string::npos);
  }
}

TEST_CASE("segment filters that parse, and the names they use") {
  for (const auto* expression : {"women", "!(europe) & women", " women|europe ", "!!women", "(((women)))",
                                 "women & !europe | europe & !women", "\twomen\n&\reurope"})
    CHECK_MESSAGE(check_segment_filter(expression, {"women", "europe"}).empty(), expression);
  const auto syntax = parse_segment_filter("a.b & (c_d | x-1)");
  REQUIRE_FALSE(syntax.error.has_value());
  REQUIRE(syntax.names.size() == 3);
  CHECK(syntax.names[0].name == "a.b");
  CHECK(syntax.names[1].name == "c_d");
  CHECK(syntax.names[1].column == 8);
  CHECK(syntax.names[2].name == "x-1");
}

TEST_CASE("every unknown name is reported once, with the syntax error, in column order") {
  const auto errors = check_segment_filter("wmen | men | wmen | (europe", {"women", "europe"});
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].column == 1);
  CHECK(errors[0].message.find("did you mean 'women'?") != std::string::npos);
  CHECK(errors[1].column == 8);
  CHECK(errors[1].message.find("unknown segment 'men' at column 8") != std::string::npos);
  CHECK(errors[2].column == 21);
  CHECK(errors[2].message.find("never closed") != std::string::npos);

  const auto none = check_segment_filter("a", {});
  REQUIRE(none.size() == 1);
  CHECK(none[0].message == "unknown segment 'a' at column 1 (no segments are defined)");
  // Far from every defined name: no suggestion.
  CHECK(filter_error("zzz").message.find("did you mean") == std::string::npos);
}

TEST_CASE("a filter nested absurdly deep is an error, not a stack overflow") {
  const std::string deep = std::string(100'000, '(') + "women" + std::string(100'000, ')');
  const auto error = filter_error(deep);
  CHECK(error.message.find("nested more than 100 deep") != std::string::npos);
  CHECK(error.column == 101);
  CHECK(check_segment_filter(std::string(100'000, '!') + "women", {"women"}).empty());
  CHECK(check_segment_filter(std::string(100, '(') + "women" + std::string(100, ')'), {"women"}).empty());
}

TEST_CASE("huge names get no suggestion, and cost no quadratic time") {
  const std::string huge(200'000, 'a');
  const auto errors = check_segment_filter(huge, {huge + "b"});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message.find("did you mean") == std::string::npos);
}

TEST_CASE("segments exports: exactly one of segment_discriminator and segment_definition") {
  CHECK(check(ExportKind::segments, R"({"segment_discriminator": "usercreated.segments.women-rjz6b8td2n"})").empty());
  CHECK(check(ExportKind::segments, R"({"segment_definition": "some AQL", "known_only": true})").empty());
  check_only(check(ExportKind::segments, "{}"), {},
             {"missing segment_discriminator (an existing segment, e.g. usercreated.segments.women-rjz6b8td2n) or "
              "segment_definition (an AQL query): expected exactly one"});
  const auto both = check(ExportKind::segments, R"({"segment_discriminator": "s-1", "segment_definition": "q"})");
  check_only(both, {"segment_definition"},
             {"not allowed together with segment_discriminator: expected exactly one (an existing segment, or one "
              "defined by AQL)"});
  CHECK(both[0].at_key);
  check_only(check(ExportKind::segments, R"({"segment_discriminator": 7})"), {"segment_discriminator"},
             {"expected a string (a discriminator), got the number 7"});
  check_only(check(ExportKind::segments, R"({"segment_definition": ""})"), {"segment_definition"},
             {"must not be empty"});
  // The plural is the duplicates/consents spelling: one typo away, so taken for one.
  const auto plural = check(ExportKind::segments, R"({"segment_discriminators": "s-1"})");
  INFO(describe(plural));
  CHECK(plural.size() == 2);
  CHECK(describe(plural).find("did you mean 'segment_discriminator'?") != std::string::npos);
}

TEST_CASE("events exports: an attribute or a tag, and start_at with events unless the daemon sets it") {
  CHECK(check(ExportKind::events, R"({"attributes": ["a-1"]})").empty());
  CHECK(check(ExportKind::events, R"({"tags": ["t-1"], "attributes": []})").empty());
  CHECK(check(ExportKind::events, R"({"tags": ["t"], "events": ["e"], "start_at": "s", "end_at": "e",
                                      "segment_filter": {"anything": [1]}})")
            .empty());
  CHECK(check(ExportKind::events, R"({"tags": ["t"], "events": []})").empty());  // no events: no start_at needed

  const std::string_view none = "expected at least one attribute or tag (a non-empty attributes or tags list), or no "
                                "profile appears in the file";
  check_only(check(ExportKind::events, "{}"), {}, {none});
  check_only(check(ExportKind::events, R"({"attributes": [], "tags": []})"), {"attributes"}, {none});
  check_only(check(ExportKind::events, R"({"tags": []})"), {"tags"}, {none});
  check_only(check(ExportKind::events, R"({"tags": "vip"})"), {"tags"}, {"expected a list, got a string"});
  check_only(check(ExportKind::events, R"({"tags": ["t"], "events": "e"})"), {"events"},
             {"expected a list, got a string"});

  const auto no_start = check(ExportKind::events, R"({"tags": ["t"], "events": ["e"]})");
  check_only(no_start, {"events"},
             {"start_at is required with events: set start_at in the request, or window: on the export (the daemon "
              "then sets start_at for each job)"});
  CHECK(no_start[0].at_key);
  CHECK(check_request(ExportKind::events, json::parse(R"({"tags": ["t"], "events": ["e"]})"), true).empty());

  check_only(check(ExportKind::events, R"({"tags": ["t"], "start_at": 1700000000})"), {"start_at"},
             {"expected a string (a date and time), got the number 1700000000"});
  check_only(check(ExportKind::events, R"({"tags": ["t"], "end_at": ""})"), {"end_at"}, {"must not be empty"});
  check_only(check(ExportKind::events, R"({"tags": ["t"], "start_att": "s"})"), {"start_att"},
             {"did you mean 'start_at'?"});
}
