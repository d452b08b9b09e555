// Waiting on libpq's socket from a coroutine. libpq owns the descriptor (and may replace it while
// connecting, when it tries the next address), so each wait borrows it and gives it back.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>

namespace apsis::pg {

enum class Want { read, write, read_or_write };
enum class Ready { socket, timed_out };

// The deadline of one operation (connect, query): one timer for all its waits.
struct Deadline {
  boost::asio::steady_timer timer;
  std::chrono::milliseconds limit;
};

// Suspends until `fd` is ready for `want` or the deadline passes. The descriptor is registered with
// the reactor for this wait only: a fresh registration reports readiness that already exists, which
// a long-lived edge-triggered one would have consumed while libpq read on its own. Cancelling the
// calling coroutine ends the wait with an exception.
boost::asio::awaitable<Ready> wait_socket(int fd, Want want, Deadline& deadline);

}  // namespace apsis::pg
