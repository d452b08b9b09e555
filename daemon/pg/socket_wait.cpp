#include "pg/socket_wait.hpp"

#include "pg/error.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace apsis::pg {
namespace {

namespace asio = boost::asio;
using asio::experimental::awaitable_operators::operator||;
using Descriptor = asio::posix::stream_descriptor;

// Hands the descriptor back to libpq on every exit, exceptions and coroutine destruction included:
// Asio must never close it.
class Borrowed {
 public:
  Borrowed(const asio::any_io_executor& executor, int fd) : descriptor_(executor, fd) {}
  Borrowed(const Borrowed&) = delete;
  Borrowed& operator=(const Borrowed&) = delete;
  ~Borrowed() { descriptor_.release(); }
  Descriptor& get() { return descriptor_; }

 private:
  Descriptor descriptor_;
};

}  // namespace

asio::awaitable<Ready> wait_socket(int fd, Want want, Deadline& deadline) {
  if (fd < 0) throw Error("the database connection has no socket any more (libpq closed it)", "", true);
  Borrowed borrowed(co_await asio::this_coro::executor, fd);
  Descriptor& socket = borrowed.get();
  auto& timer = deadline.timer;
  const auto use = asio::use_awaitable;
  switch (want) {
    case Want::read: {
      const auto which = co_await (socket.async_wait(Descriptor::wait_read, use) || timer.async_wait(use));
      co_return which.index() == 0 ? Ready::socket : Ready::timed_out;
    }
    case Want::write: {
      const auto which = co_await (socket.async_wait(Descriptor::wait_write, use) || timer.async_wait(use));
      co_return which.index() == 0 ? Ready::socket : Ready::timed_out;
    }
    case Want::read_or_write: {
      const auto which = co_await (socket.async_wait(Descriptor::wait_read, use) ||
                                   socket.async_wait(Descriptor::wait_write, use) || timer.async_wait(use));
      co_return which.index() < 2 ? Ready::socket : Ready::timed_out;
    }
  }
  co_return Ready::timed_out;
}

}  // namespace apsis::pg
