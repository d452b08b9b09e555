// The result of a call that can fail in ways its caller decides about: the value, or an error value
// that says what failed and why (apsis_one::ApiFailure at the API, sink::SinkFailure at the sink).
// Failures a caller handles are results; cancellation at shutdown stays an exception (it ends the
// coroutine, util/errors.hpp), and so does what no caller can handle (out of memory, a bug).
//
// Read a result with `if (!r)`, `r.error()` and `*r` (in a doctest check, `r.has_value()`: doctest
// would try to print the result). `r.value()` on an error calls the error type's
// throw_exception_from_error (see throw_failure below), which a caller should not need.
#pragma once

#include <boost/system/result.hpp>

#include <stdexcept>

namespace apsis {

template <class T, class E>
using Result = boost::system::result<T, E>;

// For an error type E with a `message` member: lets Result<T, E>::value() throw what the error
// says. Declare `[[noreturn]] inline void throw_exception_from_error(const E& e, const
// boost::source_location&) { throw_failure(e); }` beside E, found by argument-dependent lookup.
template <class E>
[[noreturn]] void throw_failure(const E& error) {
  throw std::runtime_error(error.message);
}

}  // namespace apsis
