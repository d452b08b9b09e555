#include "budget/call_window.hpp"

#include <algorithm>
#include <cmath>

namespace apsis::budget {

double CallWindow::pace(SteadyTime now) const {
  if (!changed_at_) return 1.0;
  const auto quiet_minutes = std::chrono::duration_cast<std::chrono::minutes>(now - *changed_at_).count();
  return std::min(1.0, pace_at_change_ + kRecoveryPerQuietMinute * static_cast<double>(std::max<long>(0, quiet_minutes)));
}

Limit CallWindow::effective(SteadyTime now) const {
  const double requests = limit_.count * pace(now);
  if (requests >= 1.0) return {static_cast<int>(std::floor(requests + 1e-9)), limit_.window};
  // Fewer than one request per window: one request per proportionally longer window.
  const auto stretched = std::chrono::duration<double, std::milli>(limit_.window) / requests;
  return {1, std::chrono::ceil<Milliseconds>(stretched)};
}

std::optional<SteadyTime> CallWindow::allowed_at(SteadyTime now) const {
  const auto limit = effective(now);
  // answered_ is sorted: the answers still in the window are a suffix of it.
  const auto first_recent = std::upper_bound(answered_.begin(), answered_.end(), now - limit.window);
  const long recent = answered_.end() - first_recent;
  const long over = recent + in_flight_ - limit.count + 1;  // how many must leave the window first
  if (over <= 0) return now;
  if (over > recent) return std::nullopt;
  // The over-th oldest of the recent answers leaves the window first.
  return std::max(now, *(first_recent + (over - 1)) + limit.window);
}

void CallWindow::sent() { ++in_flight_; }

void CallWindow::withdrawn() {
  if (in_flight_ > 0) --in_flight_;
}

void CallWindow::answered(SteadyTime now) {
  if (in_flight_ > 0) --in_flight_;
  answered_.push_back(now);
  // Only the newest `count` answers can ever hold back a request: the effective count never grows
  // above the configured one.
  while (answered_.size() > static_cast<std::size_t>(std::max(1, limit_.count))) answered_.pop_front();
  // Nor can an answer older than the longest window a slowdown may stretch to.
  const auto longest = std::chrono::duration_cast<Milliseconds>(limit_.window / kSlowest);
  while (!answered_.empty() && answered_.front() + longest < now) answered_.pop_front();
}

void CallWindow::throttled(SteadyTime now) {
  // The answers to requests sent in one burst arrive together: they are one signal, not several.
  if (changed_at_ && now - *changed_at_ < effective(now).window) return;
  pace_at_change_ = std::max(kSlowest, pace(now) / 2);
  changed_at_ = now;
}

}  // namespace apsis::budget
