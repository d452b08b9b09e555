// JSON values for optional job columns, shared by the commands that print `--json`: an absent value
// is `null`, never left out, so scripts see the same keys on every row.
#pragma once

#include <boost/json.hpp>

#include <optional>

#include "util/time.hpp"

namespace apsis::cli {

template <typename T>
boost::json::value or_null(const std::optional<T>& value) {
  if (!value) return nullptr;
  return boost::json::value_from(*value);
}

inline boost::json::value time_or_null(const std::optional<TimePoint>& t) {
  if (!t) return nullptr;
  return boost::json::value(format_iso8601(*t));
}

}  // namespace apsis::cli
