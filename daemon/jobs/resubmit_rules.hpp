// When a job gives up on its poll URL, and whether it asks APSIS One for a new export. Pure
// functions of the row and the policy, table-tested in tests/unit/resubmit_rules_test.cpp.
#pragma once

#include <string>

#include "config/config.hpp"
#include "jobs/job_row.hpp"

namespace apsis::jobs {

struct JobPolicy;

// Why a job stops polling its URL without a file.
enum class GiveUp {
  expired,        // 410 Gone, or the URL's day is over
  export_failed,  // the URL answered 503 `failed_export_after_503s` times in a row
};

// A lone 503 may come from an overloaded gateway; several in a row mean the export failed.
// `job.polls_503_in_a_row` already counts the answer just received.
bool export_failed(const config::PollingPolicy& polling, const JobRow& job);

// Expired URLs and failed exports share one limit (max_resubmits) and the `resubmits` counter;
// each has its own switch (on_expired, on_failed_export).
bool should_resubmit(const JobPolicy& policy, const JobRow& job, GiveUp reason);

// The row of a job that requests a new export for the same slot: everything about the old URL is
// cleared (the table keeps the URL given up on and the reason: RowWrite::resubmit).
void prepare_resubmit(JobRow& job);

}  // namespace apsis::jobs
