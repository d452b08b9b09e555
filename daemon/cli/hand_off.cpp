#include "cli/hand_off.hpp"

#include <stdexcept>
#include <string>

#include "jobs/definition_json.hpp"

namespace apsis::cli {

store::Job queue_for_service(store::JobStore& store, const config::ExportDefinition& definition, TimePoint now) {
  return store.create_asked_for(definition.name, now, jobs::definition_to_json(definition), now);
}

FollowOutcome follow_row(std::int64_t job_id, const FollowSeams& seams, const FollowPolicy& policy) {
  const auto read = [&] {
    auto row = seams.read_row();
    if (!row) throw std::runtime_error("job " + std::to_string(job_id) + " is no longer in the job table");
    return std::move(*row);
  };
  Milliseconds without_service{0};
  for (;;) {
    auto row = read();
    if (store::is_final(row.state)) return {FollowOutcome::End::final_state, std::move(row)};
    seams.show(row);
    without_service = seams.service_running() ? Milliseconds{0} : without_service + policy.interval;
    if (without_service > policy.service_grace) {
      // The service may have finished the row just before it stopped.
      row = read();
      const auto end = store::is_final(row.state) ? FollowOutcome::End::final_state : FollowOutcome::End::service_gone;
      return {end, std::move(row)};
    }
    if (!seams.wait(policy.interval)) return {FollowOutcome::End::interrupted, read()};
  }
}

}  // namespace apsis::cli
