// Which accounts this instance holds the lease of, and under which epoch: the fence every write for
// a leased account's job carries (PostgresJobStore). Thread-safe: written by the lease keeper on the
// event loop, read by the store on the database thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace apsis::store {

struct Tenure {
  std::string owner;
  std::int64_t epoch{0};
};

class LeaseBook {
 public:
  void hold(const std::string& account, Tenure tenure) {
    std::lock_guard lock(mutex_);
    tenures_[account] = std::move(tenure);
  }
  void drop(const std::string& account) {
    std::lock_guard lock(mutex_);
    tenures_.erase(account);
  }
  std::optional<Tenure> tenure(const std::string& account) const {
    std::lock_guard lock(mutex_);
    const auto it = tenures_.find(account);
    if (it == tenures_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Tenure> tenures_;
};

}  // namespace apsis::store
