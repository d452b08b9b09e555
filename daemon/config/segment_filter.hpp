// The `segments.filter` of an export request: a boolean expression over the short segment names the
// request defines, e.g. "!(europe) & women". Checked when the configuration loads, so a typo is a
// config error with its column rather than the API's 400 at the first scheduled run.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace apsis::config {

struct FilterError {
  int column = 0;       // 1-based, inside the expression
  std::string message;  // says the column too: "unexpected ')' at column 12"
};

struct FilterName {
  std::string name;
  int column = 0;  // 1-based, inside the expression
};

struct FilterSyntax {
  std::vector<FilterName> names;     // every use of a name, in order
  std::optional<FilterError> error;  // the first syntax error; `names` then holds those before it
};

// Binding tightest first: '!' (not), '&' (and), '|' (or); parentheses group; whitespace between
// tokens is ignored. A name is letters, digits, '_', '-' and '.'.
FilterSyntax parse_segment_filter(std::string_view expression);

// The syntax error, if any, and each name not in `defined` (once, at its first use), by column.
std::vector<FilterError> check_segment_filter(std::string_view expression, const std::set<std::string>& defined);

}  // namespace apsis::config
