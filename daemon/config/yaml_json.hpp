// A YAML subtree as JSON, for the request bodies the daemon sends unchanged.
#pragma once

#include <yaml-cpp/yaml.h>

#include <boost/json/value.hpp>
#include <cstddef>
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
//
// Each value converted (scalar, mapping or sequence) takes one from `values_left`, an alias's target
// each time it is used: a few nested aliases make a small file expand to billions of values. At 0 the
// conversion stops, and that too is an error, as is nesting deeper than 100 levels (which an alias
// used inside the node it names makes endless).
boost::json::value yaml_to_json(const YAML::Node& node, std::string_view path, const EnvLookup& env,
                                std::vector<YamlJsonError>& errors, std::size_t& values_left);

// As above, with at most kMaxJsonValues values.
constexpr std::size_t kMaxJsonValues = 10'000;
boost::json::value yaml_to_json(const YAML::Node& node, std::string_view path, const EnvLookup& env,
                                std::vector<YamlJsonError>& errors);

}  // namespace apsis::config
