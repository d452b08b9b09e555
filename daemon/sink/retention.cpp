#include "sink/retention.hpp"

#include <set>
#include <system_error>

#include "sink/manifest.hpp"

namespace apsis::sink {

RetentionPlan plan_retention(const std::vector<PublishedFile>& newest_first, const config::Retention& keep,
                             TimePoint now, std::int64_t current_job, const PathOwners& owners) {
  const auto kept_by_rules = [&](std::size_t rank, const PublishedFile& file) {
    if (!keep.any()) return true;
    if (keep.count && rank < static_cast<std::size_t>(*keep.count)) return true;
    return keep.days && file.scheduled_for >= now - std::chrono::days(*keep.days);
  };
  std::vector<const PublishedFile*> candidates;
  std::set<std::filesystem::path> kept_paths;
  for (std::size_t rank = 0; rank < newest_first.size(); ++rank) {
    const auto& file = newest_first[rank];
    if (file.job_id == current_job || kept_by_rules(rank, file))
      kept_paths.insert(file.path);
    else
      candidates.push_back(&file);
  }
  // An output template without the slot in it makes every job write the same path: deleting an old
  // job's file would then delete the file just published.
  RetentionPlan plan;
  std::set<std::filesystem::path> planned;
  for (const auto* file : candidates) {
    const auto owner = owners.find(file->path);
    const bool newer_owner = owner != owners.end() && owner->second > file->job_id;
    if (newer_owner || kept_paths.contains(file->path) || !planned.insert(file->path).second)
      plan.superseded.push_back(file->job_id);
    else
      plan.remove.push_back(*file);
  }
  return plan;
}

std::string remove_published(const std::filesystem::path& file) {
  for (const auto& path : {file, manifest_path_for(file)}) {
    std::error_code ec;
    std::filesystem::remove(path, ec);  // false without error when already gone
    if (ec) return "cannot delete " + path.string() + ": " + ec.message();
  }
  return {};
}

}  // namespace apsis::sink
