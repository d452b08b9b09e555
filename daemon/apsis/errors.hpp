#pragma once

#include <optional>
#include <stdexcept>
#include <string>

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

}  // namespace apsis::apsis_one
