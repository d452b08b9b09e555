// store/job_updates: each narrow update writes its own columns and leaves every other one as it was.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

#include "store/sqlite_job_store.hpp"
#include "store_backends.hpp"
#include "temp_dir.hpp"

using namespace apsis;
using namespace apsis::store;
using namespace std::chrono_literals;

namespace {

const TimePoint kSlot = *parse_iso8601("2026-11-29T06:30:00.000Z");

std::string text(const std::optional<std::string>& v) { return v ? "'" + *v + "'" : "NULL"; }
std::string text(const std::optional<TimePoint>& v) { return v ? format_iso8601(*v) : "NULL"; }
template <typename T>
std::string text(const std::optional<T>& v) { return v ? std::to_string(*v) : "NULL"; }

// Every column of a row, as text: two rows compare column by column.
std::map<std::string, std::string> columns(const Job& job) {
  return {{"state", std::string(to_string(job.state))},
          {"submit_attempts", std::to_string(job.submit_attempts)},
          {"submitted_at", text(job.submitted_at)},
          {"poll_url", text(job.poll_url)},
          {"poll_url_field", text(job.poll_url_field)},
          {"poll_expires_at", text(job.poll_expires_at)},
          {"polls", std::to_string(job.polls)},
          {"last_http_status", text(job.last_http_status)},
          {"next_poll_at", text(job.next_poll_at)},
          {"download_attempts", std::to_string(job.download_attempts)},
          {"resubmits", std::to_string(job.resubmits)},
          {"polls_503_in_a_row", std::to_string(job.polls_503_in_a_row)},
          {"previous_poll_url", text(job.previous_poll_url)},
          {"resubmit_reason", text(job.resubmit_reason)},
          {"window_start", text(job.window_start)},
          {"window_end", text(job.window_end)},
          {"content_type", text(job.content_type)},
          {"content_encoding", text(job.content_encoding)},
          {"finished_at", text(job.finished_at)},
          {"error", text(job.error)},
          {"output_path", text(job.output_path)},
          {"bytes", text(job.bytes)},
          {"sha256", text(job.sha256)},
          {"manifest_path", text(job.manifest_path)},
          {"hook_result", text(job.hook_result)},
          {"file_removed_at", text(job.file_removed_at)},
          {"export", job.export_name},
          {"scheduled_for", format_iso8601(job.scheduled_for)},
          {"created_at", format_iso8601(job.created_at)},
          {"definition", job.definition_json}};
}

// A row with a distinct value in every column, so an update that touches a column it should not
// shows up as a difference.
Job full_row(JobStore& store, JobState state = JobState::submitted) {
  auto job = store.create_asked_for("dupes", kSlot, R"({"name":"dupes"})", kSlot + 1s);
  job.state = state;
  job.submit_attempts = 2;
  job.submitted_at = kSlot + 2s;
  job.poll_url = "https://api.example/exports/1";
  job.poll_url_field = "file_download_url";
  job.poll_expires_at = kSlot + 24h;
  job.polls = 7;
  job.last_http_status = 404;
  job.next_poll_at = kSlot + 3min;
  job.download_attempts = 1;
  job.resubmits = 1;
  job.polls_503_in_a_row = 2;
  job.previous_poll_url = "https://api.example/exports/0";
  job.resubmit_reason = "gone";
  job.window_start = kSlot - 1h;
  job.window_end = kSlot;
  job.content_type = "text/csv";
  job.content_encoding = "gzip";
  job.finished_at = kSlot + 5min;
  job.error = "an old error";
  job.output_path = "/srv/a.csv";
  job.bytes = 123;
  job.sha256 = "abc";
  job.manifest_path = "/srv/a.csv.json";
  job.hook_result = "exit 0";
  job.file_removed_at = kSlot + 6min;
  store.save(job);
  return *store.find(job.id);
}

// Runs `update` on a full row and checks that exactly `changed` columns took the `expected` values.
template <typename Backend, typename Update>
void check_update(Update update, const std::map<std::string, std::string>& expected, JobState start = JobState::submitted) {
  const Backend backend;
  const auto opened = backend.open();
  JobStore& store = *opened;
  const auto id = full_row(store, start).id;
  const auto other = full_row(store, start).id;
  const auto before = columns(*store.find(id));
  const auto other_before = columns(*store.find(other));
  update(store, id);
  const auto after = columns(*store.find(id));
  for (const auto& [name, value] : before) {
    CAPTURE(name);
    if (const auto want = expected.find(name); want != expected.end())
      CHECK(after.at(name) == want->second);
    else
      CHECK(after.at(name) == value);
  }
  CHECK(columns(*store.find(other)) == other_before);  // the other row is untouched
}

}  // namespace

