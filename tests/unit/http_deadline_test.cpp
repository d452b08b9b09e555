#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <functional>

#include "http/deadline.hpp"

using namespace apsis;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

using Done = std::function<void(error_code, int)>;

// Runs await_within on a fresh loop with the given start; returns its value or rethrows.
int run(asio::io_context& io, std::function<void(Done)> start) {
  auto future = asio::co_spawn(io, http::await_within<int>(Milliseconds(20), "resolving stalled.example", start),
                               asio::use_future);
  io.run();
  io.restart();
  return future.get();
}

error_code failure_of(asio::io_context& io, std::function<void(Done)> start) {
  try {
    run(io, std::move(start));
  } catch (const http::NetworkError& e) {
    CHECK(std::string(e.what()).starts_with("resolving stalled.example: "));
    return e.code();
  }
  FAIL("no error");
  return {};
}

}  // namespace

TEST_CASE("a step that never answers ends at its deadline as timed out, not as a cancellation") {
  asio::io_context io;
  const auto code = failure_of(io, [](Done) {});  // like getaddrinfo with a silent DNS server
  CHECK(code == asio::error::timed_out);
  CHECK_FALSE(http::is_cancellation(code));
}

TEST_CASE("an answer after the deadline lands nowhere and harms nothing") {
  asio::io_context io;
  Done late;
  CHECK(failure_of(io, [&](Done done) { late = std::move(done); }) == asio::error::timed_out);
  late(error_code{}, 7);  // the resolver thread returns at last
  io.run();
}

TEST_CASE("a step that answers in time gives its value or its own error") {
  asio::io_context io;
  CHECK(run(io, [&](Done done) { asio::post(io, [done] { done(error_code{}, 42); }); }) == 42);
  CHECK(failure_of(io, [&](Done done) { asio::post(io, [done] { done(asio::error::host_not_found, 0); }); }) ==
        asio::error::host_not_found);
}
