// The sidecar `<file>.json` that describes a published file. It appears only after the file it
// describes is complete and durable, and is itself published atomically, so a loader that waits for
// manifests never picks up a partial file or a half-written manifest.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "util/time.hpp"

namespace apsis::sink {

struct Manifest {
  std::string export_name;
  std::int64_t job_id{0};
  TimePoint scheduled_for{};
  std::filesystem::path file;  // the published file, absolute
  std::uint64_t bytes{0};
  std::string sha256;
  std::string content_type;
  std::optional<std::string> content_encoding;
  std::string format;       // csv | xlsx
  std::string compression;  // none | gzip
  TimePoint created_at{};
  std::optional<TimePoint> submitted_at;
  TimePoint published_at{};
  Milliseconds download_time{0};  // first body byte to published
  int polls{0};
  int download_attempts{0};
  // Which process wrote it: with several instances on one PostgreSQL table, which of them.
  std::string instance{};  // the instance id (also in logs and in the `instances` table)
  std::string host{};
};

std::string to_json(const Manifest& manifest);
std::filesystem::path manifest_path_for(const std::filesystem::path& file);
// Writes `manifest` beside its file: temporary file, fsync, rename, fsync of the directory.
// Returns the manifest's path.
std::filesystem::path write_manifest(const Manifest& manifest);

}  // namespace apsis::sink
