// Drives a private io_context until one coroutine finishes: how a synchronous interface (a command
// line tool, a database thread) uses the asynchronous connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>

namespace apsis::pg {

// Returns what `work` returns, or rethrows what it throws. Runs `io` on the calling thread, which
// must be the only one running it; other work queued on `io` runs too, but the call returns as soon
// as `work` is done. (Not util's run_blocking, which moves blocking work off the loop: this is the
// opposite, a blocking caller driving a loop.)
template <typename T>
T run_to_completion(boost::asio::io_context& io, boost::asio::awaitable<T> work) {
  // co_spawn hands a value-returning coroutine's handler a default-constructed T on failure; going
  // through a void coroutine lets T be anything movable (a Connection).
  using Stored = std::conditional_t<std::is_void_v<T>, bool, T>;
  std::optional<Stored> value;
  std::exception_ptr failure;
  bool done = false;
  auto body = [](boost::asio::awaitable<T> work, std::optional<Stored>& value) -> boost::asio::awaitable<void> {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(work);
      value.emplace(true);
    } else {
      value.emplace(co_await std::move(work));
    }
  };
  boost::asio::co_spawn(io, body(std::move(work), value), [&](std::exception_ptr error) {
    failure = error;
    done = true;
  });
  io.restart();
  while (!done && io.run_one() > 0) {
  }
  if (!done) throw std::logic_error("run_to_completion: the io_context stopped before the operation finished");
  if (failure) std::rethrow_exception(failure);
  if constexpr (!std::is_void_v<T>) return std::move(*value);
}

}  // namespace apsis::pg
