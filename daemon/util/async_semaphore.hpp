// A counting semaphore for coroutines on one strand: at most `capacity` holders at once, the rest
// wait in FIFO order without a thread each. Used for the connection, download and request limits.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <memory>

namespace apsis {

class AsyncSemaphore {
 public:
  // Releases its unit when destroyed.
  class Permit {
   public:
    Permit() = default;
    explicit Permit(AsyncSemaphore* owner) : owner_(owner) {}
    Permit(Permit&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        reset();
        owner_ = std::exchange(other.owner_, nullptr);
      }
      return *this;
    }
    ~Permit() { reset(); }
    void reset() {
      if (owner_) std::exchange(owner_, nullptr)->release();
    }

   private:
    AsyncSemaphore* owner_{nullptr};
  };

  // capacity 0 means unlimited.
  explicit AsyncSemaphore(std::size_t capacity) : capacity_(capacity) {}

  boost::asio::awaitable<Permit> acquire() {
    if (capacity_ == 0 || (in_use_ < capacity_ && waiters_.empty())) {
      ++in_use_;
      co_return Permit(this);
    }
    auto waiter = std::make_shared<boost::asio::steady_timer>(co_await boost::asio::this_coro::executor,
                                                              boost::asio::steady_timer::time_point::max());
    waiters_.push_back(waiter);
    // release() hands its unit over by cancelling our timer; any other wake-up (shutdown) throws.
    co_await waiter->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (!handed_over(waiter)) {
      std::erase(waiters_, waiter);
      throw boost::system::system_error(boost::asio::error::operation_aborted);
    }
    co_return Permit(this);
  }

  std::size_t in_use() const { return in_use_; }
  std::size_t waiting() const { return waiters_.size(); }
  void set_capacity(std::size_t capacity) {
    capacity_ = capacity;
    wake();
  }

 private:
  bool handed_over(const std::shared_ptr<boost::asio::steady_timer>& waiter) {
    const auto it = std::find(granted_.begin(), granted_.end(), waiter);
    if (it == granted_.end()) return false;
    granted_.erase(it);
    return true;
  }

  void release() {
    --in_use_;
    wake();
  }

  void wake() {
    while (!waiters_.empty() && (capacity_ == 0 || in_use_ < capacity_)) {
      auto next = waiters_.front();
      waiters_.pop_front();
      ++in_use_;
      granted_.push_back(next);
      next->cancel();
    }
  }

  std::size_t capacity_;
  std::size_t in_use_{0};
  std::deque<std::shared_ptr<boost::asio::steady_timer>> waiters_;
  std::deque<std::shared_ptr<boost::asio::steady_timer>> granted_;
};

}  // namespace apsis
