#include "config/output_template.hpp"

#include "config/config_loader.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

using namespace apsis::config;
using namespace std::chrono_literals;

namespace {

// 2024-03-05 06:07:08.9 UTC
const auto kScheduled = std::chrono::sys_days{std::chrono::year{2024} / 3 / 5} + 6h + 7min + 8s + 900ms;

TemplateValues sample_values() { return {"duplicate-emails", 42, kScheduled, "csv.gz"}; }

std::string expand(std::string_view tmpl) { return expand_output_template(tmpl, sample_values()); }

// The error check_output_template gives, or "" for a valid template.
std::string template_error(std::string_view tmpl) { return check_output_template(tmpl).value_or(""); }

}  // namespace

TEST_CASE("file_extension names format and compression") {
  CHECK(file_extension(FileFormat::csv, Compression::none) == "csv");
  CHECK(file_extension(FileFormat::csv, Compression::gzip) == "csv.gz");
  CHECK(file_extension(FileFormat::xlsx, Compression::none) == "xlsx");
  CHECK(file_extension(FileFormat::xlsx, Compression::gzip) == "xlsx.gz");
  CHECK(file_extension(FileFormat::json, Compression::none) == "json");
  CHECK(file_extension(FileFormat::json, Compression::gzip) == "json.gz");
}

TEST_CASE("the default template of ExportDefinition is valid and expands") {
  const ExportDefinition definition;
  CHECK_FALSE(check_output_template(definition.output_template).has_value());
  CHECK(expand(definition.output_template) == "duplicate-emails/duplicate-emails-20240305T060708Z.csv.gz");
}

TEST_CASE("placeholders expand") {
  CHECK(expand("{export}") == "duplicate-emails");
  CHECK(expand("{job}") == "42");
  CHECK(expand("{ext}") == "csv.gz");
  CHECK(expand("{scheduled}") == "20240305T060708Z");
  CHECK(expand("{scheduled:%Y-%m-%d}") == "2024-03-05");
  CHECK(expand("{scheduled:%F_%H%M}") == "2024-03-05_0607");
  CHECK(expand("{scheduled:%j}") == "065");
  CHECK(expand("{scheduled:100%%}") == "100%");
  CHECK(expand("a-{job}-{job}.{ext}") == "a-42-42.csv.gz");
  CHECK(expand("plain.csv") == "plain.csv");
}

TEST_CASE("{scheduled:FMT} may make subdirectories") {
  CHECK(expand("{export}/{scheduled:%Y/%m/%d}/{job}.{ext}") == "duplicate-emails/2024/03/05/42.csv.gz");
}

TEST_CASE("doubled braces are literal braces") {
  CHECK(expand("{{x}}-{job}") == "{x}-42");
  CHECK(expand("a{{{job}}}b") == "a{42}b");
  CHECK(template_error("{{}}").empty());
}

TEST_CASE("the time is formatted in UTC, whole seconds, also before 1970") {
  TemplateValues values = sample_values();
  values.scheduled = std::chrono::system_clock::time_point{} - 500ms;
  CHECK(expand_output_template("{scheduled}", values) == "19691231T235959Z");
}

TEST_CASE("check_output_template rejects invalid templates with a reason") {
  CHECK(template_error("").find("empty") != std::string::npos);
  CHECK(template_error("/abs/{job}").find("absolute") != std::string::npos);
  CHECK(template_error("../{job}").find("'..'") != std::string::npos);
  CHECK(template_error("a/../{job}").find("'..'") != std::string::npos);
  CHECK(template_error("a/..").find("'..'") != std::string::npos);
  CHECK(template_error("{scheduled:..}/x").find("'..'") != std::string::npos);
  CHECK(template_error("./{job}").find("'.'") != std::string::npos);
  CHECK(template_error("a//{job}").find("empty path component") != std::string::npos);
  CHECK(template_error("{scheduled:%Y//%m}").find("empty path component") != std::string::npos);
  CHECK(template_error("{export}/").find("ends with '/'") != std::string::npos);
  CHECK(template_error("{export}{scheduled:/%Y/}").find("ends with '/'") != std::string::npos);
  CHECK(template_error(std::string("a\0b", 3)).find("control character") != std::string::npos);
  CHECK(template_error("a\nb").find("control character") != std::string::npos);
  CHECK(template_error("{scheduled:%Y\t}").find("control character") != std::string::npos);
  CHECK(template_error(std::string(300, 'a')).find("longer than 255") != std::string::npos);
}

TEST_CASE("check_output_template names an unknown placeholder") {
  const auto error = template_error("{export}/{date}.csv");
  CHECK(error.find("unknown placeholder '{date}'") != std::string::npos);
  CHECK(error.find("{scheduled:FORMAT}") != std::string::npos);
  CHECK(template_error("{}").find("unknown placeholder '{}'") != std::string::npos);
  CHECK(template_error("{Export}").find("unknown placeholder '{Export}'") != std::string::npos);
  CHECK(template_error("{scheduled }").find("unknown placeholder") != std::string::npos);
}

