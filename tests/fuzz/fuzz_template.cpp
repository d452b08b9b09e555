// libFuzzer target: output file templates (config/output_template.hpp).
//
// The header promises that an expansion is always a normalised relative path below output_dir: no
// leading or trailing '/', no empty, "." or ".." component, no control character. That is checked
// here independently of the implementation, for ordinary values and for hostile ones, on every input;
// and a template the check accepts must expand for ordinary values.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

#include "config/output_template.hpp"

namespace {

using apsis::config::TemplateValues;
using namespace std::chrono;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

system_clock::time_point utc(int y, unsigned m, unsigned d, seconds time_of_day) {
  return sys_days{year{y} / month{m} / day{d}} + time_of_day;
}

// Names as the config allows them ([A-Za-z0-9][A-Za-z0-9._-]*), extensions as file_extension makes them.
const std::array<TemplateValues, 4> kOrdinary{{
    {"duplicate-emails", 42, utc(2024, 3, 5, hours{6} + minutes{7} + seconds{8}), "csv.gz"},
    {"a", 0, system_clock::time_point{}, "csv"},
    {"consents.weekly_2", std::numeric_limits<std::int64_t>::max(), utc(2099, 12, 31, hours{23}), "xlsx.gz"},
    {"9", -7, utc(1969, 12, 31, hours{23} + seconds{59}), "xlsx"},
}};

// Values a buggy caller might pass; expansion must throw or still stay inside output_dir.
const std::array<TemplateValues, 5> kHostile{{
    {"..", 1, {}, "csv"},
    {".", 1, {}, "."},
    {"", 1, {}, ""},
    {"a/../../etc", 1, {}, "csv/../x"},
    {"a\nb", 1, {}, "/csv"},
}};

// Short enough that no expansion with kOrdinary reaches the 255-byte component limit: a placeholder
// is at least 5 bytes and expands to at most 19.
constexpr std::size_t kShortTemplate = 48;

bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

bool stays_inside(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  for (const char c : path)
    if (is_control(c)) return false;
  std::size_t start = 0;
  for (;;) {
    const auto end = std::min(path.find('/', start), path.size());
    const auto component = path.substr(start, end - start);
    if (component.empty() || component == "." || component == "..") return false;
    if (end == path.size()) return true;
    start = end + 1;
  }
}

// Whether the template expanded; an invalid_argument is the documented refusal.
bool expands_safely(std::string_view tmpl, const TemplateValues& values) {
  try {
    require(stays_inside(apsis::config::expand_output_template(tmpl, values)));
    return true;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view tmpl(reinterpret_cast<const char*>(data), size);
  const auto error = apsis::config::check_output_template(tmpl);
  require(!error || !error->empty());
  for (const auto& values : kOrdinary) {
    const bool expanded = expands_safely(tmpl, values);
    if (!error && tmpl.size() <= kShortTemplate) require(expanded);
  }
  for (const auto& values : kHostile) expands_safely(tmpl, values);
  return 0;
}
