// How the sink says what failed. Inside the module, a failed system call throws IoError: which
// operation, on which path, and the errno as an error_code (what() reads "<operation> <path>:
// <strerror>"). At its boundary (Download::write and publish) every failure a caller acts on is a
// SinkFailure value instead; cancellation at shutdown stays an exception.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

#include "util/result.hpp"

namespace apsis::sink {

class IoError : public std::system_error {
 public:
  IoError(int error, const std::string& operation, const std::filesystem::path& path)
      : std::system_error(error, std::generic_category(), operation + " " + path.string()),
        operation_(operation),
        path_(path) {}
  const std::string& operation() const { return operation_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::string operation_;
  std::filesystem::path path_;
};

struct SinkFailure {
  enum class Kind {
    io,          // the file system refused (disk full, EIO, a name it cannot move to): `code` says why
    unverified,  // the content failed its own check (a cut gzip stream, an empty file): fetch it again
  };
  Kind kind{Kind::io};
  std::string operation;          // "cannot write", "cannot fsync", "cannot move into place"...; empty if unknown
  std::filesystem::path path;     // the file or directory it failed on; empty if unknown
  std::error_code code;           // the errno, for io
  std::string message;            // for the job row and the log: what failed and why
};

// Lets Result<T, SinkFailure>::value() throw the failure's message (util/result.hpp).
[[noreturn]] inline void throw_exception_from_error(const SinkFailure& failure, const boost::source_location&) {
  throw_failure(failure);
}

}  // namespace apsis::sink
