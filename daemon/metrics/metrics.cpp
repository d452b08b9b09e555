#include "metrics/metrics.hpp"

namespace apsis::metrics {

std::string_view to_string(Request request) {
  switch (request) {
    case Request::token: return "token";
    case Request::submit: return "submit";
    case Request::poll: return "poll";
  }
  return "unknown";
}

}  // namespace apsis::metrics
