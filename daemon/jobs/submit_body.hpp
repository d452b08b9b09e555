// The body a job POSTs: the export's `request:` as written, plus, for an event export with a
// `window:`, the start_at/end_at fixed in the job's row (unless the request sets them itself).
#pragma once

#include <string>

#include "config/config.hpp"
#include "jobs/job_row.hpp"

namespace apsis::jobs {

// Fixes an event export's window in the row at its first submit: [slot - window, slot). A job that
// already has one (a resubmit, a restart) keeps it, so every submit of one job asks for the same
// events. Returns whether the row changed.
bool fix_event_window(const config::ExportDefinition& definition, JobRow& job);

std::string submit_body(const config::ExportDefinition& definition, const JobRow& job);

}  // namespace apsis::jobs
