// PostgresJobStore's writes to existing rows: each one UPDATE of the columns its value type names
// (job_updates.hpp), fenced by the lease of the job's account when the store has a LeaseBook.
#include <set>

#include "store/postgres_internal.hpp"

namespace apsis::store {
namespace {

std::string parameter(std::size_t index) { return "$" + std::to_string(index); }

// The job's account is leased to `owner` under `epoch` (SQL expressions) and the lease has not
// expired by the database's clock.
std::string fence_clause(const std::string& owner, const std::string& epoch) {
  return " AND EXISTS (SELECT 1 FROM leases l WHERE l.account = jobs.account AND l.owner = " + owner +
         " AND l.epoch = " + epoch + "::bigint AND l.expires_at > now())";
}

// A PostgreSQL array literal of text values ({"a","b",NULL}): a whole batch in one parameter.
std::string array_literal(const SqlParams& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    if (!values[i]) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (const char c : *values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + '}';
}

std::string id_list(const std::vector<std::int64_t>& ids) {
  std::string out;
  for (const auto id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id);
  return out;
}

[[noreturn]] void throw_missing(std::string_view operation, std::int64_t id) {
  throw std::runtime_error(std::string(operation) + ": job " + std::to_string(id) + " is missing from the job table");
}

}  // namespace

std::optional<std::string> PostgresJobStore::account_of(std::string_view operation, std::int64_t id) {
  if (const auto cached = accounts_.find(id); cached != accounts_.end()) return cached->second;
  auto row = session_->query("SELECT account FROM jobs WHERE id = $1", {std::to_string(id)});
  if (row.rows() == 0) throw_missing(operation, id);
  const auto account = row.optional_text(0, 0);
  auto& entry = accounts_[id];
  if (account) entry = std::string(*account);
  return entry;
}

void PostgresJobStore::update_row(std::string_view operation, std::int64_t id, const std::string& set_clause,
                                  SqlParams params) {
  call(operation, [&] {
    std::string sql = "UPDATE jobs SET " + set_clause + " WHERE id = " + parameter(params.size() + 1);
    params.push_back(std::to_string(id));
    std::optional<std::string> account;
    std::optional<Tenure> tenure;
    if (options_.leases) {
      account = account_of(operation, id);
      if (account) tenure = options_.leases->tenure(*account);
      if (!tenure)
        throw LeaseLost(std::string(operation) + ": job " + std::to_string(id) + " of account '" +
                        account.value_or("(none)") + "': this instance holds no lease on the account; nothing written");
      sql += fence_clause(parameter(params.size() + 1), parameter(params.size() + 2));
      params.push_back(tenure->owner);
      params.push_back(std::to_string(tenure->epoch));
    }
    if (session_->query(sql, std::move(params)).affected() == 1) return;
    const auto exists = session_->query("SELECT 1 FROM jobs WHERE id = $1", {std::to_string(id)});
    if (exists.rows() == 0 || !tenure) throw_missing(operation, id);
    throw LeaseLost(std::string(operation) + ": job " + std::to_string(id) + " of account '" + *account +
                    "': this instance no longer holds the account's lease (epoch " + std::to_string(tenure->epoch) +
                    " taken over, or expired by the database's clock); the row is left as it was");
  });
}

void PostgresJobStore::confirm_lease(std::int64_t id) {
  if (!options_.leases) return;
  call("confirm_lease", [&] {
    const auto account = account_of("confirm_lease", id);
    const auto tenure = account ? options_.leases->tenure(*account) : std::nullopt;
    const auto lost = [&](const std::string& why) {
      return LeaseLost("confirm_lease: job " + std::to_string(id) + " of account '" + account.value_or("(none)") +
                       "': " + why + "; nothing published");
    };
    if (!tenure) throw lost("this instance holds no lease on the account");
    const auto held = session_->query("SELECT 1 FROM jobs WHERE id = $1" + fence_clause("$2", "$3"),
                                      {std::to_string(id), tenure->owner, std::to_string(tenure->epoch)});
    if (held.rows() == 0)
      throw lost("this instance no longer holds the account's lease (epoch " + std::to_string(tenure->epoch) +
                 " taken over, or expired by the database's clock)");
  });
}

void PostgresJobStore::save(const Job& job) {
  update_row("save", job.id,
             "state = $1, submit_attempts = $2, submitted_at = $3, poll_url = $4, poll_expires_at = $5, polls = $6, "
             "last_http_status = $7, next_poll_at = $8, download_attempts = $9, content_type = $10, "
             "content_encoding = $11, finished_at = $12, error = $13, output_path = $14, bytes = $15, sha256 = $16, "
             "resubmits = $17, manifest_path = $18, hook_result = $19, file_removed_at = $20, poll_url_field = $21, "
             "polls_503_in_a_row = $22, previous_poll_url = $23, resubmit_reason = $24, window_start = $25, "
             "window_end = $26",
             {std::string(to_string(job.state)), std::to_string(job.submit_attempts), optional_iso(job.submitted_at),
              job.poll_url, optional_iso(job.poll_expires_at), std::to_string(job.polls),
              optional_number(job.last_http_status), optional_iso(job.next_poll_at),
              std::to_string(job.download_attempts), job.content_type, job.content_encoding,
              optional_iso(job.finished_at), job.error, job.output_path, optional_number(job.bytes), job.sha256,
              std::to_string(job.resubmits), job.manifest_path, job.hook_result, optional_iso(job.file_removed_at),
              job.poll_url_field, std::to_string(job.polls_503_in_a_row), job.previous_poll_url, job.resubmit_reason,
              optional_iso(job.window_start), optional_iso(job.window_end)});
}

void PostgresJobStore::record_submit_attempt(std::int64_t id, const SubmitAttempt& attempt) {
  update_row("record_submit_attempt", id, "submit_attempts = $1, window_start = $2, window_end = $3",
             {std::to_string(attempt.submit_attempts), optional_iso(attempt.window_start),
              optional_iso(attempt.window_end)});
}

void PostgresJobStore::record_submitted(std::int64_t id, const SubmittedColumns& submitted) {
  update_row("record_submitted", id,
             "state = 'submitted', submitted_at = $1, poll_url = $2, poll_url_field = $3, poll_expires_at = $4, "
             "last_http_status = $5, next_poll_at = $6, polls_503_in_a_row = 0",
             {format_iso8601(submitted.submitted_at), submitted.poll_url, submitted.poll_url_field,
              format_iso8601(submitted.poll_expires_at), std::to_string(submitted.last_http_status),
              format_iso8601(submitted.next_poll_at)});
}

// One statement for the whole batch. A missing last_http_status keeps the column; the state guard
// keeps a late progress note from reopening a job that has finished meanwhile; of two notes for one
// job the later one counts, as if they were written in order.
void PostgresJobStore::record_progress(std::span<const PollProgress> progress) {
  if (progress.empty()) return;
  call("record_progress", [&] {
    std::map<std::int64_t, const PollProgress*> latest;
    for (const auto& note : progress) latest[note.id] = &note;
    if (options_.leases) {
      SqlParams unknown;
      for (const auto& [id, note] : latest)
        if (!accounts_.contains(id)) unknown.push_back(std::to_string(id));
      if (!unknown.empty()) {
        auto rows = session_->query("SELECT id, account FROM jobs WHERE id = ANY($1::bigint[])", {array_literal(unknown)});
        for (int row = 0; row < rows.rows(); ++row) {
          const auto account = rows.optional_text(row, 1);
          accounts_[rows.int64(row, 0)] = account ? std::optional<std::string>(std::string(*account)) : std::nullopt;
        }
      }
    }
    SqlParams ids, states, polls, next_polls, statuses, runs_of_503, downloads, owners, epochs;
    std::vector<std::int64_t> sent;
    for (const auto& [id, note] : latest) {
      if (options_.leases) {
        const auto account = accounts_.find(id);
        if (account == accounts_.end() || !account->second) continue;  // gone, or no account: not written
        const auto tenure = options_.leases->tenure(*account->second);
        if (!tenure) continue;
        owners.push_back(tenure->owner);
        epochs.push_back(std::to_string(tenure->epoch));
      }
      sent.push_back(id);
      ids.push_back(std::to_string(id));
      states.push_back(std::string(to_string(note->state)));
      polls.push_back(std::to_string(note->polls));
      next_polls.push_back(optional_iso(note->next_poll_at));
      statuses.push_back(optional_number(note->last_http_status));
      runs_of_503.push_back(std::to_string(note->polls_503_in_a_row));
      downloads.push_back(std::to_string(note->download_attempts));
    }
    std::set<std::int64_t> written;
    if (!sent.empty()) {
      const bool fenced = options_.leases != nullptr;
      std::string sql =
          "UPDATE jobs SET state = u.state, polls = u.polls, next_poll_at = u.next_poll_at, "
          "last_http_status = coalesce(u.last_http_status, jobs.last_http_status), "
          "polls_503_in_a_row = u.polls_503_in_a_row, download_attempts = u.download_attempts "
          "FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::text[], $5::integer[], $6::integer[], "
          "$7::integer[]";
      sql += fenced ? ", $8::text[], $9::bigint[]) AS u(id, state, polls, next_poll_at, last_http_status, "
                      "polls_503_in_a_row, download_attempts, owner, epoch)"
                    : ") AS u(id, state, polls, next_poll_at, last_http_status, polls_503_in_a_row, download_attempts)";
      sql += std::string(" WHERE jobs.id = u.id AND jobs.") + kPostgresUnfinished;
      if (fenced) sql += fence_clause("u.owner", "u.epoch");
      SqlParams params{array_literal(ids),        array_literal(states),   array_literal(polls),
                       array_literal(next_polls), array_literal(statuses), array_literal(runs_of_503),
                       array_literal(downloads)};
      if (fenced) {
        params.push_back(array_literal(owners));
        params.push_back(array_literal(epochs));
      }
      sql += " RETURNING jobs.id";
      auto rows = session_->query(sql, std::move(params));
      for (int row = 0; row < rows.rows(); ++row) written.insert(rows.int64(row, 0));
    }
    if (!options_.leases || written.size() == latest.size()) return;
    // Rows passed over because they are gone or final are fine; an unfinished one was fenced out.
    SqlParams not_written;
    for (const auto& [id, note] : latest)
      if (!written.contains(id)) not_written.push_back(std::to_string(id));
    auto lost = session_->query(std::string("SELECT id FROM jobs WHERE id = ANY($1::bigint[]) AND ") +
                                    kPostgresUnfinished + " ORDER BY id",
                                {array_literal(not_written)});
    if (lost.rows() == 0) return;
    std::vector<std::int64_t> lost_ids;
    for (int row = 0; row < lost.rows(); ++row) lost_ids.push_back(lost.int64(row, 0));
    throw LeaseLost("record_progress: jobs " + id_list(lost_ids) +
                    ": this instance no longer holds their accounts' leases; their rows are left as they were, the "
                    "batch's other notes are written");
  });
}

void PostgresJobStore::record_download_started(std::int64_t id, const DownloadStarted& started) {
  update_row("record_download_started", id,
             "state = 'downloading', download_attempts = $1, last_http_status = $2, content_type = $3, "
             "content_encoding = $4, polls = $5, polls_503_in_a_row = 0",
             {std::to_string(started.download_attempts), std::to_string(started.last_http_status),
              started.content_type, started.content_encoding, std::to_string(started.polls)});
}

void PostgresJobStore::record_resubmit(std::int64_t id, const Resubmitting& resubmitting) {
  update_row("record_resubmit", id,
             "state = 'pending', resubmits = $1, previous_poll_url = $2, resubmit_reason = $3, error = $4, "
             "poll_url = NULL, poll_url_field = NULL, poll_expires_at = NULL, next_poll_at = NULL, "
             "polls_503_in_a_row = 0, polls = $5",
             {std::to_string(resubmitting.resubmits), resubmitting.previous_poll_url, resubmitting.resubmit_reason,
              resubmitting.error, std::to_string(resubmitting.polls)});
}

void PostgresJobStore::record_published(std::int64_t id, const PublishedColumns& published) {
  update_row("record_published", id,
             "state = 'succeeded', output_path = $1, bytes = $2, sha256 = $3, manifest_path = $4, finished_at = $5, "
             "last_http_status = $6, error = NULL, next_poll_at = NULL",
             {published.output_path, std::to_string(published.bytes), published.sha256, published.manifest_path,
              format_iso8601(published.finished_at), std::to_string(published.last_http_status)});
}

// A missing last_http_status keeps the column: a job failing on a network error keeps the last
// status APSIS One did send.
void PostgresJobStore::record_finished(std::int64_t id, const FinishedColumns& finished) {
  update_row("record_finished", id,
             "state = $1, finished_at = $2, error = $3, last_http_status = coalesce($4::integer, last_http_status), "
             "polls = coalesce($5::integer, polls), polls_503_in_a_row = coalesce($6::integer, polls_503_in_a_row), "
             "output_path = coalesce($7, output_path), bytes = coalesce($8::bigint, bytes), "
             "sha256 = coalesce($9, sha256), manifest_path = coalesce($10, manifest_path), next_poll_at = NULL",
             {std::string(to_string(finished.state)), format_iso8601(finished.finished_at), finished.error,
              optional_number(finished.last_http_status), optional_number(finished.polls),
              optional_number(finished.polls_503_in_a_row), finished.output_path, optional_number(finished.bytes),
              finished.sha256, finished.manifest_path});
}

void PostgresJobStore::record_hook_result(std::int64_t id, const std::string& hook_result) {
  update_row("record_hook_result", id, "hook_result = $1", {hook_result});
}

void PostgresJobStore::record_file_removed(std::int64_t id, TimePoint removed_at) {
  update_row("record_file_removed", id, "file_removed_at = $1", {format_iso8601(removed_at)});
}

}  // namespace apsis::store
