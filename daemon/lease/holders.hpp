// Who holds which account, as the database says now: for `status` and for `once`, which hands its job
// to the account's owner. Read-only; any process may ask.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lease/round.hpp"
#include "pg/settings.hpp"

namespace apsis::lease {

struct AccountHolder {
  std::string account;
  std::optional<std::string> owner;  // instance id; empty: nobody holds it now
  std::int64_t epoch{0};
  bool live{false};  // held, and neither the lease nor its instance's heartbeat has expired
};

struct LeaseView {
  std::vector<InstanceRow> instances;  // live ones
  std::vector<AccountHolder> accounts;

  const AccountHolder* holder_of(const std::string& account) const;
  const InstanceRow* instance(const std::string& id) const;
};

// One short connection; throws pg::Error when the database cannot answer.
LeaseView read_leases(const pg::ConnectionSettings& settings);

}  // namespace apsis::lease
