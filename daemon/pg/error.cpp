#include "pg/error.hpp"

namespace apsis::pg {
namespace {

// Class 08: connection exception. 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now:
// the server ends or refuses the session, so the connection is gone too.
bool state_means_connection_lost(const std::string& state) {
  return state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03";
}

}  // namespace

Error::Error(const std::string& message, std::string sqlstate, bool connection_lost, bool timed_out)
    : std::runtime_error(message),
      sqlstate_(std::move(sqlstate)),
      connection_lost_(connection_lost || state_means_connection_lost(sqlstate_)),
      timed_out_(timed_out) {}

bool is_transient(const Error& error) {
  const std::string& state = error.sqlstate();
  // 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available.
  return error.connection_lost() || error.timed_out() || state == "40001" || state == "40P01" || state == "55P03";
}

}  // namespace apsis::pg
