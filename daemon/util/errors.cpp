#include "util/errors.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

namespace apsis {

bool is_cancellation(const boost::system::error_code& code) { return code == boost::asio::error::operation_aborted; }

bool is_cancellation(const std::exception& error) {
  const auto* system_error = dynamic_cast<const boost::system::system_error*>(&error);
  return system_error && is_cancellation(system_error->code());
}

bool is_cancellation(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return is_cancellation(e);
  } catch (...) {
    return false;
  }
}

std::string describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

}  // namespace apsis