TEST_CASE_TEMPLATE("record_submit_attempt writes the attempt count and the event window only", Backend, STORE_BACKENDS) {
  check_update<Backend>([](JobStore& s, std::int64_t id) { s.record_submit_attempt(id, {3, kSlot - 2h, std::nullopt}); },
               {{"submit_attempts", "3"}, {"window_start", format_iso8601(kSlot - 2h)}, {"window_end", "NULL"}});
}

TEST_CASE_TEMPLATE("record_submitted writes the poll URL columns, state submitted and a zero 503 run", Backend, STORE_BACKENDS) {
  check_update<Backend>(
      [](JobStore& s, std::int64_t id) {
        s.record_submitted(id, {kSlot + 10s, "https://api.example/exports/9", "file_download_url_v2", kSlot + 20h, 201, kSlot + 40s});
      },
      {{"state", "submitted"},
       {"submitted_at", format_iso8601(kSlot + 10s)},
       {"poll_url", "'https://api.example/exports/9'"},
       {"poll_url_field", "'file_download_url_v2'"},
       {"poll_expires_at", format_iso8601(kSlot + 20h)},
       {"last_http_status", "201"},
       {"next_poll_at", format_iso8601(kSlot + 40s)},
       {"polls_503_in_a_row", "0"}},
      JobState::pending);
}

TEST_CASE_TEMPLATE("record_progress writes the poll counters and keeps a status it was not given", Backend, STORE_BACKENDS) {
  check_update<Backend>(
      [](JobStore& s, std::int64_t id) {
        const PollProgress progress{id, JobState::downloading, 9, kSlot + 9min, std::nullopt, 0, 2};
        s.record_progress(std::span(&progress, 1));
      },
      {{"state", "downloading"},
       {"polls", "9"},
       {"next_poll_at", format_iso8601(kSlot + 9min)},
       {"polls_503_in_a_row", "0"},
       {"download_attempts", "2"}});
}

TEST_CASE_TEMPLATE("record_download_started writes the download columns and state downloading", Backend, STORE_BACKENDS) {
  check_update<Backend>(
      [](JobStore& s, std::int64_t id) { s.record_download_started(id, {2, 200, "application/json", std::nullopt, 7}); },
      {{"state", "downloading"},
       {"polls", "7"},
       {"polls_503_in_a_row", "0"},
       {"download_attempts", "2"},
       {"last_http_status", "200"},
       {"content_type", "'application/json'"},
       {"content_encoding", "NULL"}});
}

TEST_CASE_TEMPLATE("record_resubmit clears the old URL's columns like prepare_resubmit and keeps the rest", Backend, STORE_BACKENDS) {
  check_update<Backend>(
      [](JobStore& s, std::int64_t id) {
        s.record_resubmit(id, {2, "https://api.example/exports/1", "410 Gone", "410 Gone; requesting a new export", 12});
      },
      {{"state", "pending"},
       {"resubmits", "2"},
       {"previous_poll_url", "'https://api.example/exports/1'"},
       {"resubmit_reason", "'410 Gone'"},
       {"error", "'410 Gone; requesting a new export'"},
       {"poll_url", "NULL"},
       {"poll_url_field", "NULL"},
       {"poll_expires_at", "NULL"},
       {"next_poll_at", "NULL"},
       {"polls", "12"},
       {"polls_503_in_a_row", "0"}});
}

