// Checks an export's `request:` body against what the APSIS One documentation shows for its kind
// (docs/apsis-api.md, "The asynchronous exports"): types of the documented fields, the fields those
// need, and that segments.filter parses and names only segments the body defines. The daemon sends the
// body unchanged, so anything undocumented is allowed, except a key one or two typos away from a
// documented one: the API would likely ignore it without a word.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace apsis::config {

struct RequestProblem {
  // JSON path below `request`: {"segments", "filter"}, {"attributes", "1", "field_name"}; empty for
  // the body itself. A list element's index is written in decimal.
  std::vector<std::string> path;
  std::string message;  // "unknown segment 'europ' at column 4 (defined: europe, women); did you mean 'europe'?"
  int column = 0;       // 1-based column inside the string value at `path` (the filter); 0 = none
  // Point at the key at the end of `path`, not at its value: a misspelt key, or one that misses a key.
  bool at_key = false;
};

// Every problem of `body` (in no particular order); empty when it looks right. `start_at_per_job`:
// the export has a window:, so the daemon sets start_at for each job (events exports).
std::vector<RequestProblem> check_request(ExportKind kind, const boost::json::value& body,
                                          bool start_at_per_job = false);

}  // namespace apsis::config
