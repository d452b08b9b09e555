// The one place that says what kind of failure an exception is: the event loop's handlers, the
// dispatcher and the job steps all ask here, so "shutdown" and "a real failure" are told apart the
// same way everywhere.
#pragma once

#include <boost/system/error_code.hpp>

#include <exception>
#include <string>

namespace apsis {

// Shutdown cancels operations with operation_aborted: that ends a coroutine; it is never a failure
// to retry or record.
bool is_cancellation(const boost::system::error_code& code);
bool is_cancellation(const std::exception& error);
bool is_cancellation(std::exception_ptr error);

// what() of the exception, for a log line or a job row.
std::string describe(std::exception_ptr error);

}  // namespace apsis
