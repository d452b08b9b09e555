// The account's budget: the sliding-window rules on a virtual clock, then the waiting queue on a
// real event loop.
#include <doctest/doctest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <thread>
#include <vector>

#include "budget/account_budget.hpp"

using namespace apsis::budget;
using namespace std::chrono_literals;

namespace {

const SteadyTime t0{std::chrono::hours(1)};

// Sends and answers one request at `at`, as a caller that was allowed to would.
void request(CallWindow& window, SteadyTime at) {
  REQUIRE(window.allowed_at(at) == at);
  window.sent();
  window.answered(at);
}

}  // namespace

TEST_CASE("a window lets `count` requests through, then the next waits until the oldest leaves it") {
  CallWindow window({3, 1000ms});
  request(window, t0);
  request(window, t0 + 100ms);
  request(window, t0 + 200ms);
  CHECK(window.allowed_at(t0 + 300ms) == t0 + 1000ms);
  CHECK(window.allowed_at(t0 + 1000ms) == t0 + 1000ms);
  request(window, t0 + 1000ms);
  CHECK(window.allowed_at(t0 + 1000ms) == t0 + 1100ms);
}

TEST_CASE("a request counts from when it is sent until a window after its answer") {
  CallWindow window({2, 1000ms});
  window.sent();
  window.sent();
  // Both in flight: nobody knows when the next may go until one is answered.
  CHECK_FALSE(window.allowed_at(t0));
  window.answered(t0 + 400ms);  // a slow answer: APSIS may have counted it as late as this
  // One answered at 400 ms and one still in flight fill the window until the answered one leaves it.
  CHECK(window.allowed_at(t0 + 400ms) == t0 + 1400ms);
  window.answered(t0 + 500ms);
  CHECK(window.allowed_at(t0 + 600ms) == t0 + 1400ms);
  CHECK(window.allowed_at(t0 + 1400ms) == t0 + 1400ms);
}

