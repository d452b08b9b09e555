// A YAML subtree as JSON, for the request bodies the daemon sends unchanged.
#pragma once

#include <yaml-cpp/yaml.h>

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "config/env_expand.hpp"

namespace apsis::config {

struct YamlJsonError {
  YAML::Mark mark;  // yaml-cpp's, 0-based
  std::string message;
};

// Mappings become objects (keys are taken as written, never expanded), sequences arrays. Scalars:
//  - plain (untagged) scalars are typed by the YAML 1.2 core schema: true/True/TRUE/false/... → bool,
//    null/~/empty → null, integers (decimal, 0x hex, 0o octal) → int64, floats → double, else string;
//  - quoted and block scalars are strings;
//  - any string goes through expand_env, and a scalar containing '$' is always a string.
// Every problem (unset variable, duplicate or non-string key, integer out of range, .inf/.nan, unknown
// tag) is appended to `errors`, its message starting with the dotted path below `path`; the value
// returned is then incomplete and should not be used.
boost::json::value yaml_to_json(const YAML::Node& node, std::string_view path, const EnvLookup& env,
                                std::vector<YamlJsonError>& errors);

}  // namespace apsis::config