TEST_CASE_TEMPLATE("record_published writes the file's columns, state succeeded, and clears error and next poll", Backend, STORE_BACKENDS) {
  check_update<Backend>(
      [](JobStore& s, std::int64_t id) {
        s.record_published(id, {"/srv/b.csv", 5'000'000'000, "def", std::nullopt, kSlot + 7min, 200});
      },
      {{"state", "succeeded"},
       {"output_path", "'/srv/b.csv'"},
       {"bytes", "5000000000"},
       {"sha256", "'def'"},
       {"manifest_path", "NULL"},
       {"finished_at", format_iso8601(kSlot + 7min)},
       {"last_http_status", "200"},
       {"error", "NULL"},
       {"next_poll_at", "NULL"}});
}

TEST_CASE_TEMPLATE("record_finished writes the final state and keeps a status it was not given", Backend, STORE_BACKENDS) {
  check_update<Backend>(
      [](JobStore& s, std::int64_t id) {
        s.record_finished(id, {JobState::expired, kSlot + 8min, "the URL's validity ended", std::nullopt, 12, 0, {}, {}, {}, {}});
      },
      {{"state", "expired"},
       {"polls", "12"},
       {"polls_503_in_a_row", "0"},
       {"finished_at", format_iso8601(kSlot + 8min)},
       {"error", "'the URL's validity ended'"},
       {"next_poll_at", "NULL"}});
}

TEST_CASE_TEMPLATE("record_hook_result and record_file_removed each write their one column", Backend, STORE_BACKENDS) {
  check_update<Backend>([](JobStore& s, std::int64_t id) { s.record_hook_result(id, "exit 3 after 0.1 s"); },
               {{"hook_result", "'exit 3 after 0.1 s'"}}, JobState::succeeded);
  check_update<Backend>([](JobStore& s, std::int64_t id) { s.record_file_removed(id, kSlot + 1h); },
               {{"file_removed_at", format_iso8601(kSlot + 1h)}}, JobState::succeeded);
}

TEST_CASE_TEMPLATE("a narrow update of a missing row says so", Backend, STORE_BACKENDS) {
  const Backend backend;
  auto store = backend.open();
  CHECK_THROWS_WITH_AS(store->record_hook_result(42, "x"), doctest::Contains("job 42 is missing"), std::runtime_error);
}

TEST_CASE_TEMPLATE("record_progress writes a batch and never reopens a finished job", Backend, STORE_BACKENDS) {
  const Backend backend;
  const auto opened = backend.open();
  JobStore& store = *opened;
  const auto a = full_row(store).id;
  const auto b = full_row(store).id;
  const auto done = full_row(store, JobState::failed).id;
  const std::vector<PollProgress> batch{{a, JobState::submitted, 10, kSlot + 10min, 404, 0, 1},
                                        {b, JobState::submitted, 12, kSlot + 12min, 404, 0, 1},
                                        {done, JobState::submitted, 13, kSlot + 13min, 404, 0, 1},
                                        {a, JobState::submitted, 11, kSlot + 11min, 404, 0, 1}};
  store.record_progress(batch);
  CHECK(store.find(a)->polls == 11);  // of two notes for one job, the later one counts
  CHECK(store.find(a)->next_poll_at == kSlot + 11min);
  CHECK(store.find(b)->polls == 12);
  CHECK(store.find(b)->next_poll_at == kSlot + 12min);
  CHECK(store.find(done)->state == JobState::failed);
  CHECK(store.find(done)->polls == 7);
}

TEST_CASE("record_progress writes a batch in one transaction") {
  TempDir dir;
  const auto file = dir.path() / "jobs.sqlite3";
  auto store = SqliteJobStore::open(file);
  const auto a = full_row(store).id;
  const auto b = full_row(store).id;
  const std::vector<PollProgress> batch{{a, JobState::submitted, 11, kSlot + 11min, 404, 0, 1},
                                        {b, JobState::submitted, 12, kSlot + 12min, 404, 0, 1}};
  // With another connection holding the write lock, nothing of the batch lands.
  Database other(file);
  sqlite3_busy_timeout(other.handle(), 0);
  other.exec("BEGIN IMMEDIATE");
  CHECK_THROWS_AS(store.record_progress(batch), Busy);
  other.exec("COMMIT");
  CHECK(store.find(a)->polls == 7);
  CHECK(store.find(b)->polls == 7);
  store.record_progress(batch);
  CHECK(store.find(a)->polls == 11);
}

TEST_CASE("a write lock held by another connection makes a call throw Busy naming the file, not hang") {
  TempDir dir;
  const auto file = dir.path() / "jobs.sqlite3";
  auto store = SqliteJobStore::open(file);
  const auto id = full_row(store).id;
  Database other(file);
  other.exec("BEGIN IMMEDIATE");
  try {
    store.record_hook_result(id, "x");
    FAIL("no Busy");
  } catch (const Busy& e) {
    CHECK(std::string(e.what()).find(file.string()) != std::string::npos);
    CHECK(std::string(e.what()).find("record_hook_result") != std::string::npos);
    CHECK(std::string(e.what()).find("database is locked") != std::string::npos);
  }
  CHECK_THROWS_AS(store.save(*store.find(id)), Busy);
  other.exec("ROLLBACK");
  store.record_hook_result(id, "x");  // the same statement works once the lock is gone
  CHECK(store.find(id)->hook_result == "x");
}

TEST_CASE_TEMPLATE("every call is timed once, nested calls included once", Backend, STORE_BACKENDS) {
  const Backend backend;
  const auto opened = backend.open();
  JobStore& store = *opened;
  const auto calls = store.call_times().calls();
  store.create_asked_for("dupes", kSlot, "{}", kSlot);  // create and find inside: one call
  CHECK(store.call_times().calls() == calls + 1);
  store.list({});
  CHECK(store.call_times().calls() == calls + 2);
  CHECK(store.call_times().max() > CallTimes::Duration::zero());
  CHECK(store.call_times().count_at_most(CallTimes::kBounds.size() - 1) <= store.call_times().calls());
}
