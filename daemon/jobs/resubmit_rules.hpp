// When a job gives up on its poll URL, and whether it asks APSIS One for a new export. Pure
// functions of the row and the definition, table-tested in tests/unit/resubmit_rules_test.cpp.
#pragma once

#include <string>

#include "config/config.hpp"
#include "store/job.hpp"

namespace apsis::jobs {

// Why a job stops polling its URL without a file.
enum class GiveUp {
  expired,        // 410 Gone, or the URL's day is over
  export_failed,  // the URL answered 503 `failed_export_after_503s` times in a row
};

// A lone 503 may come from an overloaded gateway; several in a row mean the export failed.
// `job.polls_503_in_a_row` already counts the answer just received.
bool export_failed(const config::PollingPolicy& polling, const store::Job& job);

// Expired URLs and failed exports share one limit (max_resubmits) and the `resubmits` counter;
// each has its own switch (on_expired, on_failed_export).
bool should_resubmit(const config::ExportDefinition& definition, const store::Job& job, GiveUp reason);

// The row of a job that requests a new export for the same slot: the URL given up on and the reason
// stay readable; everything about the old URL is cleared.
void prepare_resubmit(store::Job& job, const std::string& reason);

}  // namespace apsis::jobs
