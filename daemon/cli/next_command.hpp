// `apsis-exportd next`: the coming slots of each export, to check what a schedule does before it runs.
#pragma once

#include <string_view>

namespace apsis::cli {

// The command's help text, kept here so the help/man page work can take it as it is.
inline constexpr std::string_view kNextUsage =
    R"(usage: apsis-exportd next --config FILE [EXPORT] [--count N] [--from TIMESTAMP] [--json]

Show the coming slots of every export (or of EXPORT alone): each in the export's time zone, with its
UTC offset and zone abbreviation, and in UTC. Slots that daylight saving time moves, skips or repeats
are marked, as is every change of the UTC offset. Reads only the configuration file, never the job table.

options:
  --config FILE       the configuration file
  --count N           how many slots per export, 1 to 1000 (default 5)
  --from TIMESTAMP    list the slots after this instant instead of now: ISO-8601 with Z or an offset,
                      e.g. 2027-03-26T00:00:00Z or 2027-03-26T01:00:00+01:00
  --json              one JSON document: {"from", "config", "exports": [{"name", "schedule", "timezone",
                      "slots": [{"local", "utc", "offset", "zone", "dst", "dst_note"}]}]}
)";

}  // namespace apsis::cli
