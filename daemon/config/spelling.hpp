// Suggestions for misspelt names: which known name a word was probably meant to be.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace apsis::config {

// The candidate nearest to `word` by edit distance (insertions, deletions, substitutions, swaps of
// neighbours), if it is at most `max_distance` edits away; the first of equally near ones. Never a
// candidate that shares nothing with the word (as many edits as the candidate is long).
std::optional<std::string_view> closest_spelling(std::string_view word, std::span<const std::string_view> candidates,
                                                 std::size_t max_distance);

}  // namespace apsis::config
