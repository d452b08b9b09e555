// What the job table knows about an export's earlier runs.
#include <algorithm>
#include <vector>

#include "store/sqlite_job_store.hpp"

namespace apsis::store {

std::optional<Milliseconds> SqliteJobStore::typical_duration(const std::string& export_name) {
  constexpr int kRuns = 10;
  constexpr std::size_t kAtLeast = 5;
  auto query = db_.prepare(
      "SELECT submitted_at, finished_at FROM jobs WHERE export = ? AND state = 'succeeded' "
      "AND submitted_at IS NOT NULL AND finished_at IS NOT NULL ORDER BY id DESC LIMIT ?");
  query.bind(1, export_name);
  query.bind(2, std::int64_t{kRuns});
  std::vector<Milliseconds> durations;
  while (query.step()) {
    const auto submitted = parse_iso8601(query.column_text(0));
    const auto finished = parse_iso8601(query.column_text(1));
    if (submitted && finished && *finished >= *submitted)
      durations.push_back(std::chrono::duration_cast<Milliseconds>(*finished - *submitted));
  }
  if (durations.size() < kAtLeast) return std::nullopt;
  const auto middle = durations.begin() + static_cast<std::ptrdiff_t>(durations.size() / 2);
  std::nth_element(durations.begin(), middle, durations.end());
  return *middle;
}

std::int64_t SqliteJobStore::max_id() {
  auto query = db_.prepare("SELECT coalesce(max(id), 0) FROM jobs");
  query.step();
  return query.column_int(0);
}

}  // namespace apsis::store
