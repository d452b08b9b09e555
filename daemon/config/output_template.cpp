#include "config/output_template.hpp"

#include <ctime>
#include <stdexcept>
#include <variant>
#include <vector>

namespace apsis::config {
namespace {

constexpr std::string_view kDefaultTimeFormat = "%Y%m%dT%H%M%SZ";
constexpr std::string_view kPlaceholders = "{export}, {job}, {ext}, {scheduled} or {scheduled:FORMAT}";
// The strftime conversions allowed: all but %n and %t (control characters), %c, %x and %X (a locale's
// whole date or time layout, with spaces and slashes) and the E and O modifiers.
constexpr std::string_view kTimeConversions = "aAbBCdDeFgGhHIjmMprRSTuUVwWyYzZ%";
constexpr std::size_t kMaxComponent = 255;  // NAME_MAX on Linux
constexpr std::size_t kMaxPath = 4095;

enum class Field { literal, export_name, job, ext, scheduled };

struct Piece {
  Field field;
  std::string text;  // the literal text, or the strftime format of `scheduled`
};

using Parsed = std::variant<std::vector<Piece>, std::string>;  // pieces or an error message

bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

std::optional<std::string> check_time_format(std::string_view format) {
  if (format.empty()) return "empty time format in {scheduled:}: write e.g. {scheduled:%Y-%m-%d}";
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') continue;
    if (++i == format.size())
      return "time format '" + std::string(format) + "' ends with a lone '%' (write %% for '%')";
    if (kTimeConversions.find(format[i]) == std::string_view::npos)
      return "unsupported conversion '%" + std::string(1, format[i]) + "' in time format '" + std::string(format) +
             "' (supported: %Y %m %d %H %M %S %j %F %T and other strftime conversions except %c %x %X %n %t %E %O)";
  }
  return std::nullopt;
}

std::variant<Piece, std::string> parse_placeholder(std::string_view name) {
  if (name == "export") return Piece{Field::export_name, {}};
  if (name == "job") return Piece{Field::job, {}};
  if (name == "ext") return Piece{Field::ext, {}};
  if (name == "scheduled") return Piece{Field::scheduled, std::string(kDefaultTimeFormat)};
  if (name.starts_with("scheduled:")) {
    const auto format = name.substr(std::string_view("scheduled:").size());
    if (auto error = check_time_format(format)) return *error;
    return Piece{Field::scheduled, std::string(format)};
  }
  return "unknown placeholder '{" + std::string(name) + "}' (expected " + std::string(kPlaceholders) + ")";
}

Parsed parse(std::string_view tmpl) {
  if (tmpl.empty())
    return std::string("output template is empty: expected a relative path such as {export}/{export}-{job}.{ext}");
  for (std::size_t i = 0; i < tmpl.size(); ++i)
    if (is_control(tmpl[i]))
      return "control character at position " + std::to_string(i + 1) + " of the output template";
  std::vector<Piece> pieces;
  auto append_literal = [&pieces](char c) {
    if (pieces.empty() || pieces.back().field != Field::literal) pieces.push_back({Field::literal, {}});
    pieces.back().text += c;
  };
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if (c == '}') {
      if (i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
        append_literal('}');
        ++i;
        continue;
      }
      return "unbalanced '}' at position " + std::to_string(i + 1) + " (write }} for a literal brace)";
    }
    if (c != '{') {
      append_literal(c);
      continue;
    }
    if (i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
      append_literal('{');
      ++i;
      continue;
    }
    const auto close = tmpl.find_first_of("{}", i + 1);
    if (close == std::string_view::npos || tmpl[close] == '{')
      return "unbalanced '{' at position " + std::to_string(i + 1) + " (expected " + std::string(kPlaceholders) +
             ", or {{ for a literal brace)";
    const auto name = tmpl.substr(i + 1, close - i - 1);
    auto piece = parse_placeholder(name);
    if (auto* error = std::get_if<std::string>(&piece)) return std::move(*error);
    pieces.push_back(std::get<Piece>(std::move(piece)));
    i = close;
  }
  return pieces;
}

