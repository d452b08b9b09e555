#include "lease/holders.hpp"

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>

#include "pg/connection.hpp"
#include "pg/run_to_completion.hpp"

namespace apsis::lease {
namespace {

using namespace std::chrono_literals;
constexpr auto kTimeout = 5s;

constexpr std::string_view kLiveInstances =
    "SELECT id, host, pid, config_hash, version FROM instances WHERE expires_at > now() ORDER BY id";
// A lease counts as held only while it is unexpired and its instance still heartbeats, both by the
// database's clock: a lease row can outlive a killed instance by up to its TTL.
constexpr std::string_view kHolders = R"(
SELECT l.account, l.owner, l.epoch,
       (l.owner IS NOT NULL AND l.expires_at > now() AND i.expires_at > now()) AS live
FROM leases AS l LEFT JOIN instances AS i ON i.id = l.owner
ORDER BY l.account)";

boost::asio::awaitable<LeaseView> read(pg::ConnectionSettings settings) {
  auto connection = co_await pg::Connection::connect(std::move(settings), kTimeout);
  LeaseView view;
  const auto instances = co_await connection.query(kLiveInstances, {}, kTimeout);
  for (int r = 0; r < instances.rows(); ++r)
    view.instances.push_back({std::string(instances.text(r, 0)), std::string(instances.text(r, 1)),
                              instances.int64(r, 2), std::string(instances.text(r, 3)),
                              std::string(instances.text(r, 4))});
  const auto holders = co_await connection.query(kHolders, {}, kTimeout);
  for (int r = 0; r < holders.rows(); ++r) {
    AccountHolder holder;
    holder.account = std::string(holders.text(r, 0));
    if (const auto owner = holders.optional_text(r, 1)) holder.owner = std::string(*owner);
    holder.epoch = holders.int64(r, 2);
    holder.live = holders.optional_text(r, 3).value_or("f") == "t";
    view.accounts.push_back(std::move(holder));
  }
  co_return view;
}

}  // namespace

const AccountHolder* LeaseView::holder_of(const std::string& account) const {
  const auto found = std::find_if(accounts.begin(), accounts.end(), [&](const auto& a) { return a.account == account; });
  return found == accounts.end() ? nullptr : &*found;
}

const InstanceRow* LeaseView::instance(const std::string& id) const {
  const auto found = std::find_if(instances.begin(), instances.end(), [&](const auto& i) { return i.id == id; });
  return found == instances.end() ? nullptr : &*found;
}

LeaseView read_leases(const pg::ConnectionSettings& settings) {
  boost::asio::io_context io;
  return pg::run_to_completion(io, read(settings));
}

}  // namespace apsis::lease
