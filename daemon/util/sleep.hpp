#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "util/time.hpp"

namespace apsis {

// Suspends the calling coroutine; cancelling the coroutine (shutdown) ends the wait with an exception.
inline boost::asio::awaitable<void> sleep_for(Milliseconds delay) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  timer.expires_after(delay);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

}  // namespace apsis
