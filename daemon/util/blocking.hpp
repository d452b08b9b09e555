// Runs blocking work (fsync of a large file) on a small thread pool and resumes the calling
// coroutine on its own executor afterwards, so the event loop keeps serving every other job.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <utility>

namespace apsis {

// `work` runs on `pool` (inline when pool is null) and must not touch state owned by the event loop.
template <typename Work>
boost::asio::awaitable<void> run_blocking(boost::asio::thread_pool* pool, Work work) {
  if (!pool) {
    work();
    co_return;
  }
  co_await boost::asio::co_spawn(
      pool->get_executor(),
      [&work]() -> boost::asio::awaitable<void> {
        work();
        co_return;
      },
      boost::asio::use_awaitable);
}

}  // namespace apsis
