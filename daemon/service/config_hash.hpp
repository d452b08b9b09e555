// What instances sharing a PostgreSQL job table compare to notice they run different configurations:
// the SHA-256 of the configuration file's bytes, recorded in each one's `instances` row.
#pragma once

#include <filesystem>
#include <string>

namespace apsis::service {

// Hex SHA-256 of the file; of nothing when it cannot be read.
std::string config_file_hash(const std::filesystem::path& file);

}  // namespace apsis::service
