// One lease keeper and nothing else, for bench/lease_failover.py: holds a share of N accounts on a
// PostgreSQL database and prints each gain and loss on stdout as it happens
//   gained <account> <epoch>
//   lost <account> <reason>
// SIGTERM releases every lease (as the daemon will) and exits; SIGKILL is the crash under test.
//
//   bench_lease_keeper <postgresql-url> <accounts> <ttl-ms> <seed> [<releases per round, 0: all>]
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "lease/keeper.hpp"
#include "pg/settings.hpp"
#include "store/postgres_job_store.hpp"

namespace asio = boost::asio;
using namespace apsis;

namespace {

std::vector<std::string> account_names(int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "account%04d", i);
    names.emplace_back(name);
  }
  return names;
}

asio::awaitable<void> release_on_sigterm(asio::io_context& io, asio::signal_set& signals, lease::LeaseKeeper& keeper) {
  co_await signals.async_wait(asio::use_awaitable);
  co_await keeper.release_all();
  io.stop();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::cerr << "usage: bench_lease_keeper <postgresql-url> <accounts> <ttl-ms> <seed> [<releases per round>]\n";
    return 2;
  }
  try {
    asio::io_context io;
    const auto settings = pg::parse_database_url(argv[1], [](const std::string& name) -> std::optional<std::string> {
      if (const char* value = std::getenv(name.c_str())) return value;
      return std::nullopt;
    });
    store::PostgresJobStore::open(settings);  // the schema, with `instances` and `leases`
    lease::KeeperOptions options;
    options.ttl = Milliseconds(std::stol(argv[3]));
    if (argc == 6) options.max_releases_per_round = std::stoul(argv[5]);
    Random random(std::stoull(argv[4]));
    auto identity = lease::this_process(lease::random_instance_id(random), "bench", "bench");
    lease::KeeperCallbacks callbacks{
        [](const std::string& account, const store::Tenure& tenure) {
          std::printf("gained %s %lld\n", account.c_str(), static_cast<long long>(tenure.epoch));
          std::fflush(stdout);
        },
        [](const std::string& account, lease::LossReason reason) {
          std::printf("lost %s %s\n", account.c_str(), std::string(lease::describe(reason)).c_str());
          std::fflush(stdout);
        }};
    const auto report = [](Level level, std::string_view message) {
      if (level <= Level::warning) std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
    };
    lease::LeaseKeeper keeper(io.get_executor(), settings, std::move(identity), account_names(std::stoi(argv[2])),
                              options, std::make_shared<store::LeaseBook>(), callbacks, report, random);
    keeper.start();
    asio::signal_set signals(io, SIGTERM, SIGINT);
    asio::co_spawn(io, release_on_sigterm(io, signals, keeper), [](std::exception_ptr error) {
      if (error) std::rethrow_exception(error);
    });
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "bench_lease_keeper: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
