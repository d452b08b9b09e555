#pragma once

#include <optional>
#include <stdexcept>
#include <string>

#include "util/time.hpp"

namespace apsis::apsis_one {

// An APSIS One call that cannot succeed as asked (400, 413, a 403 with a fresh token, a malformed
// answer, a poll URL on a foreign host), or that kept failing after every retry. The message is
// written for the job row's `error` column and never contains a secret or token.
class ApsisError : public std::runtime_error {
 public:
  explicit ApsisError(const std::string& message, std::optional<unsigned> status = std::nullopt)
      : std::runtime_error(message), status_(status) {}
  std::optional<unsigned> status() const { return status_; }

 private:
  std::optional<unsigned> status_;
};

// The account has no API token for now: its token request failed in a way that may heal (429, 5xx,
// network trouble), and it is not asked again before `retry_at`. Every caller until then gets this
// same error at once.
class TokenUnavailable : public ApsisError {
 public:
  TokenUnavailable(const std::string& message, TimePoint retry_at) : ApsisError(message), retry_at_(retry_at) {}
  TimePoint retry_at() const { return retry_at_; }

 private:
  TimePoint retry_at_;
};

}  // namespace apsis::apsis_one
