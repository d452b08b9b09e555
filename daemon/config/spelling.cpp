#include "config/spelling.hpp"

#include <algorithm>
#include <vector>

namespace apsis::config {
namespace {

// Optimal string alignment distance.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// Names and keys are short; the distance costs length squared, so longer words get no suggestion.
constexpr std::size_t kMaxLength = 100;

}  // namespace

std::optional<std::string_view> closest_spelling(std::string_view word, std::span<const std::string_view> candidates,
                                                 std::size_t max_distance) {
  std::optional<std::string_view> best;
  if (word.size() > kMaxLength) return best;
  std::size_t best_distance = max_distance + 1;
  for (const auto candidate : candidates) {
    const auto length_difference = std::max(word.size(), candidate.size()) - std::min(word.size(), candidate.size());
    if (length_difference > max_distance || candidate.size() > kMaxLength) continue;
    const auto distance = edit_distance(word, candidate);
    if (distance < best_distance && distance < candidate.size()) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace apsis::config
