// Several instances on one PostgreSQL job table share the work by account lease (daemon/lease/):
// an instance runs the schedules and jobs of the accounts it holds, resumes an account's jobs from
// their rows when it gains it, and lets them go without a write when it loses it. With SQLite there
// is one instance, and it holds every account.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fstream>
#include <iterator>
#include <random>

#include "config/env_expand.hpp"
#include "pg/settings.hpp"
#include "service/daemon.hpp"
#include "service/daemon_internal.hpp"
#include "sink/sha256.hpp"

namespace apsis::service {
namespace {

namespace asio = boost::asio;

std::string file_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

// Without drop-ins the hash stays that of the file alone, as older instances record it. Each drop-in is
// length-prefixed so moving bytes from one file into the next changes the hash.
std::string config_hash(const config::Config& config) {
  sink::Sha256 hash;
  hash.update(file_text(config.source));
  for (const auto& drop_in : config.drop_ins) {
    const auto text = file_text(drop_in);
    const auto name = drop_in.lexically_relative(config.source.parent_path()).string();
    hash.update(std::string(1, '\0') + "include " + std::to_string(name.size()) + " " + name + " " +
                std::to_string(text.size()) + "\n");
    hash.update(text);
  }
  return hash.hex_digest();
}

std::vector<std::string> account_names_of(const config::Config& config) {
  std::vector<std::string> names;
  for (const auto& [name, account] : config.accounts) names.push_back(name);
  return names;
}

bool Daemon::holds(const std::string& account) const { return !leases_ || leases_->tenure(account).has_value(); }

void Daemon::start_leases() {
  const auto settings = pg::parse_database_url(*config_->state_db_url, config::process_environment());
  lease::KeeperOptions options;
  options.ttl = config_->lease_ttl;
  auto identity = lease::this_process(instance_id_, config_hash(*config_), APSIS_VERSION);
  lease::KeeperCallbacks callbacks{
      [this](const std::string& account, const store::Tenure& tenure) { account_gained(account, tenure); },
      [this](const std::string& account, lease::LossReason reason) { account_lost(account, reason); }};
  keeper_ = std::make_unique<lease::LeaseKeeper>(
      io_.get_executor(), settings, std::move(identity), account_names_of(*config_), options, leases_,
      std::move(callbacks), [this](Level level, std::string_view message) { log_.log(level, "lease: " + std::string(message)); },
      Random(std::random_device{}()));
  log_.log(Level::notice, "instance " + keeper_->id() + " sharing " + std::to_string(config_->accounts.size()) +
                              " account(s) by lease (ttl " + seconds_text(config_->lease_ttl) + ")");
  keeper_->start();
}

void Daemon::account_gained(const std::string& account, const store::Tenure& tenure) {
  if (stopping_) return;
  log_.log(Level::notice, "lease: gained account " + account + " (epoch " + std::to_string(tenure.epoch) + ")");
  // The previous owner's last requests still count at APSIS for a while, and we cannot know them:
  // start the account at half its pace, recovering as after a 429.
  if (const auto client = clients_.find(account); client != clients_.end()) client->second->budget().start_cautiously();
  asio::co_spawn(io_, resume_account(account), [this, account](std::exception_ptr error) {
    if (error && !is_cancellation(error))
      log_.log(Level::error, "lease: resuming the jobs of account " + account + ": " + describe(error));
  });
  start_schedules_of(account);
}

void Daemon::account_lost(const std::string& account, lease::LossReason reason) {
  stop_schedules_of(account);
  const auto left = dispatcher_->release_account(account);
  log_.log(stopping_ ? Level::info : Level::warning,
           "lease: lost account " + account + ": " + std::string(lease::describe(reason)) + "; " +
               std::to_string(left) + " job(s) left to its next owner, their rows untouched");
}

// Pages through the account's unfinished rows on the database thread: the new owner continues each
// job from its row (a stored poll URL is polled, never submitted again).
asio::awaitable<void> Daemon::resume_account(std::string account) {
  constexpr int kPage = 1000;
  std::size_t resumed = 0;
  for (std::int64_t after = 0;;) {
    std::function<std::vector<store::Job>(store::JobStore&)> read = [&account, after](store::JobStore& store) {
      return store.unfinished_of_account(account, after, kPage);
    };
    auto page = co_await writer_.call(std::move(read));
    if (page.empty() || !holds(account) || stopping_) break;
    after = page.back().id;
    for (auto& job : page) {
      ++resumed;
      adopt(std::move(job), false);
    }
  }
  if (resumed > 0) log_.log(Level::info, "lease: account " + account + ": " + std::to_string(resumed) + " job(s) resumed");
}

void Daemon::start_schedules_of(const std::string& account) {
  auto tasks = make_schedules(*config_, true, account);
  for (auto& [name, task] : tasks) {
    if (const auto running = schedules_.find(name); running != schedules_.end()) continue;
    schedules_[name] = task;
    spawn_schedule(name, task);
  }
}

void Daemon::stop_schedules_of(const std::string& account) {
  for (auto it = schedules_.begin(); it != schedules_.end();) {
    if (it->second->definition.account != account) {
      ++it;
      continue;
    }
    it->second->stopped = true;
    it->second->timer.cancel();
    it = schedules_.erase(it);
  }
}

// SIGTERM: the last progress notes are written while the leases still fence them, then every lease
// is released at once, so the other instances take the accounts over without waiting for the TTL.
asio::awaitable<void> Daemon::shut_down() {
  try {
    co_await writer_.flush();
  } catch (const std::exception& e) {
    log_.log(Level::warning, std::string("writing the last poll notes at shutdown: ") + e.what());
  }
  if (keeper_) co_await keeper_->release_all();
}

}  // namespace apsis::service
