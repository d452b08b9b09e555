#pragma once

#include <string>

#include "config/config.hpp"

namespace apsis::jobs {

// The definition a job runs with, stored in its row so a restart (or a changed YAML file) does not
// change a job in flight. Holds no secrets: accounts are referenced by name.
std::string definition_to_json(const config::ExportDefinition& definition);

// Reads back what definition_to_json wrote; throws std::runtime_error naming the bad field.
config::ExportDefinition definition_from_json(const std::string& json);

}  // namespace apsis::jobs
