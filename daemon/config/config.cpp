#include "config/config.hpp"

namespace apsis::config {

std::string_view to_string(ExportKind kind) {
  switch (kind) {
    case ExportKind::duplicates: return "duplicates";
    case ExportKind::consents: return "consents";
    case ExportKind::segments: return "segments";
    case ExportKind::events: return "events";
  }
  return "?";
}
std::string_view to_string(FileFormat format) {
  switch (format) {
    case FileFormat::csv: return "csv";
    case FileFormat::xlsx: return "xlsx";
    case FileFormat::json: return "json";
  }
  return "?";
}
std::string_view to_string(Compression c) { return c == Compression::none ? "none" : "gzip"; }
std::string_view to_string(Catchup c) { return c == Catchup::latest ? "latest" : "none"; }
std::string_view to_string(Overlap o) { return o == Overlap::skip ? "skip" : "allow"; }
std::string_view to_string(OnExpired e) { return e == OnExpired::resubmit ? "resubmit" : "fail"; }
std::string_view to_string(OnFailedExport e) { return e == OnFailedExport::resubmit ? "resubmit" : "fail"; }
std::string_view to_string(PollUrlField f) {
  return f == PollUrlField::file_download_url ? "file_download_url" : "file_download_url_v2";
}
std::optional<PollUrlField> parse_poll_url_field(std::string_view text) {
  if (text == "file_download_url") return PollUrlField::file_download_url;
  if (text == "file_download_url_v2") return PollUrlField::file_download_url_v2;
  return std::nullopt;
}

}  // namespace apsis::config
