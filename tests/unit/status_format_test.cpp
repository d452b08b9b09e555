// The text pieces of `apsis-exportd status`: durations, sizes, local times and fitting to a column.
#include <doctest/doctest.h>

#include "cli/status_format.hpp"

using namespace apsis;
using namespace apsis::cli;
using namespace std::chrono_literals;

namespace {

TimePoint at(const char* iso) { return *parse_iso8601(iso); }

}  // namespace

TEST_CASE("durations show their two largest units, and a zero second unit is left out") {
  CHECK(format_duration_short(0s) == "0s");
  CHECK(format_duration_short(45s) == "45s");
  CHECK(format_duration_short(60s) == "1m");
  CHECK(format_duration_short(5min + 3s) == "5m 3s");
  CHECK(format_duration_short(3h + 12min + 59s) == "3h 12m");
  CHECK(format_duration_short(3h) == "3h");
  CHECK(format_duration_short(24h) == "1d");
  CHECK(format_duration_short(2 * 24h + 4h + 30min) == "2d 4h");
  CHECK(format_duration_short(400 * 24h) == "400d");
  CHECK(format_duration_short(-5s) == "0s");
}

TEST_CASE("sizes use binary units with at most three digits") {
  CHECK(format_size(0) == "0 B");
  CHECK(format_size(1023) == "1023 B");
  CHECK(format_size(1024) == "1.0 KiB");
  CHECK(format_size(1536) == "1.5 KiB");
  CHECK(format_size(12 * 1024 + 300) == "12 KiB");
  CHECK(format_size(1000 * 1024) == "1.0 MiB");
  CHECK(format_size(1048576) == "1.0 MiB");
  CHECK(format_size(5LL * 1024 * 1024 * 1024) == "5.0 GiB");
  CHECK(format_size(300LL * 1024 * 1024 * 1024) == "300 GiB");
}

TEST_CASE("local times carry the zone's abbreviation and offset, across daylight saving time") {
  CHECK(format_local_time(at("2026-11-30T05:30:00.000Z"), "Europe/Stockholm") ==
        "Mon 2026-11-30 06:30:00 CET (+01:00)");
  CHECK(format_local_time(at("2026-06-30T04:30:00.000Z"), "Europe/Stockholm") ==
        "Tue 2026-06-30 06:30:00 CEST (+02:00)");
  CHECK(format_local_time(at("2026-06-30T04:30:00.000Z"), "America/St_Johns") ==
        "Tue 2026-06-30 02:00:00 NDT (-02:30)");
  // Zones the tz database names by their offset are not printed with it twice.
  CHECK(format_local_time(at("2026-06-30T04:30:00.000Z"), "Asia/Dubai") == "Tue 2026-06-30 08:30:00 +04:00");
  CHECK(format_local_time_short(at("2026-11-30T05:30:00.999Z"), "Europe/Stockholm") ==
        "Mon 2026-11-30 06:30:00 CET");
  CHECK(format_local_time_short(at("2026-11-30T05:30:00.000Z"), "UTC") == "Mon 2026-11-30 05:30:00 UTC");
}

TEST_CASE("local ISO-8601 times keep milliseconds and name the offset") {
  CHECK(format_local_iso8601(at("2026-11-30T05:30:00.250Z"), "Europe/Stockholm") ==
        "2026-11-30T06:30:00.250+01:00");
  CHECK(format_local_iso8601(at("2026-06-30T04:30:00.000Z"), "America/Los_Angeles") ==
        "2026-06-29T21:30:00.000-07:00");
  CHECK(format_local_iso8601(at("2026-06-30T04:30:00.000Z"), "UTC") == "2026-06-30T04:30:00.000+00:00");
}

TEST_CASE("an unknown zone is an error, not a silent UTC") {
  CHECK_THROWS(format_local_time(at("2026-06-30T04:30:00.000Z"), "Europe/Stokholm"));
}

TEST_CASE("fit_line makes one line of a message and cuts its end") {
  CHECK(fit_line("short", 10) == "short");
  CHECK(fit_line("0123456789", 10) == "0123456789");
  CHECK(fit_line("0123456789A", 10) == "0123456...");
  CHECK(fit_line("403 Forbidden:\n  {\"title\": \"no\"}\n", 80) == "403 Forbidden: {\"title\": \"no\"}");
  CHECK(fit_line("  lead\t\ttrail  ", 80) == "lead trail");
  CHECK(fit_line("abc", 2) == "ab");
}

TEST_CASE("fit_line turns terminal control sequences into harmless characters") {
  CHECK(fit_line("\033[2Jgone\a", 80) == "?[2Jgone?");
  CHECK(fit_line("c1 \xC2\x9B" "31m", 80) == "c1 ?31m");
  CHECK(fit_line("del\x7F", 80) == "del?");
}

TEST_CASE("fit_line counts characters, not bytes, and never splits one") {
  CHECK(fit_line("Överföring", 10) == "Överföring");
  CHECK(fit_line("Överföringen misslyckades", 10) == "Överför...");
}

TEST_CASE("wrap_lines breaks at spaces, breaks long words, and cuts what does not fit") {
  using Lines = std::vector<std::string>;
  CHECK(wrap_lines("", 10, 3).empty());
  CHECK(wrap_lines("short", 10, 3) == Lines{"short"});
  CHECK(wrap_lines("the quick brown fox jumps", 10, 3) == Lines{"the quick", "brown fox", "jumps"});
  CHECK(wrap_lines("0123456789 abc", 10, 3) == Lines{"0123456789", "abc"});
  CHECK(wrap_lines("0123456789abcdef", 10, 3) == Lines{"0123456789", "abcdef"});
  CHECK(wrap_lines("aaa bbb ccc ddd eee fff ggg hhh", 7, 2) == Lines{"aaa bbb", "ccc..."});
  CHECK(wrap_lines("one\ntwo\n\nthree", 80, 3) == Lines{"one two three"});
  CHECK(wrap_lines("a long line", 4, 1) == Lines{"a..."});
}

TEST_CASE("fit_path keeps the file name at the end") {
  CHECK(fit_path("/srv/exports/dupes/dupes.csv", 80) == "/srv/exports/dupes/dupes.csv");
  CHECK(fit_path("/srv/exports/dupes/dupes-20261130T053000Z.csv", 30) == ".../dupes-20261130T053000Z.csv");
  CHECK(fit_path("/srv/a b/c", 80) == "/srv/a b/c");
  CHECK(fit_path("/srv/\n/c", 80) == "/srv/?/c");
}
