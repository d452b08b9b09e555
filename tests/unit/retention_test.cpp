#include <doctest/doctest.h>

#include <fstream>

#include "sink/manifest.hpp"
#include "sink/retention.hpp"
#include "temp_dir.hpp"

using namespace apsis;
using namespace apsis::sink;
using namespace std::chrono_literals;

namespace {

const TimePoint kNow = *parse_iso8601("2026-11-29T12:00:00.000Z");

// Job ids 10, 9, 8 … with one file a day, newest first (as the job table lists them).
std::vector<PublishedFile> daily_files(int n) {
  std::vector<PublishedFile> files;
  for (int i = 0; i < n; ++i)
    files.push_back({10 - i, kNow - std::chrono::days(i), "/out/x/day-" + std::to_string(i) + ".csv"});
  return files;
}

std::vector<std::int64_t> ids(const std::vector<PublishedFile>& files) {
  std::vector<std::int64_t> out;
  for (const auto& f : files) out.push_back(f.job_id);
  return out;
}

}  // namespace

TEST_CASE("keep count: the newest N stay") {
  const auto plan = plan_retention(daily_files(5), {2, std::nullopt}, kNow, 10);
  CHECK(ids(plan.remove) == std::vector<std::int64_t>{8, 7, 6});
  CHECK(plan.superseded.empty());
}

TEST_CASE("keep days: slots at most D days old stay") {
  const auto plan = plan_retention(daily_files(5), {std::nullopt, 2}, kNow, 10);
  CHECK(ids(plan.remove) == std::vector<std::int64_t>{7, 6});
}

TEST_CASE("keep count and days: a file stays when either rule keeps it") {
  CHECK(ids(plan_retention(daily_files(6), {4, 1}, kNow, 10).remove) == std::vector<std::int64_t>{6, 5});
  CHECK(ids(plan_retention(daily_files(6), {1, 3}, kNow, 10).remove) == std::vector<std::int64_t>{6, 5});
}

TEST_CASE("the file just published always stays, even when the rules would drop it") {
  auto files = daily_files(3);
  files[0].scheduled_for = kNow - std::chrono::days(30);  // a catch-up of an old slot
  const auto plan = plan_retention(files, {std::nullopt, 1}, kNow, 10);
  CHECK(ids(plan.remove) == std::vector<std::int64_t>{8});
}

TEST_CASE("no rule: nothing goes") { CHECK(plan_retention(daily_files(4), {}, kNow, 10).remove.empty()); }

TEST_CASE("a path that a kept file occupies is never deleted, only marked superseded") {
  // output: "{export}.csv" makes every job write the same file.
  std::vector<PublishedFile> files{{3, kNow, "/out/x.csv"}, {2, kNow - 24h, "/out/x.csv"}, {1, kNow - 48h, "/out/x.csv"}};
  const auto plan = plan_retention(files, {1, std::nullopt}, kNow, 3);
  CHECK(plan.remove.empty());
  CHECK(plan.superseded == std::vector<std::int64_t>{2, 1});
}

TEST_CASE("a path that a newer job of any export owns is never deleted, only marked superseded") {
  // Two exports' templates give one path: export b's newer job 12 holds day-2's path now.
  const PathOwners owners{{"/out/x/day-2.csv", 12}, {"/out/x/day-3.csv", 7}, {"/out/x/day-4.csv", 6}};
  const auto plan = plan_retention(daily_files(5), {2, std::nullopt}, kNow, 10, owners);
  CHECK(ids(plan.remove) == std::vector<std::int64_t>{7, 6});  // owned by themselves (or an older job): deleted
  CHECK(plan.superseded == std::vector<std::int64_t>{8});
}

TEST_CASE("two old rows on one path: the file is deleted once, the other row marked") {
  std::vector<PublishedFile> files{{3, kNow, "/out/new.csv"}, {2, kNow - 24h, "/out/old.csv"}, {1, kNow - 48h, "/out/old.csv"}};
  const auto plan = plan_retention(files, {1, std::nullopt}, kNow, 3);
  CHECK(ids(plan.remove) == std::vector<std::int64_t>{2});
  CHECK(plan.superseded == std::vector<std::int64_t>{1});
}

TEST_CASE("remove_published deletes the file and its manifest, and tolerates either being gone") {
  TempDir dir;
  const auto file = dir.path() / "a.csv";
  write_file(file, "x");
  write_file(manifest_path_for(file), "{}");
  write_file(dir.path() / "unrelated.csv", "keep me");
  CHECK(remove_published(file).empty());
  CHECK_FALSE(std::filesystem::exists(file));
  CHECK_FALSE(std::filesystem::exists(manifest_path_for(file)));
  CHECK(std::filesystem::exists(dir.path() / "unrelated.csv"));
  CHECK(remove_published(file).empty());
}

TEST_CASE("the manifest is complete JSON, written atomically beside its file") {
  TempDir dir;
  Manifest manifest;
  manifest.export_name = "daily";
  manifest.job_id = 42;
  manifest.scheduled_for = kNow;
  manifest.file = dir.path() / "daily.csv.gz";
  manifest.bytes = 1234;
  manifest.sha256 = std::string(64, 'a');
  manifest.content_type = "text/csv";
  manifest.content_encoding = "gzip";
  manifest.format = "csv";
  manifest.compression = "gzip";
  manifest.created_at = kNow;
  manifest.submitted_at = kNow + 1s;
  manifest.published_at = kNow + 90s;
  manifest.download_time = 2500ms;
  manifest.polls = 4;
  manifest.download_attempts = 1;
  const auto path = write_manifest(manifest);
  CHECK(path == dir.path() / "daily.csv.gz.json");
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  CHECK(text == to_json(manifest));
  CHECK(text.find("\"export\":\"daily\",\"job_id\":42,\"scheduled_for\":\"2026-11-29T12:00:00.000Z\",\"file\":"
                  "\"daily.csv.gz\"") != std::string::npos);
  CHECK(text.find("\"total_ms\":90000,\"download_ms\":2500,\"polls\":4,\"download_attempts\":1,\"written_by\":{\"instance\":\"\",\"host\":\"\"}}") !=
        std::string::npos);
  CHECK(text.back() == '\n');
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 1);  // no temporary file left
}
