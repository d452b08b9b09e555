// The jobs of one account for the poll-planning benchmark: when each is submitted, when APSIS One
// has its file ready, and what the job table knows about its export's earlier runs. Times are
// milliseconds on the simulator's virtual clock; nothing here knows about policies.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace bench {

using Ms = std::int64_t;
constexpr Ms kSecond = 1000;
constexpr Ms kMinute = 60 * kSecond;
constexpr Ms kHour = 60 * kMinute;

struct SimJob {
  std::int64_t id{0};
  Ms submitted{0};
  Ms ready{0};    // the first moment a poll finds the file
  Ms expires{0};  // the poll URL's end of validity
  std::optional<Ms> typical;  // median submit → ready of the export's earlier runs, if it has ≥ 5
};

struct Scenario {
  std::string name;
  std::vector<SimJob> jobs;  // in submit order
};

enum class Spread { log_uniform, uniform };

struct ScenarioShape {
  int jobs{2000};
  Ms submit_span{2 * kHour};
  Ms shortest{1 * kMinute};
  Ms longest{6 * kHour};
  Ms url_validity{24 * kHour};
  Ms submit_spacing{kSecond};  // the submit budget: one per second
};

inline Ms draw_duration(Spread spread, Ms low, Ms high, std::mt19937_64& random) {
  if (spread == Spread::uniform) return std::uniform_int_distribution<Ms>(low, high)(random);
  std::uniform_real_distribution<double> exponent(std::log(double(low)), std::log(double(high)));
  return static_cast<Ms>(std::exp(exponent(random)));
}

// Submits no closer than the submit budget allows: a burst is sent one per second.
inline void space_submits(std::vector<SimJob>& jobs, const ScenarioShape& shape) {
  std::sort(jobs.begin(), jobs.end(), [](const SimJob& a, const SimJob& b) { return a.submitted < b.submitted; });
  Ms earliest = 0;
  std::int64_t id = 1;
  for (auto& job : jobs) {
    const Ms processing = job.ready - job.submitted;
    job.submitted = std::max(job.submitted, earliest);
    job.ready = job.submitted + processing;
    job.expires = job.submitted + shape.url_validity;
    job.id = id++;
    earliest = job.submitted + shape.submit_spacing;
  }
}

// (a) First runs: nothing is known about the export; processing times spread over 1 min – 6 h.
inline Scenario first_runs(Spread spread, const ScenarioShape& shape, std::mt19937_64& random) {
  Scenario scenario{spread == Spread::uniform ? "(a) first runs, uniform 1 min–6 h"
                                              : "(a) first runs, log-uniform 1 min–6 h",
                    {}};
  std::uniform_int_distribution<Ms> submit(0, shape.submit_span);
  for (int i = 0; i < shape.jobs; ++i) {
    SimJob job;
    job.submitted = submit(random);
    job.ready = job.submitted + draw_duration(spread, shape.shortest, shape.longest, random);
    scenario.jobs.push_back(job);
  }
  space_submits(scenario.jobs, shape);
  return scenario;
}

inline Ms median(std::vector<Ms> values) {
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// (b) Recurring exports: each export's runs take its own median ± 20 %; the job table holds
// `history` earlier runs of each, so the planner is told their median.
inline Scenario recurring(int exports, int history, const ScenarioShape& shape, std::mt19937_64& random) {
  Scenario scenario{"(b) recurring: " + std::to_string(exports) + " exports × " +
                        std::to_string(shape.jobs / exports) + " runs, ±20 % of own median",
                    {}};
  const int runs = shape.jobs / exports;
  const Ms period = shape.submit_span / runs;
  std::uniform_real_distribution<double> wobble(0.8, 1.2);
  std::uniform_int_distribution<Ms> phase(0, period - 1);
  for (int e = 0; e < exports; ++e) {
    const Ms own_median = draw_duration(Spread::log_uniform, shape.shortest, shape.longest, random);
    const auto run_time = [&] { return static_cast<Ms>(double(own_median) * wobble(random)); };
    std::vector<Ms> earlier;
    for (int h = 0; h < history; ++h) earlier.push_back(run_time());
    const Ms typical = median(earlier);
    const Ms first = phase(random);
    for (int r = 0; r < runs; ++r) {
      SimJob job;
      job.submitted = first + r * period;
      job.ready = job.submitted + run_time();
      job.typical = typical;
      scenario.jobs.push_back(job);
    }
  }
  space_submits(scenario.jobs, shape);
  return scenario;
}

}  // namespace bench
