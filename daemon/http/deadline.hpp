// A deadline for a step that cannot be interrupted once started: getaddrinfo runs on Asio's resolver
// thread, and the resolver's cancel() only takes effect when that call returns, so a stalled DNS
// server would hold the caller for as long as the C library likes. The caller waits on a timer
// instead; a late answer lands in shared state with nobody waiting for it.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <string>
#include <utility>

#include "http/client.hpp"

namespace apsis::http {

// `start(done)` begins the step; `done(error_code, Value)` may be called at any time, also after the
// wait ended (it keeps what it writes to alive). Returns the value, or throws NetworkError naming
// `step`: timed_out when `timeout` passed first, the step's own error, or operation_aborted when the
// wait itself was cancelled (shutdown).
template <typename Value, typename Start>
asio::awaitable<Value> await_within(Milliseconds timeout, std::string step, Start start) {
  struct Pending {
    explicit Pending(const asio::any_io_executor& ex) : wakeup(ex) {}
    asio::steady_timer wakeup;
    bool done{false};
    boost::system::error_code ec;
    Value value{};
  };
  auto pending = std::make_shared<Pending>(co_await asio::this_coro::executor);
  pending->wakeup.expires_after(timeout);
  start([pending](boost::system::error_code ec, Value value) {
    pending->done = true;
    pending->ec = ec;
    pending->value = std::move(value);
    pending->wakeup.cancel();
  });
  auto [wait_ec] = co_await pending->wakeup.async_wait(asio::as_tuple(asio::use_awaitable));
  if (!pending->done)
    throw NetworkError(wait_ec ? wait_ec : boost::system::error_code(asio::error::timed_out), step);
  if (pending->ec) throw NetworkError(pending->ec, step);
  co_return std::move(pending->value);
}

}  // namespace apsis::http
