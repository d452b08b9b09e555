// A failed database operation: the server's SQLSTATE and message, or libpq's own message when the
// connection failed. The store decides from these whether to retry, reconnect or record a failure.
#pragma once

#include <stdexcept>
#include <string>

namespace apsis::pg {

class Error : public std::runtime_error {
 public:
  // `connection_lost`: the connection cannot be used any more (set by the connection, which knows
  // its own state); a SQLSTATE of class 08 or 57P01..57P03 implies it.
  Error(const std::string& message, std::string sqlstate, bool connection_lost, bool timed_out = false);

  // Five characters ("23505"), empty when the server sent none (the connection failed first).
  const std::string& sqlstate() const { return sqlstate_; }
  bool connection_lost() const { return connection_lost_; }
  // The operation hit its deadline; the query was cancelled and the connection given up.
  bool timed_out() const { return timed_out_; }

 private:
  std::string sqlstate_;
  bool connection_lost_;
  bool timed_out_;
};

// Worth trying again, on a new connection when connection_lost(): the connection went away, the
// server is shutting down or starting, or the transaction lost a race (serialization failure,
// deadlock, lock not available).
bool is_transient(const Error& error);

}  // namespace apsis::pg
