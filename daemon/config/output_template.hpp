// Output file names: a template relative to Config::output_dir with placeholders. Pure, no I/O.
//
//   {export}            the export's name
//   {job}               the job id (decimal)
//   {ext}               file_extension(format, compression), e.g. "csv.gz"
//   {scheduled}         the scheduled time in UTC as %Y%m%dT%H%M%SZ
//   {scheduled:FMT}     the scheduled time in UTC through strftime(FMT); a '/' in FMT makes directories
//   {{ and }}           literal braces
//
// The result is always a normalised relative path below the output directory: no leading or trailing
// '/', no empty, "." or ".." component, no control character.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace apsis::config {

// "csv", "csv.gz", "xlsx" or "xlsx.gz".
std::string file_extension(FileFormat format, Compression compression);

struct TemplateValues {
  std::string export_name;
  std::int64_t job_id{0};
  std::chrono::system_clock::time_point scheduled{};
  std::string ext;
};

// nullopt when `tmpl` is a valid template, else a message saying what is wrong and what is expected.
std::optional<std::string> check_output_template(std::string_view tmpl);

// The relative path for one job. Throws std::invalid_argument when the template is invalid or the
// values would make a path that is not a plain relative path below the output directory (a value
// containing '/', "..", control characters, ...). Never returns a path that escapes.
std::string expand_output_template(std::string_view tmpl, const TemplateValues& values);

// `file_name` with `suffix` inserted before ".ext" ("a-1.csv.gz", "csv.gz", "-job7" → "a-1-job7.csv.gz"),
// or appended when the name does not end in it. The name a collision publishes under.
std::string insert_before_extension(std::string_view file_name, std::string_view ext, std::string_view suffix);

// Whether the template uses {export}, or {job}: without either, two exports may expand to one path.
bool names_export_or_job(std::string_view tmpl);

}  // namespace apsis::config
