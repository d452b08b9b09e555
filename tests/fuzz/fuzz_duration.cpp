// libFuzzer target: configuration durations (util/duration.hpp).
//
// format_duration promises text that parse_duration reads back to the same value, so any accepted
// input must survive parse -> format -> parse, and the formatted text must be a fixed point.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/duration.hpp"

namespace {

using Duration = apsis::Milliseconds;
using apsis::format_duration;
using apsis::parse_duration;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

void check_round_trip(Duration value) {
  const std::string text = format_duration(value);
  std::string error;
  const auto again = parse_duration(text, &error);
  require(again.has_value() && *again == value);
  require(format_duration(*again) == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto value = parse_duration(text, &error);
  require(value.has_value() == error.empty());
  if (!value) return 0;
  require(value->count() >= 0);
  check_round_trip(*value);
  // Neighbours reach units the input did not use (2h -> 1h59m59s999ms).
  if (value->count() > 0) check_round_trip(*value - Duration{1});
  if (value->count() < Duration::max().count()) check_round_trip(*value + Duration{1});
  return 0;
}