// Checks a finished path; the same rules hold for the template (checked with sample values) and
// for every expansion, so nothing a placeholder produces can escape the output directory.
std::optional<std::string> check_relative_path(std::string_view path) {
  if (path.empty()) return "the output path is empty";
  if (path.size() > kMaxPath) return "the output path is longer than " + std::to_string(kMaxPath) + " bytes";
  for (char c : path)
    if (is_control(c)) return "the output path contains a control character";
  if (path.front() == '/')
    return "the output path '" + std::string(path) + "' is absolute: expected a path relative to output_dir";
  if (path.back() == '/')
    return "the output path '" + std::string(path) + "' ends with '/': expected a file name at the end";
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const auto component = path.substr(start, end - start);
    if (component.empty()) return "empty path component ('//') in the output path '" + std::string(path) + "'";
    if (component == "..")
      return "'..' in the output path '" + std::string(path) + "': the file must stay inside output_dir";
    if (component == ".") return "'.' component in the output path '" + std::string(path) + "': remove it";
    if (component.size() > kMaxComponent)
      return "a component of the output path is longer than " + std::to_string(kMaxComponent) + " bytes";
    start = end + 1;
  }
  return std::nullopt;
}

std::string format_time(const std::string& format, std::chrono::system_clock::time_point when) {
  const auto seconds = std::chrono::floor<std::chrono::seconds>(when);
  const std::time_t t = static_cast<std::time_t>(seconds.time_since_epoch().count());
  std::tm tm{};
  if (!gmtime_r(&t, &tm)) throw std::invalid_argument("scheduled time is out of range");
  std::string out(64, '\0');
  for (;;) {
    const std::size_t n = std::strftime(out.data(), out.size(), format.c_str(), &tm);
    if (n > 0 || out.size() >= 4 * kMaxPath) {
      out.resize(n);
      return out;
    }
    out.resize(out.size() * 2);
  }
}

std::string single_component(std::string_view placeholder, const std::string& value) {
  if (value.find('/') != std::string::npos)
    throw std::invalid_argument("the value of " + std::string(placeholder) + " contains '/'");
  return value;
}

std::string expand(const std::vector<Piece>& pieces, const TemplateValues& values) {
  std::string out;
  for (const auto& piece : pieces) {
    switch (piece.field) {
      case Field::literal:
        out += piece.text;
        break;
      case Field::export_name:
        out += single_component("{export}", values.export_name);
        break;
      case Field::job:
        out += std::to_string(values.job_id);
        break;
      case Field::ext:
        out += single_component("{ext}", values.ext);
        break;
      case Field::scheduled:
        out += format_time(piece.text, values.scheduled);
        break;
    }
  }
  return out;
}

}  // namespace

std::string file_extension(FileFormat format, Compression compression) {
  std::string ext(to_string(format));
  if (compression == Compression::gzip) ext += ".gz";
  return ext;
}

std::optional<std::string> check_output_template(std::string_view tmpl) {
  auto parsed = parse(tmpl);
  if (auto* error = std::get_if<std::string>(&parsed)) return std::move(*error);
  // Sample values show what the literal parts and time formats make of the path.
  const TemplateValues sample{"export", 1, std::chrono::system_clock::time_point{}, "csv"};
  try {
    return check_relative_path(expand(std::get<std::vector<Piece>>(parsed), sample));
  } catch (const std::invalid_argument& e) {
    return std::string(e.what());
  }
}

std::string expand_output_template(std::string_view tmpl, const TemplateValues& values) {
  auto parsed = parse(tmpl);
  if (auto* error = std::get_if<std::string>(&parsed)) throw std::invalid_argument(*error);
  std::string path = expand(std::get<std::vector<Piece>>(parsed), values);
  if (auto error = check_relative_path(path)) throw std::invalid_argument(*error);
  return path;
}

std::string insert_before_extension(std::string_view file_name, std::string_view ext, std::string_view suffix) {
  const std::string dot_ext = "." + std::string(ext);
  if (!ext.empty() && file_name.size() > dot_ext.size() && file_name.ends_with(dot_ext))
    return std::string(file_name.substr(0, file_name.size() - dot_ext.size())) + std::string(suffix) + dot_ext;
  return std::string(file_name) + std::string(suffix);
}

bool names_export_or_job(std::string_view tmpl) {
  const auto parsed = parse(tmpl);
  const auto* pieces = std::get_if<std::vector<Piece>>(&parsed);
  if (!pieces) return false;
  for (const auto& piece : *pieces)
    if (piece.field == Field::export_name || piece.field == Field::job) return true;
  return false;
}

}  // namespace apsis::config
