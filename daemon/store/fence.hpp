// Which account leases this instance holds, and in which tenure (PostgreSQL with several daemons).
// The lease keeper (daemon/lease/) writes it on the event loop; the PostgreSQL store reads it on the
// database thread to make every write for a job conditional on its account's lease: a write for an
// account this instance no longer holds lands nowhere (store::LeaseLost).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace apsis::store {

// One holding of an account's lease: the epoch grows with every change of owner, so a write from an
// earlier holding never passes for the current one.
struct Tenure {
  std::string owner;  // the instance id
  std::int64_t epoch{0};

  friend bool operator==(const Tenure&, const Tenure&) = default;
};

// Thread-safe: shared between the event loop and the database thread.
class LeaseBook {
 public:
  void hold(const std::string& account, Tenure tenure) {
    const std::lock_guard lock(mutex_);
    held_[account] = std::move(tenure);
  }
  void drop(const std::string& account) {
    const std::lock_guard lock(mutex_);
    held_.erase(account);
  }
  std::optional<Tenure> tenure(const std::string& account) const {
    const std::lock_guard lock(mutex_);
    const auto found = held_.find(account);
    if (found == held_.end()) return std::nullopt;
    return found->second;
  }
  std::vector<std::string> accounts() const {
    const std::lock_guard lock(mutex_);
    std::vector<std::string> names;
    for (const auto& [name, tenure] : held_) names.push_back(name);
    return names;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Tenure> held_;
};

}  // namespace apsis::store