TEST_CASE("check_output_template finds unbalanced braces") {
  CHECK(template_error("{export").find("unbalanced '{' at position 1") != std::string::npos);
  CHECK(template_error("a}b").find("unbalanced '}' at position 2") != std::string::npos);
  CHECK(template_error("{exp{ort}").find("unbalanced '{'") != std::string::npos);
  CHECK(template_error("{job}}").find("unbalanced '}'") != std::string::npos);
}

TEST_CASE("check_output_template checks the time format") {
  CHECK(template_error("{scheduled:}").find("empty time format") != std::string::npos);
  CHECK(template_error("{scheduled:%Y%}").find("lone '%'") != std::string::npos);
  CHECK(template_error("{scheduled:%c}").find("unsupported conversion '%c'") != std::string::npos);
  CHECK(template_error("{scheduled:%n}").find("unsupported conversion '%n'") != std::string::npos);
  CHECK(template_error("{scheduled:%Ey}").find("unsupported conversion '%E'") != std::string::npos);
  CHECK(template_error("{scheduled:%Y%m%d}").empty());
}

TEST_CASE("expand_output_template throws for an invalid template") {
  CHECK_THROWS_AS(expand("{date}"), std::invalid_argument);
  CHECK_THROWS_AS(expand("/abs"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(expand("../x"), doctest::Contains("'..'"), std::invalid_argument);
}

TEST_CASE("expansion never escapes the output directory, whatever the values") {
  TemplateValues values = sample_values();
  SUBCASE("export name with a slash") { values.export_name = "../etc"; }
  SUBCASE("export name '..'") { values.export_name = ".."; }
  SUBCASE("export name '.'") { values.export_name = "."; }
  SUBCASE("empty export name") { values.export_name = ""; }
  SUBCASE("export name with a newline") { values.export_name = "a\nb"; }
  SUBCASE("extension with a slash") { values.ext = "csv/../../x"; }
  CHECK_THROWS_AS(expand_output_template("{export}/{export}-{job}.{ext}", values), std::invalid_argument);
}

TEST_CASE("a negative job id is still a plain name") {
  TemplateValues values = sample_values();
  values.job_id = -7;
  CHECK(expand_output_template("{job}.{ext}", values) == "-7.csv.gz");
}

TEST_CASE("a collision's name has the suffix before the extension") {
  CHECK(insert_before_extension("dupes-20260101T000000Z.csv.gz", "csv.gz", "-job7") ==
        "dupes-20260101T000000Z-job7.csv.gz");
  CHECK(insert_before_extension("a.xlsx", "xlsx", "-job12-2") == "a-job12-2.xlsx");
  CHECK(insert_before_extension("report", "csv", "-job7") == "report-job7");  // no extension in the template
  CHECK(insert_before_extension(".csv", "csv", "-job7") == ".csv-job7");
}

TEST_CASE("names_export_or_job sees {export} or {job}, not a literal {{export}}") {
  CHECK(names_export_or_job("{export}/{scheduled}.{ext}"));
  CHECK(names_export_or_job("shared/{job}.{ext}"));
  CHECK(names_export_or_job(ExportDefinition{}.output_template));
  CHECK_FALSE(names_export_or_job("shared/{scheduled}.{ext}"));
  CHECK_FALSE(names_export_or_job("{{export}}/{{job}}-{scheduled}.{ext}"));
}

namespace {

apsis::config::LoadResult load_exports(const std::string& exports) {
  const std::string yaml =
      "state_db: state.db\noutput_dir: out\naccounts:\n  main:\n    base_url: https://api.apsis.one\n"
      "    client_id: id\n    client_secret: secret\nexports:\n" + exports;
  return apsis::config::load_config_string(yaml, "/tmp/apsis.yaml");
}

}  // namespace

TEST_CASE("a config refuses two exports with one template without {export}, at the second's output") {
  const auto result = load_exports(
      "  a: {account: main, kind: duplicates, output: \"shared/{scheduled}.{ext}\"}\n"
      "  b:\n    account: main\n    kind: duplicates\n    output: \"shared/{scheduled}.{ext}\"\n");
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].line == 13);
  CHECK(result.errors[0].column == 13);
  CHECK(result.errors[0].message.find("exports.b.output: the same template as exports.a.output") == 0);
}

TEST_CASE("a template without {export} is a warning, which does not fail the load") {
  const auto result = load_exports("  a: {account: main, kind: duplicates, output: \"{scheduled}.{ext}\"}\n"
                                   "  b: {account: main, kind: duplicates, output: \"{export}/{job}.{ext}\"}\n"
                                   "  c: {account: main, kind: duplicates, output: \"{export}/{job}.{ext}\"}\n"
                                   "  d: {account: main, kind: duplicates, output: \"shared/{job}.{ext}\"}\n"
                                   "  e: {account: main, kind: duplicates, output: \"shared/{job}.{ext}\"}\n");
  CHECK(result.config);
  REQUIRE(result.warnings.size() == 1);
  CHECK(result.warnings[0].to_string().starts_with("/tmp/apsis.yaml:9:"));
  CHECK(result.warnings[0].message.starts_with("warning: exports.a.output: the template has no {export} (nor {job})"));
}
