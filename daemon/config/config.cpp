#include "config/config.hpp"

namespace apsis::config {

std::string_view to_string(ExportKind kind) {
  return kind == ExportKind::duplicates ? "duplicates" : "consents";
}
std::string_view to_string(FileFormat format) { return format == FileFormat::csv ? "csv" : "xlsx"; }
std::string_view to_string(Compression c) { return c == Compression::none ? "none" : "gzip"; }
std::string_view to_string(Catchup c) { return c == Catchup::latest ? "latest" : "none"; }
std::string_view to_string(Overlap o) { return o == Overlap::skip ? "skip" : "allow"; }
std::string_view to_string(OnExpired e) { return e == OnExpired::resubmit ? "resubmit" : "fail"; }

}  // namespace apsis::config
