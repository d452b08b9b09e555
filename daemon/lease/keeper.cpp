#include "lease/keeper.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <map>
#include <set>

#include "pg/connection.hpp"

namespace apsis::lease {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

KeeperOptions resolved(KeeperOptions options) {
  if (options.renew_interval <= Milliseconds::zero()) options.renew_interval = options.ttl / 3;
  if (options.safety_margin <= Milliseconds::zero()) options.safety_margin = options.ttl / 5;
  if (options.statement_timeout <= Milliseconds::zero()) options.statement_timeout = options.renew_interval;
  return options;
}

Identity this_process(std::string id, std::string config_hash, std::string version) {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  return {std::move(id), host.data(), static_cast<long>(::getpid()), std::move(config_hash), std::move(version)};
}

std::string random_instance_id(Random& random) {
  std::array<char, 33> hex{};
  std::snprintf(hex.data(), hex.size(), "%016llx%016llx", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random()));
  return hex.data();
}

class LeaseKeeper::State : public std::enable_shared_from_this<State> {
 public:
  State(asio::any_io_executor executor, pg::ConnectionSettings settings, Identity identity,
        std::vector<std::string> accounts, KeeperOptions options, std::shared_ptr<store::LeaseBook> book,
        KeeperCallbacks callbacks, Report report, Random random, NowFunction now)
      : executor_(std::move(executor)),
        settings_(std::move(settings)),
        identity_(std::move(identity)),
        accounts_(std::move(accounts)),
        options_(resolved(options)),
        book_(std::move(book)),
        callbacks_(std::move(callbacks)),
        report_(std::move(report)),
        random_(random),
        now_(std::move(now)),
        wait_timer_(executor_),
        guard_timer_(executor_),
        loop_done_(executor_) {}

  void start();
  void halt();
  void abandon();
  asio::awaitable<void> release_all();
  LeaseSnapshot snapshot() const;
  const std::string& id() const { return identity_.id; }
  void reconfigure(std::vector<std::string> accounts, std::string config_hash) {
    accounts_ = std::move(accounts);
    if (config_hash != identity_.config_hash) mismatch_reported_.clear();
    identity_.config_hash = std::move(config_hash);
  }

 private:
  asio::awaitable<void> renew_loop();
  asio::awaitable<void> guard_loop();
  asio::awaitable<void> one_round(SteadyClock::time_point started);
  void note_instances(std::vector<InstanceRow> live);
  void gain(const std::string& account, std::int64_t epoch);
  void lose(const std::string& account, LossReason reason);
  void lose_all(LossReason reason);
  void report(Level level, const std::string& message) const;
  std::function<void(std::exception_ptr)> report_escape(std::string what);
  BackoffPolicy reconnect_policy() const;

  asio::any_io_executor executor_;
  pg::ConnectionSettings settings_;
  Identity identity_;
  std::vector<std::string> accounts_;
  KeeperOptions options_;
  std::shared_ptr<store::LeaseBook> book_;
  KeeperCallbacks callbacks_;
  Report report_;
  Random random_;
  NowFunction now_;

  std::optional<pg::Connection> connection_;
  std::map<std::string, std::int64_t> held_;  // account → epoch
  std::vector<InstanceRow> live_;
  std::optional<TimePoint> last_renewal_;
  std::set<std::string> mismatch_reported_;
  SteadyClock::time_point guard_deadline_ = SteadyClock::time_point::max();

  bool started_{false};
  bool stopping_{false};  // the rounds end
  bool silent_{false};    // no callbacks and no reports: the keeper's owner is gone
  bool loop_running_{false};
  asio::cancellation_signal cancel_round_;
  asio::steady_timer wait_timer_;
  asio::steady_timer guard_timer_;
  asio::steady_timer loop_done_;  // cancelled when the renew loop has ended
};

void LeaseKeeper::State::start() {
  if (started_ || stopping_) return;
  started_ = true;
  loop_running_ = true;
  asio::co_spawn(executor_, renew_loop(),
                 asio::bind_cancellation_slot(cancel_round_.slot(), report_escape("lease renewal stopped")));
  asio::co_spawn(executor_, guard_loop(), report_escape("lease guard stopped"));
}

