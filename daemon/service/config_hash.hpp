// What instances sharing a PostgreSQL job table compare to notice they run different configurations:
// the SHA-256 of the configuration's bytes, recorded in each one's `instances` row.
#pragma once

#include <string>

#include "config/config.hpp"

namespace apsis::service {

// Hex SHA-256 of the main file's bytes; with drop-ins (include:), followed by each one's path relative to
// the main file's directory and its bytes, so two instances whose conf.d differ do not look alike. A
// file that cannot be read counts as empty.
std::string config_hash(const config::Config& config);

}  // namespace apsis::service
