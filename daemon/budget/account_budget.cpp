#include "budget/account_budget.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>

namespace apsis::budget {
namespace {

namespace asio = boost::asio;
using Timer = asio::steady_timer;

std::size_t index(CallKind kind) { return static_cast<std::size_t>(kind); }
SteadyTime now() { return std::chrono::steady_clock::now(); }

}  // namespace

std::string_view to_string(CallKind kind) {
  switch (kind) {
    case CallKind::submit: return "submit";
    case CallKind::event_submit: return "event_submit";
    case CallKind::poll: return "poll";
    case CallKind::token: return "token";
  }
  return "?";
}

struct Waiter {
  explicit Waiter(const asio::any_io_executor& executor) : wake(executor, Timer::time_point::max()) {}
  Timer wake;  // cancelled when the request is granted
  bool granted{false};
};

// Shared with the tickets, which may outlive the budget by a moment at shutdown.
struct BudgetState {
  BudgetState(const asio::any_io_executor& executor, const Limits& limits)
      : windows{CallWindow(limits.submits), CallWindow(limits.event_submits), CallWindow(limits.polls),
                CallWindow(limits.tokens)},
        head_timers{Timer(executor), Timer(executor), Timer(executor), Timer(executor)} {}

  std::array<CallWindow, kCallKinds> windows;
  std::array<std::deque<std::shared_ptr<Waiter>>, kCallKinds> queues;
  std::array<Timer, kCallKinds> head_timers;  // wakes the head of a queue when its turn comes
  std::array<std::uint64_t, kCallKinds> throttles{};

  // The windows a request of `kind` counts in.
  std::vector<CallWindow*> windows_of(CallKind kind) {
    if (kind == CallKind::event_submit) return {&windows[index(CallKind::submit)], &windows[index(kind)]};
    return {&windows[index(kind)]};
  }

  std::optional<SteadyTime> allowed_at(CallKind kind, SteadyTime at) {
    std::optional<SteadyTime> latest = at;
    for (auto* window : windows_of(kind)) {
      const auto allowed = window->allowed_at(at);
      if (!allowed) return std::nullopt;
      latest = std::max(*latest, *allowed);
    }
    return latest;
  }

  // Grants as many queued requests of `kind` as fit now, then arms a timer for the next one.
  void pump(CallKind kind, const std::shared_ptr<BudgetState>& self) {
    auto& queue = queues[index(kind)];
    auto& timer = head_timers[index(kind)];
    while (!queue.empty()) {
      const auto at = now();
      const auto allowed = allowed_at(kind, at);
      if (allowed && *allowed <= at) {
        for (auto* window : windows_of(kind)) window->sent();
        auto next = queue.front();
        queue.pop_front();
        next->granted = true;
        next->wake.cancel();
        continue;
      }
      timer.cancel();
      if (allowed) {
        // Without an allowed time the head waits for an answer, and answered() pumps again.
        timer.expires_at(*allowed);
        timer.async_wait([weak = std::weak_ptr<BudgetState>(self), kind](const boost::system::error_code& ec) {
          if (ec) return;  // re-armed or shut down
          if (const auto state = weak.lock()) state->pump(kind, state);
        });
      }
      return;
    }
    // Nobody waits: an armed timer would keep the event loop (and a stopping daemon) alive until it fires.
    timer.cancel();
  }

  void pump_all(const std::shared_ptr<BudgetState>& self) {
    for (std::size_t i = 0; i < kCallKinds; ++i) pump(static_cast<CallKind>(i), self);
  }
};

AccountBudget::Ticket::Ticket(Ticket&& other) noexcept
    : state_(std::exchange(other.state_, nullptr)), kind_(other.kind_) {}

AccountBudget::Ticket& AccountBudget::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::exchange(other.state_, nullptr);
    kind_ = other.kind_;
  }
  return *this;
}

AccountBudget::Ticket::~Ticket() { release(); }

void AccountBudget::Ticket::release() {
  if (!state_) return;
  const auto state = std::exchange(state_, nullptr);
  const auto at = now();
  for (auto* window : state->windows_of(kind_)) window->answered(at);
  // An answer frees room in the submit window for event submits too, and the other way round.
  state->pump_all(state);
}

void AccountBudget::Ticket::release_unsent() {
  if (!state_) return;
  const auto state = std::exchange(state_, nullptr);
  for (auto* window : state->windows_of(kind_)) window->withdrawn();
  state->pump_all(state);
}

void AccountBudget::Ticket::throttled() {
  if (!state_) return;
  const auto at = now();
  // A 429 on an event export may be either limit's: both slow down.
  for (auto* window : state_->windows_of(kind_)) window->throttled(at);
  ++state_->throttles[index(kind_)];
}

AccountBudget::AccountBudget(asio::any_io_executor executor, Limits limits)
    : state_(std::make_shared<BudgetState>(executor, limits)) {}

AccountBudget::~AccountBudget() {
  for (auto& timer : state_->head_timers) timer.cancel();
  for (auto& queue : state_->queues)
    for (auto& waiter : queue) waiter->wake.cancel();
}

asio::awaitable<AccountBudget::Ticket> AccountBudget::acquire(CallKind kind) {
  auto& queue = state_->queues[index(kind)];
  const auto at = now();
  if (queue.empty()) {
    if (const auto allowed = state_->allowed_at(kind, at); allowed && *allowed <= at) {
      for (auto* window : state_->windows_of(kind)) window->sent();
      co_return Ticket(state_, kind);
    }
  }
  auto waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor);
  queue.push_back(waiter);
  const auto state = state_;  // the budget may go away while we wait (reload): keep the state
  state->pump(kind, state);
  if (!waiter->granted) co_await waiter->wake.async_wait(asio::as_tuple(asio::use_awaitable));
  if (!waiter->granted) {
    std::erase(state->queues[index(kind)], waiter);
    state->pump(kind, state);
    throw boost::system::system_error(asio::error::operation_aborted);
  }
  co_return Ticket(state, kind);
}

std::optional<AccountBudget::Ticket> AccountBudget::try_acquire(CallKind kind) {
  const auto at = now();
  if (!state_->queues[index(kind)].empty()) return std::nullopt;
  const auto allowed = state_->allowed_at(kind, at);
  if (!allowed || *allowed > at) return std::nullopt;
  for (auto* window : state_->windows_of(kind)) window->sent();
  return Ticket(state_, kind);
}

std::optional<SteadyTime> AccountBudget::next_allowed(CallKind kind) const { return state_->allowed_at(kind, now()); }

void AccountBudget::set_limits(const Limits& limits) {
  state_->windows[index(CallKind::submit)].set_limit(limits.submits);
  state_->windows[index(CallKind::event_submit)].set_limit(limits.event_submits);
  state_->windows[index(CallKind::poll)].set_limit(limits.polls);
  state_->windows[index(CallKind::token)].set_limit(limits.tokens);
  state_->pump_all(state_);
}

void AccountBudget::start_cautiously() {
  const auto at = now();
  for (auto& window : state_->windows) window.throttled(at);
  state_->pump_all(state_);
}

std::size_t AccountBudget::waiting(CallKind kind) const { return state_->queues[index(kind)].size(); }
int AccountBudget::in_flight(CallKind kind) const { return state_->windows[index(kind)].in_flight(); }
double AccountBudget::pace(CallKind kind) const { return state_->windows[index(kind)].pace(now()); }
std::uint64_t AccountBudget::throttles(CallKind kind) const { return state_->throttles[index(kind)]; }

}  // namespace apsis::budget