TEST_CASE("at most `count` requests in any window, however requests arrive") {
  // A property over a virtual clock: callers ask at irregular times and go when allowed.
  CallWindow window({5, 60'000ms});
  std::vector<SteadyTime> sent;
  SteadyTime now = t0;
  for (int i = 0; i < 200; ++i) {
    now += std::chrono::milliseconds((i * 7919) % 9000);
    const auto at = window.allowed_at(now);
    REQUIRE(at);
    now = *at;
    window.sent();
    sent.push_back(now);
    window.answered(now + 50ms);
  }
  for (std::size_t i = 5; i < sent.size(); ++i) CHECK(sent[i] - sent[i - 5] >= 60'000ms);
}

TEST_CASE("a 429 halves the pace once per window; each quiet minute wins back a tenth") {
  CallWindow window({30, 60'000ms});
  CHECK(window.effective(t0) == Limit{30, 60'000ms});
  window.throttled(t0);
  CHECK(window.pace(t0) == doctest::Approx(0.5));
  CHECK(window.effective(t0) == Limit{15, 60'000ms});
  window.throttled(t0 + 1s);  // the same burst's other answers: one signal
  CHECK(window.pace(t0 + 1s) == doctest::Approx(0.5));
  CHECK(window.effective(t0 + 59s) == Limit{15, 60'000ms});
  CHECK(window.effective(t0 + 60s) == Limit{18, 60'000ms});
  CHECK(window.effective(t0 + 3min) == Limit{24, 60'000ms});
  CHECK(window.effective(t0 + 5min) == Limit{30, 60'000ms});
  CHECK(window.effective(t0 + 50min) == Limit{30, 60'000ms});
}

TEST_CASE("below one request per window the window stretches; never slower than a tenth") {
  CallWindow window({1, 2000ms});
  window.throttled(t0);
  CHECK(window.effective(t0) == Limit{1, 4000ms});
  for (int i = 1; i < 10; ++i) window.throttled(t0 + std::chrono::seconds(30 * i));
  CHECK(window.pace(t0 + 4min + 30s) == doctest::Approx(CallWindow::kSlowest));
  CHECK(window.effective(t0 + 4min + 30s) == Limit{1, 20'000ms});
}

TEST_CASE("the budget queues callers FIFO and never lets more than `count` start in a window") {
  boost::asio::io_context io;
  Limits limits;
  limits.polls = {3, 200ms};
  AccountBudget budget(io.get_executor(), limits);
  std::vector<std::pair<int, std::chrono::steady_clock::time_point>> started;
  for (int id = 0; id < 9; ++id) {
    boost::asio::co_spawn(
        io,
        [&, id]() -> boost::asio::awaitable<void> {
          auto ticket = co_await budget.acquire(CallKind::poll);
          started.emplace_back(id, std::chrono::steady_clock::now());
        },
        boost::asio::detached);
  }
  io.poll();  // every caller has asked: three go at once, six wait
  CHECK(started.size() == 3);
  CHECK(budget.waiting(CallKind::poll) == 6);
  io.run();
  REQUIRE(started.size() == 9);
  for (int i = 0; i < 9; ++i) CHECK(started[static_cast<std::size_t>(i)].first == i);
  // Slowness of this machine can only spread the starts further apart, never closer.
  for (std::size_t i = 3; i < started.size(); ++i) CHECK(started[i].second - started[i - 3].second >= 200ms);
  CHECK(budget.waiting(CallKind::poll) == 0);
  CHECK(budget.in_flight(CallKind::poll) == 0);
}

TEST_CASE("an event-export submit counts against both the submit and the event-submit window") {
  boost::asio::io_context io;
  Limits limits;
  limits.submits = {2, 10'000ms};
  limits.event_submits = {1, 10'000ms};
  AccountBudget budget(io.get_executor(), limits);
  int event_submits = 0;
  int submits = 0;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        { auto ticket = co_await budget.acquire(CallKind::event_submit); }
        ++event_submits;
        { auto ticket = co_await budget.acquire(CallKind::submit); }
        ++submits;
        // The submit window is full now (the event submit counted in it): this one waits.
        { auto ticket = co_await budget.acquire(CallKind::submit); }
        ++submits;
      },
      boost::asio::detached);
  io.run_for(300ms);
  CHECK(event_submits == 1);
  CHECK(submits == 1);
  CHECK(budget.waiting(CallKind::submit) == 1);
  io.stop();
}

TEST_CASE("a waiting caller cancelled by shutdown leaves the queue and the budget usable") {
  boost::asio::io_context io;
  Limits limits;
  limits.tokens = {1, 60'000ms};
  AccountBudget budget(io.get_executor(), limits);
  bool first = false;
  bool second_cancelled = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        auto ticket = co_await budget.acquire(CallKind::token);
        first = true;
      },
      boost::asio::detached);
  boost::asio::cancellation_signal cancel;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        try {
          auto ticket = co_await budget.acquire(CallKind::token);
        } catch (const boost::system::system_error&) {
          second_cancelled = true;
        }
      },
      boost::asio::bind_cancellation_slot(cancel.slot(), boost::asio::detached));
  io.run_for(50ms);
  CHECK(first);
  CHECK(budget.waiting(CallKind::token) == 1);
  cancel.emit(boost::asio::cancellation_type::terminal);
  io.run_for(50ms);
  CHECK(second_cancelled);
  CHECK(budget.waiting(CallKind::token) == 0);
}

TEST_CASE("a throttled ticket slows the account and is counted") {
  boost::asio::io_context io;
  AccountBudget budget(io.get_executor(), Limits{});
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        auto ticket = co_await budget.acquire(CallKind::poll);
        ticket.throttled();
      },
      boost::asio::detached);
  io.run();
  CHECK(budget.throttles(CallKind::poll) == 1);
  CHECK(budget.pace(CallKind::poll) == doctest::Approx(0.5));
  CHECK(budget.pace(CallKind::submit) == doctest::Approx(1.0));
}

TEST_CASE("a cancelled waiter leaves no timer behind: the event loop can end at once") {
  // A stopping daemon cancelled a job waiting a minute for the token budget; the budget's own timer
  // for that wait kept io_context::run() going for the rest of the minute.
  boost::asio::io_context io;
  Limits limits;
  limits.tokens = {1, 60'000ms};
  AccountBudget budget(io.get_executor(), limits);
  boost::asio::cancellation_signal cancel;
  bool cancelled = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        { auto ticket = co_await budget.acquire(CallKind::token); }
        try {
          auto ticket = co_await budget.acquire(CallKind::token);  // waits a minute
        } catch (const boost::system::system_error&) {
          cancelled = true;
        }
      },
      boost::asio::bind_cancellation_slot(cancel.slot(), boost::asio::detached));
  io.run_for(50ms);
  REQUIRE(budget.waiting(CallKind::token) == 1);
  cancel.emit(boost::asio::cancellation_type::terminal);
  io.run_for(30s);  // half the armed minute: the loop must have run out of work long before
  CHECK(cancelled);
  CHECK(io.stopped());
}

TEST_CASE("try_acquire grants at once when the window allows, else nothing; next_allowed says when") {
  boost::asio::io_context io;
  Limits limits;
  limits.polls = {1, 100ms};
  AccountBudget budget(io.get_executor(), limits);
  const auto before = std::chrono::steady_clock::now();
  const auto at_once = budget.next_allowed(CallKind::poll);
  REQUIRE(at_once);
  CHECK(*at_once <= std::chrono::steady_clock::now());
  auto ticket = budget.try_acquire(CallKind::poll);
  REQUIRE(ticket);
  CHECK(budget.in_flight(CallKind::poll) == 1);
  CHECK_FALSE(budget.try_acquire(CallKind::poll));
  CHECK_FALSE(budget.next_allowed(CallKind::poll));  // the request in flight must be answered first
  CHECK(budget.try_acquire(CallKind::token));        // other kinds have windows of their own
  ticket.reset();                                    // answered
  const auto next = budget.next_allowed(CallKind::poll);
  REQUIRE(next);
  CHECK(*next >= before + 100ms);
  CHECK_FALSE(budget.try_acquire(CallKind::poll));
  std::this_thread::sleep_until(*next);
  CHECK(budget.try_acquire(CallKind::poll));
}

TEST_CASE("try_acquire never jumps the queue of callers waiting in acquire()") {
  boost::asio::io_context io;
  Limits limits;
  limits.polls = {1, 50ms};
  AccountBudget budget(io.get_executor(), limits);
  auto first = budget.try_acquire(CallKind::poll);
  REQUIRE(first);
  bool waiter_served = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        auto ticket = co_await budget.acquire(CallKind::poll);
        waiter_served = true;
      },
      boost::asio::detached);
  io.poll();
  REQUIRE(budget.waiting(CallKind::poll) == 1);
  first.reset();
  std::this_thread::sleep_for(60ms);  // the window allows one again, but it is the waiter's
  CHECK_FALSE(budget.try_acquire(CallKind::poll));
  io.run();
  CHECK(waiter_served);
}

TEST_CASE("a ticket released unsent does not count in the window") {
  boost::asio::io_context io;
  Limits limits;
  limits.polls = {1, 60'000ms};
  AccountBudget budget(io.get_executor(), limits);
  auto ticket = budget.try_acquire(CallKind::poll);
  REQUIRE(ticket);
  ticket->release_unsent();
  CHECK_FALSE(*ticket);
  CHECK(budget.in_flight(CallKind::poll) == 0);
  auto again = budget.try_acquire(CallKind::poll);
  CHECK(again);
  CHECK(*again);
}
