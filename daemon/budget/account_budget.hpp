// An account's API budget, shared by every job of the account: each call kind (export submits,
// event-export submits, polls, token requests) has its own sliding window (call_window.hpp), and
// callers wait their turn in FIFO order. A waiting caller costs a queue entry and one timer; the
// budget itself arms one timer per call kind for the head of its queue.
//
// Single-threaded: use from the event loop that created it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <deque>
#include <memory>
#include <optional>

#include "budget/call_window.hpp"

namespace apsis::budget {

enum class CallKind { submit, event_submit, poll, token };
inline constexpr std::size_t kCallKinds = 4;
std::string_view to_string(CallKind);

struct Limits {
  Limit submits{1, std::chrono::seconds(2)};
  Limit event_submits{1, std::chrono::minutes(2)};
  Limit polls{30, std::chrono::minutes(1)};
  Limit tokens{5, std::chrono::minutes(1)};
};

class AccountBudget {
 public:
  // A granted request: counts in its window from now until `window` after it is destroyed (the
  // answer came, or the request failed).
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept;
    Ticket& operator=(Ticket&& other) noexcept;
    ~Ticket();
    explicit operator bool() const { return state_ != nullptr; }  // granted and not yet released
    // APSIS One answered this request with 429: the whole account slows down.
    void throttled();
    // The request was never sent (no token, say): releases the ticket without counting it.
    void release_unsent();

   private:
    friend class AccountBudget;
    Ticket(std::shared_ptr<struct BudgetState> state, CallKind kind) : state_(std::move(state)), kind_(kind) {}
    void release();
    std::shared_ptr<struct BudgetState> state_;
    CallKind kind_{CallKind::poll};
  };

  AccountBudget(boost::asio::any_io_executor executor, Limits limits);
  ~AccountBudget();
  AccountBudget(const AccountBudget&) = delete;
  AccountBudget& operator=(const AccountBudget&) = delete;

  // Waits until a request of `kind` fits the budget (an event submit must fit both the submit and
  // the event-submit window, and is counted in both). Cancellation (shutdown) throws.
  boost::asio::awaitable<Ticket> acquire(CallKind kind);
  // A ticket now, or none: granted only if nobody waits in acquire() for this kind and the
  // window(s) allow a request at once. For a dispatcher that decides itself who goes next.
  std::optional<Ticket> try_acquire(CallKind kind);
  // When try_acquire(kind) could next succeed, as far as the windows say (callers queued in acquire()
  // go first): now or later, or nullopt while a request in flight must be answered first.
  std::optional<std::chrono::steady_clock::time_point> next_allowed(CallKind kind) const;

  void set_limits(const Limits& limits);
  // Every kind at half pace, recovering as after a 429: for an account this process just took over
  // from another (PostgreSQL leases), whose last requests still count at APSIS and are unknown here.
  void start_cautiously();

  // For /metrics and `status`: callers waiting, requests under way, and the pace (1 = full budget).
  std::size_t waiting(CallKind kind) const;
  int in_flight(CallKind kind) const;
  double pace(CallKind kind) const;
  std::uint64_t throttles(CallKind kind) const;

 private:
  std::shared_ptr<struct BudgetState> state_;
};

}  // namespace apsis::budget
