// Drives a private io_context until one coroutine finishes: how a synchronous interface (a command
// line tool, a database thread) uses the asynchronous connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <stdexcept>

namespace apsis::pg {

// Returns what `work` returns, or rethrows what it throws. Runs `io` on the calling thread, which
// must be the only one running it; other work queued on `io` runs too, but the call returns as soon
// as `work` is done. (Not util's run_blocking, which moves blocking work off the loop: this is the
// opposite, a blocking caller driving a loop.)
template <typename T>
T run_to_completion(boost::asio::io_context& io, boost::asio::awaitable<T> work) {
  std::future<T> result = boost::asio::co_spawn(io, std::move(work), boost::asio::use_future);
  io.restart();
  const auto done = [&] { return result.wait_for(std::chrono::seconds(0)) == std::future_status::ready; };
  while (!done() && io.run_one() > 0) {
  }
  if (!done()) throw std::logic_error("run_to_completion: the io_context stopped before the operation finished");
  return result.get();
}

}  // namespace apsis::pg
