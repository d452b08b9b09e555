// Poll planning under a budget (issue 13, item 7): one account held to 1 poll/s, 2 000 jobs
// submitted over two hours, on a virtual clock. ORACLE (knows every ready time: a lower bound),
// TODAY (per-job back-off, due polls served first come first served) and PLANNER (the daemon's
// apsis::dispatch::PollPlanner) see the same jobs, the same budget
// (the daemon's own budget::CallWindow) and the same back-off. Prints a Markdown table and the
// targets, pass or fail; exits 1 if a target is missed.
//
//   build-bench/bench/bench_poll_planning [--seed N] [--round-trip-ms 100] [--jobs 2000] [--starvation-share X]

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "poll_planning/policies.hpp"
#include "poll_planning/scenario.hpp"
#include "poll_planning/simulation.hpp"

namespace bench {
namespace {

struct Options {
  std::uint64_t seed{20261201};
  Ms round_trip{100};
  int jobs{2000};
  std::optional<double> starvation_share;  // the planner's, to explore; its default otherwise
};

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::cerr << "bench_poll_planning: " << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--seed") options.seed = std::strtoull(value(), nullptr, 10);
    else if (arg == "--round-trip-ms") options.round_trip = std::strtoll(value(), nullptr, 10);
    else if (arg == "--jobs") options.jobs = std::atoi(value());
    else if (arg == "--starvation-share") options.starvation_share = std::strtod(value(), nullptr);
    else {
      std::cerr << "usage: bench_poll_planning [--seed N] [--round-trip-ms 100] [--jobs 2000] [--starvation-share X]\n";
      std::exit(2);
    }
  }
  return options;
}

Ms percentile(std::vector<Ms> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * double(values.size())));
  return values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// The most jobs waiting at any moment of [from, to], from the simulation's waiting timeline,
// through a sparse table over whole seconds (rounded outwards).
class WaitingPeaks {
 public:
  explicit WaitingPeaks(const SimResult& result) {
    const auto seconds = static_cast<std::size_t>(result.end / kSecond + 2);
    std::vector<int> per_second(seconds, 0);
    int current = 0;
    std::size_t next = 0;
    for (std::size_t s = 0; s < seconds; ++s) {
      int peak = current;
      for (; next < result.waiting.size() && result.waiting[next].first < Ms(s + 1) * kSecond; ++next) {
        current = result.waiting[next].second;
        peak = std::max(peak, current);
      }
      per_second[s] = peak;
    }
    table_.push_back(std::move(per_second));
    for (std::size_t span = 2; span <= seconds; span *= 2) {
      const auto& below = table_.back();
      std::vector<int> level(seconds - span + 1);
      for (std::size_t s = 0; s < level.size(); ++s) level[s] = std::max(below[s], below[s + span / 2]);
      table_.push_back(std::move(level));
    }
  }
  int peak(Ms from, Ms to) const {
    const auto a = static_cast<std::size_t>(from / kSecond), b = static_cast<std::size_t>(to / kSecond);
    const auto k = static_cast<std::size_t>(std::bit_width(b - a + 1) - 1);
    return std::max(table_[k][a], table_[k][b + 1 - (std::size_t(1) << k)]);
  }
  int overall() const { return *std::max_element(table_[0].begin(), table_[0].end()); }

 private:
  std::vector<std::vector<int>> table_;
};

struct Row {
  SimResult result;
  Ms p50{0}, p99{0}, max{0};
  Ms longest_gap{0};
  Ms bound_at_longest{0};  // what the round-robin bound allowed for that gap
  Ms peak_bound{0};        // the most jobs ever waiting ÷ budget
  int gaps_over_bound{0};
};

// A waiting job may go as long as its back-off asked, then one turn of a round robin over every
// job waiting meanwhile (waiting jobs ÷ budget).
Row summarize(SimResult result) {
  Row row;
  row.p50 = percentile(result.delays, 50);
  row.p99 = percentile(result.delays, 99);
  row.max = result.delays.empty() ? 0 : *std::max_element(result.delays.begin(), result.delays.end());
  const WaitingPeaks peaks(result);
  row.peak_bound = peaks.overall() * result.cycle;
  for (const auto& gap : result.gaps) {
    const Ms length = gap.to - gap.from;
    const Ms bound = std::max<Ms>(0, gap.earliest - gap.from) + peaks.peak(gap.from, gap.to) * result.cycle;
    if (length > bound) ++row.gaps_over_bound;
    if (length > row.longest_gap) {
      row.longest_gap = length;
      row.bound_at_longest = bound;
    }
  }
  row.result = std::move(result);
  return row;
}

std::string seconds(Ms ms) {
  char text[32];
  std::snprintf(text, sizeof text, ms < 10 * kSecond ? "%.1f" : "%.0f", double(ms) / 1000.0);
  return text;
}