void LeaseKeeper::State::halt() {
  stopping_ = true;
  cancel_round_.emit(asio::cancellation_type::terminal);
  wait_timer_.cancel();
  guard_timer_.cancel();
}

void LeaseKeeper::State::abandon() {
  silent_ = true;
  halt();
  for (const auto& [account, epoch] : held_) book_->drop(account);
  held_.clear();
}

asio::awaitable<void> LeaseKeeper::State::renew_loop() {
  auto self = shared_from_this();
  int failures = 0;
  while (!stopping_) {
    const auto started = SteadyClock::now();
    std::string error;
    try {
      co_await one_round(started);
      failures = 0;
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (stopping_) break;
    if (error.empty()) {
      wait_timer_.expires_at(started + options_.renew_interval);
    } else {
      connection_.reset();
      const auto delay = backoff_delay(reconnect_policy(), failures++, random_);
      report(Level::warning, "renewal failed (" + std::to_string(failures) + " in a row): " + error +
                                 "; retrying in " + std::to_string(delay.count()) + " ms");
      wait_timer_.expires_after(delay);
    }
    co_await wait_timer_.async_wait(kTuple);
  }
  connection_.reset();
  loop_running_ = false;
  loop_done_.cancel();
}

asio::awaitable<void> LeaseKeeper::State::one_round(SteadyClock::time_point started) {
  if (connection_ && !connection_->ok()) connection_.reset();
  if (!connection_) {
    connection_.emplace(co_await pg::Connection::connect(settings_, options_.statement_timeout));
    report(Level::info, "connected to " + pg::redacted(settings_) + " as instance " + identity_.id);
  }
  const TimePoint wall = now_();
  const RoundSettings settings{options_.ttl, options_.statement_timeout, options_.max_releases_per_round};
  const LoseFunction lose_one = [this](const std::string& account, LossReason reason) { lose(account, reason); };
  // Copies: reconfigure() may run while the round waits.
  const Identity identity = identity_;
  const std::vector<std::string> accounts = accounts_;
  auto outcome = co_await run_round(*connection_, identity, accounts, held_, settings, lose_one);
  if (stopping_) co_return;
  // The database set every expiry from its now() inside the transaction, which began after `started`.
  guard_deadline_ = started + options_.ttl - options_.safety_margin;
  guard_timer_.cancel();
  last_renewal_ = wall;
  note_instances(std::move(outcome.live));
  for (const auto& [account, epoch] : outcome.gained) gain(account, epoch);
}

asio::awaitable<void> LeaseKeeper::State::guard_loop() {
  auto self = shared_from_this();
  while (!stopping_) {
    guard_timer_.expires_at(guard_deadline_);
    co_await guard_timer_.async_wait(kTuple);
    if (stopping_) break;
    if (SteadyClock::now() < guard_deadline_) continue;  // a renewal moved it
    if (!held_.empty()) {
      report(Level::warning, "no lease renewal succeeded for " + std::to_string(options_.ttl.count()) + " ms less the " +
                                 std::to_string(options_.safety_margin.count()) + " ms margin: giving up " +
                                 std::to_string(held_.size()) + " accounts until the database answers again");
      lose_all(LossReason::overdue);
    }
    guard_deadline_ = SteadyClock::time_point::max();
  }
}

asio::awaitable<void> LeaseKeeper::State::release_all() {
  auto self = shared_from_this();
  const auto deadline = SteadyClock::now() + options_.release_timeout;
  halt();
  lose_all(LossReason::shutdown);
  if (loop_running_) {
    loop_done_.expires_at(deadline);
    co_await loop_done_.async_wait(kTuple);
  }
  const auto remaining = [&] {
    return std::max(Milliseconds(1), std::chrono::duration_cast<Milliseconds>(deadline - SteadyClock::now()));
  };
  std::string error;
  try {
    auto connection = co_await pg::Connection::connect(settings_, remaining());
    co_await release_everything(connection, identity_.id, remaining());
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (error.empty())
    report(Level::info, "released every account lease of instance " + identity_.id);
  else
    report(Level::warning, "could not release the account leases of instance " + identity_.id + ": " + error +
                               "; they expire after " + std::to_string(options_.ttl.count()) + " ms");
}

void LeaseKeeper::State::note_instances(std::vector<InstanceRow> live) {
  live_ = std::move(live);
  for (const auto& instance : live_) {
    if (instance.config_hash == identity_.config_hash || mismatch_reported_.contains(instance.id)) continue;
    mismatch_reported_.insert(instance.id);
    report(Level::warning, "instance " + instance.id + " on " + instance.host + " (pid " +
                               std::to_string(instance.pid) + ", version " + instance.version +
                               ") runs a different configuration: hash " + instance.config_hash + ", ours " +
                               identity_.config_hash);
  }
}

void LeaseKeeper::State::gain(const std::string& account, std::int64_t epoch) {
  held_[account] = epoch;
  const store::Tenure tenure{identity_.id, epoch};
  book_->hold(account, tenure);
  // debug: the daemon's callbacks say it at notice.
  report(Level::debug, "holds account " + account + " (epoch " + std::to_string(epoch) + ")");
  if (silent_ || !callbacks_.on_gained) return;
  try {
    callbacks_.on_gained(account, tenure);
  } catch (const std::exception& e) {
    report(Level::error, "on_gained(" + account + ") failed: " + e.what());
  }
}

void LeaseKeeper::State::lose(const std::string& account, LossReason reason) {
  if (held_.erase(account) == 0) return;
  book_->drop(account);
  report(Level::debug, "lost account " + account + ": " + std::string(describe(reason)));
  if (silent_ || !callbacks_.on_lost) return;
  try {
    callbacks_.on_lost(account, reason);
  } catch (const std::exception& e) {
    report(Level::error, "on_lost(" + account + ") failed: " + e.what());
  }
}

void LeaseKeeper::State::lose_all(LossReason reason) {
  std::vector<std::string> accounts;
  for (const auto& [account, epoch] : held_) accounts.push_back(account);
  for (const auto& account : accounts) lose(account, reason);
}

void LeaseKeeper::State::report(Level level, const std::string& message) const {
  if (!silent_ && report_) report_(level, message);
}

// co_spawn's completion handler: an exception that escaped a loop (each loop catches its own, so
// this is a bug, but it is said, never swallowed).
std::function<void(std::exception_ptr)> LeaseKeeper::State::report_escape(std::string what) {
  return [self = shared_from_this(), what = std::move(what)](std::exception_ptr error) {
    if (!error || self->stopping_) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      self->report(Level::error, what + ": " + e.what());
    } catch (...) {
      self->report(Level::error, what + ": unknown exception");
    }
  };
}

BackoffPolicy LeaseKeeper::State::reconnect_policy() const {
  const auto interval = options_.renew_interval;
  return {std::max(Milliseconds(20), interval / 5), 2.0, interval};
}

LeaseSnapshot LeaseKeeper::State::snapshot() const {
  LeaseSnapshot snapshot;
  snapshot.instance_id = identity_.id;
  for (const auto& [account, epoch] : held_) snapshot.held.push_back(account);
  snapshot.live_instances = live_;
  snapshot.last_renewal = last_renewal_;
  for (const auto& instance : live_)
    if (instance.config_hash != identity_.config_hash) snapshot.config_mismatches.push_back(instance.id);
  snapshot.connected = connection_ && connection_->ok();
  return snapshot;
}

LeaseKeeper::LeaseKeeper(asio::any_io_executor executor, pg::ConnectionSettings settings, Identity identity,
                         std::vector<std::string> accounts, KeeperOptions options,
                         std::shared_ptr<store::LeaseBook> book, KeeperCallbacks callbacks, Report report,
                         Random random, NowFunction now)
    : state_(std::make_shared<State>(std::move(executor), std::move(settings), std::move(identity),
                                     std::move(accounts), options, std::move(book), std::move(callbacks),
                                     std::move(report), random, std::move(now))) {}

LeaseKeeper::~LeaseKeeper() { state_->abandon(); }

void LeaseKeeper::start() { state_->start(); }
asio::awaitable<void> LeaseKeeper::release_all() { co_await state_->release_all(); }
void LeaseKeeper::reconfigure(std::vector<std::string> accounts, std::string config_hash) {
  state_->reconfigure(std::move(accounts), std::move(config_hash));
}
LeaseSnapshot LeaseKeeper::snapshot() const { return state_->snapshot(); }
const std::string& LeaseKeeper::id() const { return state_->id(); }

}  // namespace apsis::lease
