// JobStore's narrow updates: each one UPDATE of the columns its value type names (job_updates.hpp).
#include "store/job_updates.hpp"

#include "store/sqlite_job_store.hpp"
#include "store/prepared.hpp"

namespace apsis::store {
namespace {

std::optional<std::string> iso(const std::optional<TimePoint>& t) {
  if (!t) return std::nullopt;
  return format_iso8601(*t);
}

}  // namespace

void SqliteJobStore::record_submit_attempt(std::int64_t id, const SubmitAttempt& attempt) {
  call("record_submit_attempt", [&] {
    auto& update = prepared(prepared_->submit_attempt,
                            "UPDATE jobs SET submit_attempts = ?, window_start = ?, window_end = ? WHERE id = ?");
    update.bind(1, attempt.submit_attempts).bind(2, iso(attempt.window_start)).bind(3, iso(attempt.window_end));
    update.bind(4, id).run();
    expect_one_row(id, "record_submit_attempt");
  });
}

void SqliteJobStore::record_submitted(std::int64_t id, const SubmittedColumns& submitted) {
  call("record_submitted", [&] {
    auto& update = prepared(prepared_->submitted,
                            "UPDATE jobs SET state = 'submitted', submitted_at = ?, poll_url = ?, poll_url_field = ?, "
                            "poll_expires_at = ?, last_http_status = ?, next_poll_at = ?, polls_503_in_a_row = 0 "
                            "WHERE id = ?");
    update.bind(1, format_iso8601(submitted.submitted_at)).bind(2, submitted.poll_url);
    update.bind(3, submitted.poll_url_field).bind(4, format_iso8601(submitted.poll_expires_at));
    update.bind(5, submitted.last_http_status).bind(6, format_iso8601(submitted.next_poll_at)).bind(7, id).run();
    expect_one_row(id, "record_submitted");
  });
}

// A missing last_http_status keeps the column (a poll cut before any answer has no status). The
// state guard keeps a late progress note from reopening a job that has finished meanwhile.
void SqliteJobStore::record_progress(std::span<const PollProgress> progress) {
  if (progress.empty()) return;
  call("record_progress", [&] {
    Transaction transaction(db_);
    auto& update = prepared(prepared_->progress,
                            "UPDATE jobs SET state = ?, polls = ?, next_poll_at = ?, "
                            "last_http_status = coalesce(?, last_http_status), polls_503_in_a_row = ?, "
                            "download_attempts = ? WHERE id = ? AND state IN ('pending','submitted','downloading')");
    for (const auto& row : progress) {
      update.reset();
      update.bind(1, to_string(row.state)).bind(2, row.polls).bind(3, iso(row.next_poll_at));
      update.bind(4, row.last_http_status).bind(5, row.polls_503_in_a_row).bind(6, row.download_attempts);
      update.bind(7, row.id).run();
    }
    transaction.commit();
  });
}

void SqliteJobStore::record_download_started(std::int64_t id, const DownloadStarted& started) {
  call("record_download_started", [&] {
    auto& update = prepared(prepared_->download_started,
                            "UPDATE jobs SET state = 'downloading', download_attempts = ?, last_http_status = ?, "
                            "content_type = ?, content_encoding = ?, polls = ?, polls_503_in_a_row = 0 WHERE id = ?");
    update.bind(1, started.download_attempts).bind(2, started.last_http_status).bind(3, started.content_type);
    update.bind(4, started.content_encoding).bind(5, started.polls).bind(6, id).run();
    expect_one_row(id, "record_download_started");
  });
}

void SqliteJobStore::record_resubmit(std::int64_t id, const Resubmitting& resubmitting) {
  call("record_resubmit", [&] {
    auto& update = prepared(prepared_->resubmit,
                            "UPDATE jobs SET state = 'pending', resubmits = ?, previous_poll_url = ?, "
                            "resubmit_reason = ?, error = ?, poll_url = NULL, poll_url_field = NULL, "
                            "poll_expires_at = NULL, next_poll_at = NULL, polls_503_in_a_row = 0, polls = ? WHERE id = ?");
    update.bind(1, resubmitting.resubmits).bind(2, resubmitting.previous_poll_url);
    update.bind(3, resubmitting.resubmit_reason).bind(4, resubmitting.error).bind(5, resubmitting.polls);
    update.bind(6, id).run();
    expect_one_row(id, "record_resubmit");
  });
}

void SqliteJobStore::record_published(std::int64_t id, const PublishedColumns& published) {
  call("record_published", [&] {
    auto& update = prepared(prepared_->published,
                            "UPDATE jobs SET state = 'succeeded', output_path = ?, bytes = ?, sha256 = ?, "
                            "manifest_path = ?, finished_at = ?, last_http_status = ?, error = NULL, "
                            "next_poll_at = NULL WHERE id = ?");
    update.bind(1, published.output_path).bind(2, published.bytes).bind(3, published.sha256);
    update.bind(4, published.manifest_path).bind(5, format_iso8601(published.finished_at));
    update.bind(6, published.last_http_status).bind(7, id).run();
    expect_one_row(id, "record_published");
  });
}

// A missing last_http_status keeps the column: a job failing on a network error keeps the last
// status APSIS One did send.
void SqliteJobStore::record_finished(std::int64_t id, const FinishedColumns& finished) {
  call("record_finished", [&] {
    auto& update = prepared(prepared_->finished,
                            "UPDATE jobs SET state = ?, finished_at = ?, error = ?, "
                            "last_http_status = coalesce(?, last_http_status), polls = coalesce(?, polls), "
                            "polls_503_in_a_row = coalesce(?, polls_503_in_a_row), output_path = coalesce(?, output_path), "
                            "bytes = coalesce(?, bytes), sha256 = coalesce(?, sha256), "
                            "manifest_path = coalesce(?, manifest_path), next_poll_at = NULL WHERE id = ?");
    update.bind(1, to_string(finished.state)).bind(2, format_iso8601(finished.finished_at)).bind(3, finished.error);
    update.bind(4, finished.last_http_status).bind(5, finished.polls).bind(6, finished.polls_503_in_a_row);
    update.bind(7, finished.output_path).bind(8, finished.bytes).bind(9, finished.sha256);
    update.bind(10, finished.manifest_path).bind(11, id).run();
    expect_one_row(id, "record_finished");
  });
}

void SqliteJobStore::record_hook_result(std::int64_t id, const std::string& hook_result) {
  call("record_hook_result", [&] {
    auto& update = prepared(prepared_->hook_result, "UPDATE jobs SET hook_result = ? WHERE id = ?");
    update.bind(1, hook_result).bind(2, id).run();
    expect_one_row(id, "record_hook_result");
  });
}

void SqliteJobStore::record_file_removed(std::int64_t id, TimePoint removed_at) {
  call("record_file_removed", [&] {
    auto& update = prepared(prepared_->file_removed, "UPDATE jobs SET file_removed_at = ? WHERE id = ?");
    update.bind(1, format_iso8601(removed_at)).bind(2, id).run();
    expect_one_row(id, "record_file_removed");
  });
}

}  // namespace apsis::store
