// Countdown fault injection, as SQLite's and Beast's own tests do it: the sanitizer build counts every
// call of fault::inject() over all points and fails the N-th, so a test can fail each write, fsync,
// rename and SQLite step of a run in turn and check what the daemon leaves behind.
//
// Read from the environment at first use:
//   APSIS_FAULT_AT=N     the N-th call (1-based, counted across all points) returns true, once;
//                        unset or 0: never.
//   APSIS_FAULT_LOG=FILE when it fires, "POINT<TAB>DETAIL" is appended to FILE, so the test knows
//                        which point it hit (and that it fired at all).
// Thread-safe: publishing runs on a worker pool.
//
// Compiled in only with APSIS_FAULT_INJECTION (set by APSIS_SANITIZE): otherwise inject() is a
// constant false and every call site compiles to what it was without it.
#pragma once

#include <cerrno>
#include <string_view>

namespace apsis::fault {

#ifdef APSIS_FAULT_INJECTION
inline constexpr bool kEnabled = true;
// True when this call is the one to fail: the caller then fails as the real operation would
// (errno = EIO, SQLITE_IOERR). `point` names the call site; `detail` (say, the SQL) goes to the log.
bool inject(std::string_view point, std::string_view detail = {});

// For tests in-process: count from zero again and fail the `fail_at`-th call (0: never), logging to
// `log_file` when not empty. Replaces what the environment said.
void arm(long fail_at, std::string_view log_file = {});
// Calls of inject() since the start (or the last arm()).
long operations();
#else
inline constexpr bool kEnabled = false;
constexpr bool inject(std::string_view, std::string_view = {}) { return false; }
#endif

// What a failed system call does: errno = error, returns -1. For `inject(...) ? failed_call(EIO) : ::fsync(fd)`.
inline int failed_call(int error) {
  errno = error;
  return -1;
}

}  // namespace apsis::fault
