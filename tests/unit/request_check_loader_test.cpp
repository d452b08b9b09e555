// The request checks as the loader reports them: FILE:LINE:COL at the offending YAML node, and for a
// filter at the offending character inside it.
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <string>

#include "config/config_loader.hpp"
#include "temp_dir.hpp"

using namespace apsis::config;

namespace {

// An accounts section and one export "dupes" of `kind`, its request body being `request` (indented
// by six spaces). The body starts on line 13.
std::string config_with_request(std::string_view kind, std::string_view request) {
  return "state_db: state.db\n"
         "output_dir: out\n"
         "accounts:\n"
         "  main:\n"
         "    base_url: https://api.apsis.one\n"
         "    client_id: id\n"
         "    client_secret: secret\n"
         "exports:\n"
         "  dupes:\n"
         "    account: main\n"
         "    kind: " +
         std::string(kind) +
         "\n"
         "    request:\n" +
         std::string(request);
}

LoadResult load_request(std::string_view kind, std::string_view request,
                        std::map<std::string, std::string> env = {}) {
  TempDir dir;
  LoadOptions options;
  options.env = [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  options.zoneinfo_dir = dir.path() / "no-zoneinfo";  // not there: time zone names go unchecked
  return load_config_string(config_with_request(kind, request), dir.path() / "apsis.yaml", options);
}

std::string listed(const LoadResult& result) {
  std::string text;
  for (const auto& error : result.errors) text += error.to_string() + "\n";
  return text;
}

// "LINE:COL: MESSAGE" of the only error.
std::string only_error(const LoadResult& result) {
  INFO(listed(result));
  REQUIRE(result.errors.size() == 1);
  const auto& error = result.errors[0];
  return std::to_string(error.line) + ":" + std::to_string(error.column) + ": " + error.message;
}

}  // namespace

TEST_CASE("loader: an unknown segment in the filter is reported at its column in the file") {
  // Line 15; the quote is column 17, so "europ" (column 3 of the filter) is column 20.
  const auto quoted = load_request("duplicates",
                                   "      segments:\n"
                                   "        segment_discriminators: { women: w-1, europe: e-1 }\n"
                                   "        filter: \"!(europ) & women\"\n");
  CHECK(only_error(quoted) ==
        "15:20: exports.dupes.request.segments.filter: unknown segment 'europ' at column 3 (defined: europe, women); "
        "did you mean 'europe'?");

  // Plain: the filter starts at column 17, so its column 9 is column 25.
  const auto plain = load_request("duplicates",
                                  "      segments:\n"
                                  "        segment_discriminators: { women: w-1 }\n"
                                  "        filter: women & wmen)\n");
  const auto errors = listed(plain);
  CHECK(errors.find(":15:25: exports.dupes.request.segments.filter: unknown segment 'wmen' at column 9") !=
        std::string::npos);
  CHECK(errors.find(":15:29: exports.dupes.request.segments.filter: unbalanced parenthesis: ')' at column 13") !=
        std::string::npos);

  // From the environment: the text is not in the file, so the error points at the value.
  const auto expanded = load_request("duplicates",
                                     "      segments:\n"
                                     "        segment_discriminators: { women: w-1 }\n"
                                     "        filter: \"${FILTER}\"\n",
                                     {{"FILTER", "women |"}});
  CHECK(only_error(expanded) ==
        "15:17: exports.dupes.request.segments.filter: expression ends after '|' at column 7; expected a segment "
        "name, '!' or '('");
}

TEST_CASE("loader: a misspelt request key is reported at the key, a wrong type at the value") {
  const auto typo = load_request("consents", "      section_discriminator: s-1\n      chanels: []\n");
  CHECK(only_error(typo) ==
        "14:7: exports.dupes.request.chanels: unknown key 'chanels'; did you mean 'channels'? (sent as written, the "
        "API would likely ignore it)");

  const auto wrong_type = load_request("duplicates",
                                       "      attributes:\n"
                                       "        - { field_name: email, attribute_version_id: v-1 }\n"
                                       "        - { field_name: 12345, attribute_version_id: v-2 }\n");
  CHECK(only_error(wrong_type) ==
        "15:25: exports.dupes.request.attributes[1].field_name: expected a string, got the number 12345 (write it "
        "in quotes)");

  const auto missing = load_request("duplicates", "      segments:\n        segment_discriminators: { women: w-1 }\n");
  CHECK(only_error(missing).starts_with("13:7: exports.dupes.request.segments: missing required key 'filter'"));
}

TEST_CASE("loader: a body with conversion errors is not checked further") {
  const auto result = load_request("duplicates", "      segments: { filter: \"${UNSET}\" }\n");
  INFO(listed(result));
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].message.find("UNSET is not set") != std::string::npos);
}

TEST_CASE("loader: segments and events request problems are reported at their key") {
  const auto both = load_request("segments", "      segment_discriminator: s-1\n      segment_definition: q\n");
  CHECK(only_error(both) ==
        "14:7: exports.dupes.request.segment_definition: not allowed together with segment_discriminator: expected "
        "exactly one (an existing segment, or one defined by AQL)");

  const auto neither = load_request("segments", "      known_only: true\n");
  CHECK(only_error(neither) ==
        "13:7: exports.dupes.request: missing segment_discriminator (an existing segment, e.g. "
        "usercreated.segments.women-rjz6b8td2n) or segment_definition (an AQL query): expected exactly one");

  const auto no_columns = load_request("events", "      attributes: []\n      start_at: \"2024-03-01\"\n");
  CHECK(only_error(no_columns) ==
        "13:7: exports.dupes.request.attributes: expected at least one attribute or tag (a non-empty attributes or "
        "tags list), or no profile appears in the file");

  const auto no_start = load_request("events", "      tags: [vip]\n      events: [e-1]\n");
  CHECK(only_error(no_start) ==
        "14:7: exports.dupes.request.events: start_at is required with events: set start_at in the request, or "
        "window: on the export (the daemon then sets start_at for each job)");

  const auto number = load_request("events", "      tags: [vip]\n      end_at: 20240301\n");
  CHECK(only_error(number) ==
        "14:15: exports.dupes.request.end_at: expected a string (a date and time), got the number 20240301 (write it "
        "in quotes)");
}

TEST_CASE("loader: an events export with a window needs no start_at") {
  TempDir dir;
  LoadOptions options;
  options.env = [](const std::string&) { return std::optional<std::string>(); };
  options.zoneinfo_dir = dir.path() / "no-zoneinfo";
  const auto result = load_config_string(config_with_request("events", "      tags: [vip]\n      events: [e-1]\n") +
                                              "    window: 1d\n",
                                          dir.path() / "apsis.yaml", options);
  CHECK_MESSAGE(result.config, listed(result));
}
