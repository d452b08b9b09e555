// What the job table knows about an export's earlier runs.
#include <algorithm>
#include <vector>

#include "store/job_history.hpp"
#include "store/sqlite_job_store.hpp"

namespace apsis::store {

std::optional<Milliseconds> median_duration(const std::vector<std::pair<std::string, std::string>>& runs) {
  constexpr std::size_t kAtLeast = 5;
  std::vector<Milliseconds> durations;
  for (const auto& [submitted_text, finished_text] : runs) {
    const auto submitted = parse_iso8601(submitted_text);
    const auto finished = parse_iso8601(finished_text);
    if (submitted && finished && *finished >= *submitted)
      durations.push_back(std::chrono::duration_cast<Milliseconds>(*finished - *submitted));
  }
  if (durations.size() < kAtLeast) return std::nullopt;
  const auto middle = durations.begin() + static_cast<std::ptrdiff_t>(durations.size() / 2);
  std::nth_element(durations.begin(), middle, durations.end());
  return *middle;
}

std::optional<Milliseconds> SqliteJobStore::typical_duration(const std::string& export_name) {
  auto query = db_.prepare(
      "SELECT submitted_at, finished_at FROM jobs WHERE export = ? AND state = 'succeeded' "
      "AND submitted_at IS NOT NULL AND finished_at IS NOT NULL ORDER BY id DESC LIMIT ?");
  query.bind(1, export_name);
  query.bind(2, std::int64_t{kTypicalRuns});
  std::vector<std::pair<std::string, std::string>> runs;
  while (query.step()) runs.emplace_back(std::string(query.column_text(0)), std::string(query.column_text(1)));
  return median_duration(runs);
}

std::int64_t SqliteJobStore::max_id() {
  auto query = db_.prepare("SELECT coalesce(max(id), 0) FROM jobs");
  query.step();
  return query.column_int(0);
}

}  // namespace apsis::store
