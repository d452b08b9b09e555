// The async semaphore behind the connection and transfer limits.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <vector>

#include "util/async_semaphore.hpp"
#include "util/result.hpp"
#include "util/sleep.hpp"

using namespace apsis;
using namespace std::chrono_literals;

namespace {

boost::asio::awaitable<void> hold(AsyncSemaphore& semaphore, std::vector<int>& order, int id, int& peak) {
  auto permit = co_await semaphore.acquire();
  order.push_back(id);
  peak = std::max(peak, static_cast<int>(semaphore.in_use()));
  co_await sleep_for(5ms);
}

}  // namespace

TEST_CASE("the semaphore admits at most its capacity, in FIFO order, and releases on scope exit") {
  boost::asio::io_context io;
  AsyncSemaphore semaphore(2);
  std::vector<int> order;
  int peak = 0;
  for (int id = 0; id < 6; ++id) boost::asio::co_spawn(io, hold(semaphore, order, id, peak), boost::asio::detached);
  io.run();
  CHECK(peak == 2);
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5});
  CHECK(semaphore.in_use() == 0);
  CHECK(semaphore.waiting() == 0);
}

TEST_CASE("a semaphore of capacity 0 is unlimited") {
  boost::asio::io_context io;
  AsyncSemaphore semaphore(0);
  std::vector<int> order;
  int peak = 0;
  for (int id = 0; id < 5; ++id) boost::asio::co_spawn(io, hold(semaphore, order, id, peak), boost::asio::detached);
  io.run();
  CHECK(peak == 5);
}

TEST_CASE("raising the capacity wakes waiters") {
  boost::asio::io_context io;
  AsyncSemaphore semaphore(1);
  std::vector<int> order;
  int peak = 0;
  for (int id = 0; id < 4; ++id) boost::asio::co_spawn(io, hold(semaphore, order, id, peak), boost::asio::detached);
  io.run_one();  // the first takes its permit, the rest queue
  semaphore.set_capacity(4);
  io.run();
  CHECK(peak >= 3);
  CHECK(order.size() == 4);
}

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include "util/errors.hpp"

TEST_CASE("errors: shutdown is told apart from a failure the same way everywhere") {
  const auto aborted = std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted));
  const auto refused = std::make_exception_ptr(boost::system::system_error(boost::asio::error::connection_refused));
  const auto plain = std::make_exception_ptr(std::runtime_error("disk full"));
  CHECK(apsis::is_cancellation(aborted));
  CHECK_FALSE(apsis::is_cancellation(refused));
  CHECK_FALSE(apsis::is_cancellation(plain));
  CHECK_FALSE(apsis::is_cancellation(std::make_exception_ptr(42)));
  CHECK(apsis::describe(plain) == "disk full");
  CHECK(apsis::describe(std::make_exception_ptr(42)) == "unknown error");
}

namespace result_test {
struct Failure {
  std::string message;
  int code{0};
};
[[noreturn]] inline void throw_exception_from_error(const Failure& failure, const boost::source_location&) {
  apsis::throw_failure(failure);
}
apsis::Result<std::unique_ptr<int>, Failure> parse(bool ok) {
  if (!ok) return Failure{"no number here", 7};
  return std::make_unique<int>(42);
}
}  // namespace result_test

TEST_CASE("a result holds a move-only value or an error that says what failed") {
  auto good = result_test::parse(true);
  REQUIRE(good.has_value());
  CHECK(**good == 42);
  auto bad = result_test::parse(false);
  REQUIRE(bad.has_error());
  CHECK(bad.error().message == "no number here");
  CHECK(bad.error().code == 7);
  CHECK_THROWS_WITH(bad.value(), "no number here");
}
