// Jobs a command gives to the service instead of running them: `trigger` queues one, `once` queues
// one while a service owns the state database and follows its row to the end.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "config/config.hpp"
#include "store/job.hpp"
#include "store/job_store.hpp"
#include "util/time.hpp"

namespace apsis::cli {

// Adds a pending row of `definition`: the running service's trigger watch adopts it within a second,
// a stopped service at its next start.
store::Job queue_for_service(store::JobStore& store, const config::ExportDefinition& definition, TimePoint now);

// How following a row ended.
struct FollowOutcome {
  enum class End {
    final_state,   // `row` is in a final state
    interrupted,   // Ctrl-C/SIGTERM: the job goes on in the service
    service_gone,  // no service owned the database for the whole grace period; the row waits for one
  };
  End end{End::final_state};
  store::Job row;  // as last read
};

// What following reads and waits on: the job table, the lock, signals and the terminal.
struct FollowSeams {
  std::function<std::optional<store::Job>()> read_row;  // nullopt: the row is gone
  std::function<bool()> service_running;
  std::function<bool(Milliseconds)> wait;  // false when interrupted
  std::function<void(const store::Job&)> show;
};

struct FollowPolicy {
  Milliseconds interval{250};
  // A service restart (systemctl restart) is no reason to stop following.
  Milliseconds service_grace{10'000};
};

// Reads the row every `interval` until it is final, the wait is interrupted, or no service has owned
// the database for `service_grace`. Throws when the row vanished.
FollowOutcome follow_row(std::int64_t job_id, const FollowSeams& seams, const FollowPolicy& policy = {});

}  // namespace apsis::cli
