// The shape of an IANA time zone name, checked before the name is used as a path below zoneinfo.
#pragma once

#include <string_view>

namespace apsis::config {

// Components of letters, digits, '_', '+' and '-' joined by '/' ("Europe/Stockholm", "Etc/GMT+1");
// nothing that could leave the zoneinfo directory.
bool is_zone_name(std::string_view name);

}  // namespace apsis::config
