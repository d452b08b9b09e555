// Which accounts this instance holds a lease on, and at which epoch: what fences the store's writes.
// The lease keeper writes it on the event loop; the store reads it on the database thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace apsis::store {

// One holding of an account's lease: the instance that holds it and the epoch it was claimed at. A
// write fenced by a tenure succeeds only while the leases row still names this owner at this epoch
// and has not expired by the database's clock.
struct Tenure {
  std::string owner;
  std::int64_t epoch{0};

  friend bool operator==(const Tenure&, const Tenure&) = default;
};

// Thread-safe: written by the lease keeper on the event loop, read by the store on the database thread.
class LeaseBook {
 public:
  void hold(const std::string& account, Tenure tenure) {
    std::lock_guard lock(mutex_);
    held_[account] = std::move(tenure);
  }
  void drop(const std::string& account) {
    std::lock_guard lock(mutex_);
    held_.erase(account);
  }
  std::optional<Tenure> tenure(const std::string& account) const {
    std::lock_guard lock(mutex_);
    const auto found = held_.find(account);
    if (found == held_.end()) return std::nullopt;
    return found->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Tenure> held_;
};

}  // namespace apsis::store
