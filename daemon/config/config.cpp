#include "config/config.hpp"

namespace apsis::config {

std::string_view to_string(ExportKind kind) {
  return kind == ExportKind::duplicates ? "duplicates" : "consents";
}
std::string_view to_string(FileFormat format) { return format == FileFormat::csv ? "csv" : "xlsx"; }
std::string_view to_string(Compression c) { return c == Compression::none ? "none" : "gzip"; }

}  // namespace apsis::config
