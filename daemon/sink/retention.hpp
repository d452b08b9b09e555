// keep: {count, days}: which of an export's published files go after a new one is published.
// Only files the job table says this daemon published are ever considered, never a directory listing,
// so nothing a user put beside them is touched.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "util/time.hpp"

namespace apsis::sink {

struct PublishedFile {
  std::int64_t job_id{0};
  TimePoint scheduled_for{};
  std::filesystem::path path;
};

struct RetentionPlan {
  std::vector<PublishedFile> remove;     // delete the file and its manifest
  std::vector<std::int64_t> superseded;  // rows whose path a kept file now occupies: mark only, delete nothing
};

// Per path, the newest job (of any export) that the job table says published its file there.
using PathOwners = std::map<std::filesystem::path, std::int64_t>;

// `newest_first` as the job table lists them. A file stays when either rule keeps it (the newest
// `count`, or a slot at most `days` old), and the file of `current_job` always stays. A path that a
// newer job of any export owns (`owners`) is never deleted: the older row is only marked superseded.
RetentionPlan plan_retention(const std::vector<PublishedFile>& newest_first, const config::Retention& keep,
                             TimePoint now, std::int64_t current_job, const PathOwners& owners = {});

// Deletes a published file and its manifest; one already gone counts as deleted. Returns the
// problem ("cannot delete PATH: reason") or an empty string.
std::string remove_published(const std::filesystem::path& file);

}  // namespace apsis::sink
