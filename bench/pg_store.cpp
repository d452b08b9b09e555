// Per-call latency of PostgresJobStore on a throw-away cluster's Unix socket (tests/pg/test_cluster):
// create, find, and record_progress with a batch of 1000 notes. Prints the median and p99 of each.
//   bench_pg_store [rows]     (default 2000 rows, each created, found and noted once)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "pg/settings.hpp"
#include "store/postgres_job_store.hpp"
#include "test_cluster.hpp"

using namespace apsis;
using namespace apsis::store;

namespace {

using Micros = std::chrono::duration<double, std::micro>;

void report(const char* what, std::vector<double> took) {
  std::sort(took.begin(), took.end());
  const auto at = [&](double q) { return took[static_cast<std::size_t>(q * static_cast<double>(took.size() - 1))]; };
  std::printf("%-28s n=%-6zu median %8.1f us   p99 %8.1f us\n", what, took.size(), at(0.5), at(0.99));
}

template <typename Call>
double timed(Call&& call) {
  const auto started = std::chrono::steady_clock::now();
  call();
  return Micros(std::chrono::steady_clock::now() - started).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int rows = argc > 1 ? std::atoi(argv[1]) : 2000;
  auto& cluster = testing::TestCluster::shared();
  const auto url = cluster.create_database("bench");
  auto store = PostgresJobStore::open(pg::parse_database_url(url, [](const std::string&) { return std::nullopt; }));
  const auto slot = *parse_iso8601("2026-11-29T06:30:00.000Z");
  const std::string definition = R"({"name":"bench","account":"acme"})";

  std::vector<double> creates, finds, batches;
  std::vector<std::int64_t> ids;
  for (int i = 0; i < rows; ++i)
    creates.push_back(timed([&] { ids.push_back(store->create("bench", slot + std::chrono::seconds(i), definition, slot).id); }));
  for (const auto id : ids) finds.push_back(timed([&] { store->find(id); }));
  std::vector<PollProgress> batch;
  for (int round = 0; round < 20; ++round) {
    batch.clear();
    for (int i = 0; i < 1000; ++i)
      batch.push_back({ids[static_cast<std::size_t>(i % rows)], JobState::submitted, round, slot, 404, 0, 0});
    batches.push_back(timed([&] { store->record_progress(batch); }));
  }
  report("create", creates);
  report("find", finds);
  report("record_progress (1000 notes)", batches);
}
