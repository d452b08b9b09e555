#include "sink/manifest.hpp"

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

std::filesystem::path write_manifest(const Manifest& manifest) {
  const auto text = to_json(manifest);
  StagedFile staged(manifest_path_for(manifest.file));
  staged.write(text);
  staged.publish();
  return staged.final_path();
}

}  // namespace apsis::sink
