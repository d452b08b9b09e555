#include "sink/manifest.hpp"

#include <fstream>
#include <iterator>

#include <boost/json.hpp>

#include "sink/staged_file.hpp"

namespace apsis::sink {

namespace json = boost::json;

std::string to_json(const Manifest& m) {
  json::object out{
      {"export", m.export_name},
      {"job_id", m.job_id},
      {"scheduled_for", format_iso8601(m.scheduled_for)},
      {"file", m.file.filename().string()},
      {"path", m.file.string()},
      {"bytes", m.bytes},
      {"sha256", m.sha256},
      {"content_type", m.content_type},
      {"content_encoding", m.content_encoding ? json::value(*m.content_encoding) : json::value(nullptr)},
      {"format", m.format},
      {"compression", m.compression},
      {"created_at", format_iso8601(m.created_at)},
      {"submitted_at", m.submitted_at ? json::value(format_iso8601(*m.submitted_at)) : json::value(nullptr)},
      {"published_at", format_iso8601(m.published_at)},
      // Whole milliseconds: Boost.JSON would print seconds as 9E1.
      {"total_ms", std::chrono::duration_cast<Milliseconds>(m.published_at - m.created_at).count()},
      {"download_ms", m.download_time.count()},
      {"polls", m.polls},
      {"download_attempts", m.download_attempts},
      {"written_by", json::object{{"instance", m.instance}, {"host", m.host}}},
  };
  return json::serialize(out) + "\n";
}

std::filesystem::path manifest_path_for(const std::filesystem::path& file) {
  auto path = file;
  path += ".json";
  return path;
}

namespace {

// The manifest at `path` describes the same job and the same bytes: this job's own manifest, written
// before another instance took the job over (its lease moved between the publish and the row write)
// or before a crash. It stays; any other manifest is never replaced.
bool describes_same_file(const std::filesystem::path& path, const Manifest& manifest) {
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  const auto existing = json::parse(text, ec);
  if (ec || !existing.is_object()) return false;
  const auto& object = existing.as_object();
  const auto* job = object.if_contains("job_id");
  const auto* sha = object.if_contains("sha256");
  return job && sha && job->is_int64() && job->as_int64() == manifest.job_id && sha->is_string() &&
         sha->as_string() == manifest.sha256;
}

}  // namespace

std::filesystem::path write_manifest(const Manifest& manifest) {
  const auto text = to_json(manifest);
  StagedFile staged(manifest_path_for(manifest.file));
  staged.write(text);
  staged.publish({}, [&](const std::filesystem::path& existing) { return describes_same_file(existing, manifest); });
  return staged.final_path();
}

}  // namespace apsis::sink
