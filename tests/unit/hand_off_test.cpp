#include "cli/hand_off.hpp"

#include <doctest/doctest.h>

#include <deque>
#include <vector>

using namespace apsis;
using namespace apsis::cli;
using State = store::JobState;

namespace {

store::Job row(State state) {
  store::Job job;
  job.id = 5;
  job.state = state;
  return job;
}

// A scripted job table, service and terminal: each read takes the next row (the last one repeats).
struct Script {
  std::deque<State> states;
  std::deque<bool> service{true};
  int waits_before_signal{-1};
  std::vector<State> shown{};
  int waits{0};

  FollowSeams seams() {
    return {[this]() -> std::optional<store::Job> {
              const auto state = states.front();
              if (states.size() > 1) states.pop_front();
              return row(state);
            },
            [this] {
              const bool running = service.front();
              if (service.size() > 1) service.pop_front();
              return running;
            },
            [this](Milliseconds) { return ++waits != waits_before_signal; },
            [this](const store::Job& job) { shown.push_back(job.state); }};
  }
};

}  // namespace

TEST_CASE("follow_row: reads the row until it is final, showing each unfinished one") {
  Script script{{State::pending, State::submitted, State::downloading, State::succeeded}};
  const auto outcome = follow_row(5, script.seams());
  CHECK(outcome.end == FollowOutcome::End::final_state);
  CHECK(outcome.row.state == State::succeeded);
  CHECK(script.shown == std::vector{State::pending, State::submitted, State::downloading});
  CHECK(script.waits == 3);
}

TEST_CASE("follow_row: a signal stops following; the row is left to the service") {
  Script script{{State::submitted}};
  script.waits_before_signal = 2;
  const auto outcome = follow_row(5, script.seams());
  CHECK(outcome.end == FollowOutcome::End::interrupted);
  CHECK(outcome.row.state == State::submitted);
}

TEST_CASE("follow_row: a service restart is waited out; a service gone for the grace period ends it") {
  const FollowPolicy policy{Milliseconds(250), Milliseconds(1000)};
  Script restart{{State::submitted, State::submitted, State::submitted, State::submitted, State::submitted,
                  State::submitted, State::succeeded},
                 {true, false, false, false, true}};
  CHECK(follow_row(5, restart.seams(), policy).end == FollowOutcome::End::final_state);

  Script gone{{State::pending}, {false}};
  const auto outcome = follow_row(5, gone.seams(), policy);
  CHECK(outcome.end == FollowOutcome::End::service_gone);
  CHECK(gone.waits == 4);  // 1 s of 250 ms waits, then the fifth look finds it still gone
}

TEST_CASE("follow_row: a row that vanishes is an error naming the job") {
  FollowSeams seams{[]() -> std::optional<store::Job> { return std::nullopt; }, [] { return true; },
                    [](Milliseconds) { return true; }, [](const store::Job&) {}};
  CHECK_THROWS_WITH(follow_row(5, seams), "job 5 is no longer in the job table");
}
