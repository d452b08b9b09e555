#include "config/zone_name.hpp"

#include <algorithm>

namespace apsis::config {

bool is_zone_name(std::string_view name) {
  std::size_t start = 0;
  for (;;) {
    const auto end = std::min(name.find('/', start), name.size());
    const auto part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    const bool clean = std::ranges::all_of(part, [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '+' ||
             c == '-';
    });
    if (!clean) return false;
    if (end == name.size()) return true;
    start = end + 1;
  }
}

}  // namespace apsis::config