void print_table(const std::vector<Row>& rows) {
  std::cout << "| case | policy | done | p50 s | p99 s | max s | polls | polls / job | expired | lost "
               "| longest gap s | its round-robin bound s | gaps over bound | peak bound s | budget violations |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& row : rows) {
    const auto& r = row.result;
    const bool gaps = !r.gaps.empty();
    char per_job[16];
    std::snprintf(per_job, sizeof per_job, "%.1f", double(r.polls) / std::max(1, r.jobs));
    std::cout << "| " << r.scenario << " | " << r.policy << " | " << r.done << " | " << seconds(row.p50) << " | "
              << seconds(row.p99) << " | " << seconds(row.max) << " | " << r.polls << " | " << per_job << " | "
              << r.expired << " | " << r.lost << " | " << (gaps ? seconds(row.longest_gap) : "—") << " | "
              << (gaps ? seconds(row.bound_at_longest) : "—") << " | " << (gaps ? std::to_string(row.gaps_over_bound) : "—")
              << " | " << seconds(row.peak_bound) << " | " << r.budget_violations << " |\n";
  }
}

std::vector<std::unique_ptr<Policy>> policies(const SimSettings& settings, const Options& options) {
  std::vector<std::unique_ptr<Policy>> all;
  all.push_back(std::make_unique<OraclePolicy>());
  all.push_back(std::make_unique<TodayPolicy>());
  // As the dispatcher tells it: the budget's window ÷ its count.
  apsis::dispatch::PlannerPolicy planner;
  if (options.starvation_share) planner.starvation_share = *options.starvation_share;
  all.push_back(std::make_unique<PlannerDriver>(settings.budget.window / settings.budget.count, planner));
  return all;
}

// The targets; returns whether all held.
bool print_targets(const std::vector<Row>& rows) {
  bool all_met = true;
  const auto verdict = [&](bool met, const std::string& what) {
    all_met = all_met && met;
    std::cout << "- " << (met ? "PASS" : "FAIL") << ": " << what << "\n";
  };
  for (const auto& row : rows)
    if (row.result.budget_violations != 0 || row.result.lost != 0)
      verdict(false, row.result.policy + " in " + row.result.scenario + ": " +
                         std::to_string(row.result.budget_violations) + " budget violations, " +
                         std::to_string(row.result.lost) + " jobs never served");
  verdict(std::all_of(rows.begin(), rows.end(), [](const Row& r) { return r.result.budget_violations == 0; }),
          "no 1 s window holds more polls than the budget (every policy, every case)");
  std::map<std::string, const Row*> today, planner;
  for (const auto& row : rows) {
    if (row.result.policy == "TODAY") today[row.result.scenario] = &row;
    if (row.result.policy == "PLANNER") planner[row.result.scenario] = &row;
  }
  for (const auto& [scenario, mine] : planner) {
    const Row& theirs = *today.at(scenario);
    const bool recurring = scenario.rfind("(b)", 0) == 0;
    const Ms allowed = recurring ? theirs.p99 / 2 : theirs.p99;
    verdict(mine->p99 <= allowed, "PLANNER p99 " + seconds(mine->p99) + " s ≤ " + (recurring ? "half of " : "") +
                                      "TODAY's " + seconds(theirs.p99) + " s in " + scenario);
    verdict(mine->gaps_over_bound == 0, "PLANNER: no gap between two polls of a waiting job over the round-robin "
                                        "bound in " + scenario + " (" + std::to_string(mine->gaps_over_bound) + ")");
  }
  return all_met;
}

int run(const Options& options) {
  ScenarioShape shape;
  shape.jobs = options.jobs;
  SimSettings settings;
  settings.round_trip = options.round_trip;
  std::mt19937_64 random(options.seed);
  std::vector<Scenario> scenarios;
  scenarios.push_back(first_runs(Spread::log_uniform, shape, random));
  scenarios.push_back(first_runs(Spread::uniform, shape, random));
  scenarios.push_back(recurring(std::max(1, shape.jobs / 10), 5, shape, random));

  std::vector<Row> rows;
  for (const auto& scenario : scenarios)
    for (auto& policy : policies(settings, options)) {
      settings.seed = options.seed + 1;  // the same back-off draws for every policy
      rows.push_back(summarize(Simulation(scenario, *policy, settings).run()));
    }
  std::cout << "One account, budget 1 poll/s (budget::CallWindow), " << shape.jobs
            << " jobs submitted over 2 h (≥ 1 s apart), poll URLs valid 24 h, round trip " << options.round_trip
            << " ms, default polling back-off (initial " << settings.backoff.initial_delay.count() / 1000 << " s, ×"
            << settings.backoff.multiplier << ", max " << settings.backoff.max_delay.count() / 1000
            << " s, full jitter), seed " << options.seed
            << (options.starvation_share ? ", planner starvation_share " + std::to_string(*options.starvation_share) : "")
            << ". Delay = ready → the poll that finds the file."
            << " Round-robin bound of a gap = its back-off + the most jobs waiting meanwhile × (1 s + round trip).\n\n";
  print_table(rows);
  std::cout << "\n";
  return print_targets(rows) ? 0 : 1;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) { return bench::run(bench::parse(argc, argv)); }
