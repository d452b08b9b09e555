// What both backends make of an export's earlier runs (typical_duration).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/time.hpp"

namespace apsis::store {

// How many of the export's newest succeeded runs typical_duration reads.
inline constexpr int kTypicalRuns = 10;

// The median submit-to-file time of `runs` (submitted_at, finished_at as the table holds them), once
// at least five of them parse: fewer say too little about the export.
std::optional<Milliseconds> median_duration(const std::vector<std::pair<std::string, std::string>>& runs);

}  // namespace apsis::store
