#include "jobs/job_lifecycle.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include "apsis/errors.hpp"
#include "config/output_template.hpp"
#include "hook/command.hpp"
#include "jobs/resubmit_rules.hpp"
#include "jobs/submit_body.hpp"
#include "schedule/schedule.hpp"
#include "sink/manifest.hpp"
#include "sink/retention.hpp"
#include "util/blocking.hpp"

namespace apsis::jobs {
namespace {

using store::JobState;
using apsis_one::Verdict;

bool is_shutdown(const std::exception& e) {
  const auto* error = dynamic_cast<const boost::system::system_error*>(&e);
  return error && http::is_cancellation(error->code());
}

std::string header_or_empty(const http::Response& response, boost::beast::http::field field) {
  return std::string(response.headers[field]);
}

// The export's next scheduled slot after `now`: a submit must not still be retrying then.
std::optional<TimePoint> next_slot(const config::ExportDefinition& definition, TimePoint now) {
  if (!definition.schedule) return std::nullopt;
  const auto schedule = schedule::Schedule::parse(*definition.schedule, definition.timezone);
  if (!schedule) return std::nullopt;
  return schedule->next_after(now);
}

// Where the file goes when another job's file holds its name: "-job<ID>" before the extension, then
// numbered (one job may find its own earlier name taken by another process sharing the directory).
std::vector<std::filesystem::path> collision_names(const config::ExportDefinition& definition, std::int64_t job_id,
                                                   const std::filesystem::path& preferred) {
  const auto ext = config::file_extension(definition.format, definition.compression);
  const auto job = "-job" + std::to_string(job_id);
  std::vector<std::filesystem::path> names;
  for (int n = 1; n <= 9; ++n)
    names.push_back(preferred.parent_path() /
                    config::insert_before_extension(preferred.filename().string(), ext,
                                                    n == 1 ? job : job + "-" + std::to_string(n)));
  return names;
}

}  // namespace

JobLifecycle::JobLifecycle(JobEnvironment environment, std::shared_ptr<const config::ExportDefinition> definition,
                           store::Job job)
    : env_(environment), definition_(std::move(definition)), job_(std::move(job)), poll_timer_(env_.executor) {
  // The row's copy of the definition is only read at resume; from here on the shared one is used.
  job_.definition_json = std::string();
  last_saved_ = env_.now();  // the row was just created or read back: it says what job_ says
}

boost::asio::awaitable<void> JobLifecycle::run() {
  const auto cancellation = co_await boost::asio::this_coro::cancellation_state;
  try {
    while (!store::is_final(job_.state)) {
      if (job_.state == JobState::pending) {
        co_await submit();
        continue;
      }
      // Waiting here, not in a nested coroutine: a sleeping job is most of a job's life, and with
      // thousands in flight each extra coroutine frame held during the wait adds up.
      if (const auto wait = until_next_poll(); wait.count() > 0) {
        poll_timer_.expires_after(wait);
        co_await poll_timer_.async_wait(boost::asio::use_awaitable);
        record_timer_lateness();
      }
      co_await poll_once();
    }
  } catch (const boost::system::system_error& e) {
    // Shutdown: the row stays as it is, to be resumed. An "aborted" nobody asked for is a failure.
    if (http::is_cancellation(e.code()) && cancellation.cancelled() != boost::asio::cancellation_type::none) throw;
    finish(JobState::failed, e.what());
  } catch (const apsis_one::ApsisError& e) {
    if (e.status()) job_.last_http_status = static_cast<int>(*e.status());
    finish(JobState::failed, e.what());
  } catch (const std::exception& e) {
    finish(JobState::failed, e.what());
  }
}

boost::asio::awaitable<void> JobLifecycle::submit() {
  env_.log.job(Level::info, job_.export_name, job_.id, "submitting " + std::string(config::to_string(definition_->kind)) + " export");
  if (fix_event_window(*definition_, job_)) save();
  const apsis_one::SubmitLimits limits{
      [this](const std::string& message) { env_.log.job(Level::warning, job_.export_name, job_.id, message); },
      next_slot(*definition_, env_.now())};
  const auto submitted = co_await env_.client->submit(
      *definition_, submit_body(*definition_, job_),
      [this] {
        ++job_.submit_attempts;
        save();
      },
      &budget_wait_, limits);
  if (!submitted.poll_url.note.empty())
    env_.log.job(Level::warning, job_.export_name, job_.id, submitted.poll_url.note);
  const TimePoint now = env_.now();
  job_.state = JobState::submitted;
  job_.submitted_at = now;
  job_.poll_url = submitted.poll_url.url;
  job_.poll_url_field = std::string(config::to_string(submitted.poll_url.field));
  job_.polls_503_in_a_row = 0;
  job_.poll_expires_at = now + definition_->polling.url_validity;
  job_.last_http_status = static_cast<int>(submitted.status);
  job_.next_poll_at = next_poll_time(now, backoff_delay(definition_->polling.backoff, 0, env_.random),
                                     *job_.poll_expires_at);
  save();
  env_.log.job(Level::info, job_.export_name, job_.id, "submitted; polling until " + format_iso8601(*job_.poll_expires_at));
}

Milliseconds JobLifecycle::until_next_poll() const {
  return std::chrono::duration_cast<Milliseconds>(job_.next_poll_at.value_or(env_.now()) - env_.now());
}

void JobLifecycle::record_timer_lateness() {
  if (env_.metrics && job_.next_poll_at)
    env_.metrics->poll_timer_lateness.record(std::chrono::duration_cast<Milliseconds>(env_.now() - *job_.next_poll_at));
}

boost::asio::awaitable<void> JobLifecycle::poll_once() {
  if (env_.now() >= job_.poll_expires_at.value_or(TimePoint::max())) {
    give_up(GiveUp::expired, "the poll URL's validity ended after " + std::to_string(job_.polls) +
                                 " polls without the file becoming ready");
    co_return;
  }
  http::BodyTarget target{[this](const http::Response& head) { on_file_ready(head); },
                          [this](std::span<const char> bytes) {
                            bytes_received_ += bytes.size();
                            if (env_.metrics) env_.metrics->bytes_downloaded += bytes.size();
                            return download_->write(bytes);
                          }};
  // Any poll may turn into a download, so each one holds a transfer slot while it runs.
  AsyncSemaphore::Permit transfer;
  if (env_.transfers) transfer = co_await env_.transfers->acquire();  // (not in a ?: — GCC 12 mishandles co_await there)
  // Rows from before the field was recorded hold a file_download_url.
  const auto field = config::parse_poll_url_field(job_.poll_url_field.value_or(""))
                         .value_or(config::PollUrlField::file_download_url);
  const auto answer = co_await env_.client->poll(*job_.poll_url, field, *definition_, target, &budget_wait_);
  ++job_.polls;
  // The slot is held until the file is published: files waiting for their fsync stay open, and
  // their number must stay bounded however fast downloads finish.
  if (answer.verdict != Verdict::success) {
    on_answer(answer);
    co_return;
  }
  // A body that cannot be trusted to be the whole file is fetched again, like a cut one.
  const auto refusal = apsis_one::unpublishable_body(header_or_empty(answer.response, boost::beast::http::field::content_type),
                                                     definition_->format, answer.response.end_framed,
                                                     definition_->compression == config::Compression::gzip);
  if (refusal.empty()) {
    co_await publish();
    co_return;
  }
  auto refused = answer;
  refused.verdict = Verdict::transient;
  refused.body_cut = true;
  refused.detail = refusal;
  on_answer(refused);
}

void JobLifecycle::on_file_ready(const http::Response& head) {
  const auto encoding = header_or_empty(head, boost::beast::http::field::content_encoding);
  const bool gzip = encoding.find("gzip") != std::string::npos;
  const bool want_gzip = definition_->compression == config::Compression::gzip;
  if (gzip != want_gzip)
    throw apsis_one::ApsisError(std::string("asked for ") + (want_gzip ? "gzip" : "uncompressed") +
                                    " content but APSIS One sent Content-Encoding '" + encoding + "'",
                                head.status);
  job_.state = JobState::downloading;
  job_.last_http_status = static_cast<int>(head.status);
  ++job_.download_attempts;
  job_.content_type = header_or_empty(head, boost::beast::http::field::content_type);
  job_.content_encoding = encoding.empty() ? std::optional<std::string>() : encoding;
  save();  // before the first body byte: a crash now leaves a row that says "download again"
  const auto path = output_path();
  sink::check_inside(env_.config->output_dir, path.parent_path());  // a symbolic link must not lead out
  // A CSV always has its header row, an Excel file its zip structure: empty, the body is not the file.
  download_ = std::make_unique<sink::Download>(env_.executor, path, gzip, env_.blocking,
                                               collision_names(*definition_, job_.id, path),
                                               definition_->format == config::FileFormat::json);
  download_started_ = env_.now();
  bytes_received_ = 0;
}

void JobLifecycle::on_answer(const apsis_one::PollAnswer& answer) {
  if (answer.status != 0) job_.last_http_status = static_cast<int>(answer.status);
  if (answer.status != 0 && answer.verdict != Verdict::export_failing && job_.polls_503_in_a_row != 0) {
    // The run of 503s is broken. Written at the next save even for a 404, which is otherwise saved
    // once a minute: after a restart, stale 503s must not count towards a failed export.
    job_.polls_503_in_a_row = 0;
    last_saved_ = TimePoint{};
  }
  switch (answer.verdict) {
    case Verdict::success:
      return;  // poll_once publishes the file
    case Verdict::in_progress:
      return still_in_progress();
    case Verdict::gone:
      return give_up(GiveUp::expired, answer.detail);
    case Verdict::export_failing:
      return on_503(answer);
    case Verdict::rate_limited:
    case Verdict::transient:
      break;
    case Verdict::unknown_export:
    case Verdict::token_rejected:
    case Verdict::permanent:
      return finish(JobState::failed, answer.detail);
  }
  download_.reset();  // a cut body: the temporary file goes, nothing partial remains
  env_.log.job(Level::warning, job_.export_name, job_.id, answer.detail);
  if (answer.body_cut) {
    if (job_.download_attempts >= env_.config->retry.max_download_attempts)
      return finish(JobState::failed, "gave up after " + std::to_string(job_.download_attempts) +
                                          " download attempts; last: " + answer.detail);
    return poll_again_after(backoff_delay(env_.config->retry.backoff, job_.download_attempts - 1, env_.random),
                            JobState::downloading);
  }
  const auto delay = answer.retry_after.value_or(backoff_delay(definition_->polling.backoff, job_.polls, env_.random));
  poll_again_after(delay, JobState::submitted);
}

boost::asio::awaitable<void> JobLifecycle::publish() {
  std::optional<sink::Published> published;
  std::exception_ptr failure;
  try {
    published = co_await download_->publish();
  } catch (const boost::system::system_error& e) {
    if (http::is_cancellation(e.code())) throw;
    failure = std::current_exception();
  } catch (...) {
    failure = std::current_exception();
  }
  download_.reset();
  if (published) co_return co_await deliver(*published);
  try {
    std::rethrow_exception(failure);
  } catch (const std::system_error& e) {
    finish(JobState::failed, std::string("publishing the file failed: ") + e.what());
  } catch (const std::exception& e) {
    // A body that arrived whole by HTTP framing but fails its own integrity check: fetch again.
    if (job_.download_attempts >= env_.config->retry.max_download_attempts)
      co_return finish(JobState::failed, "gave up after " + std::to_string(job_.download_attempts) +
                                             " download attempts; last: " + e.what());
    env_.log.job(Level::warning, job_.export_name, job_.id, std::string(e.what()) + "; downloading again");
    poll_again_after(backoff_delay(env_.config->retry.backoff, job_.download_attempts - 1, env_.random),
                     JobState::downloading);
  }
}

// The file is in place. Its manifest comes next (loaders wait for it), then the row says succeeded;
// retention and the hook follow, and nothing they do can undo the publish or change the job's state.
boost::asio::awaitable<void> JobLifecycle::deliver(const sink::Published& published) {
  if (const auto preferred = output_path(); published.path != preferred)
    env_.log.job(Level::warning, job_.export_name, job_.id,
                 "published as " + published.path.filename().string() + ": " + preferred.string() +
                     " already exists (another job's file, never replaced)");
  job_.output_path = published.path.string();
  job_.bytes = static_cast<std::int64_t>(published.bytes);
  job_.sha256 = published.sha256;
  job_.next_poll_at.reset();
  if (env_.metrics) {
    ++env_.metrics->downloads;
    env_.metrics->download_seconds +=
        std::chrono::duration<double>(env_.now() - download_started_.value_or(env_.now())).count();
  }
  if (definition_->manifest) {
    try {
      co_await write_manifest();
    } catch (const std::system_error& e) {
      co_return finish(JobState::failed, std::string("the file was published but its manifest was not: ") + e.what());
    }
  }
  finish(JobState::succeeded, "");
  // From here on the job has succeeded: a failure below is logged on the job, never turned into a
  // failed state by run()'s handlers.
  try {
    if (definition_->keep.any()) co_await apply_retention();
  } catch (const std::exception& e) {
    if (is_shutdown(e)) throw;
    env_.log.job(Level::warning, job_.export_name, job_.id, std::string("keep: ") + e.what());
  }
  if (definition_->on_success) co_await run_hook();
}

boost::asio::awaitable<void> JobLifecycle::write_manifest() {
  sink::Manifest manifest{job_.export_name,
                          job_.id,
                          job_.scheduled_for,
                          *job_.output_path,
                          static_cast<std::uint64_t>(job_.bytes.value_or(0)),
                          job_.sha256.value_or(""),
                          job_.content_type.value_or(""),
                          job_.content_encoding,
                          std::string(config::to_string(definition_->format)),
                          std::string(config::to_string(definition_->compression)),
                          job_.created_at,
                          job_.submitted_at,
                          env_.now(),
                          std::chrono::duration_cast<Milliseconds>(env_.now() - download_started_.value_or(env_.now())),
                          job_.polls,
                          job_.download_attempts};
  std::filesystem::path written;
  co_await run_blocking(env_.blocking, [&] { written = sink::write_manifest(manifest); });
  job_.manifest_path = written.string();
}

boost::asio::awaitable<void> JobLifecycle::apply_retention() {
  auto rows = env_.store.published_files(job_.export_name);
  std::vector<sink::PublishedFile> files;
  for (const auto& row : rows) files.push_back({row.id, row.scheduled_for, *row.output_path});
  // Another export's newer file may hold an old file's path (two templates giving one path).
  sink::PathOwners owners;
  for (const auto& file : sink::plan_retention(files, definition_->keep, env_.now(), job_.id).remove)
    if (const auto owner = env_.store.newest_owner(file.path.string())) owners[file.path] = *owner;
  const auto plan = sink::plan_retention(files, definition_->keep, env_.now(), job_.id, owners);
  std::vector<std::string> problems(plan.remove.size());
  co_await run_blocking(env_.blocking, [&] {
    for (std::size_t i = 0; i < plan.remove.size(); ++i) problems[i] = sink::remove_published(plan.remove[i].path);
  });
  const auto mark_removed = [&](std::int64_t id) {
    for (auto& row : rows)
      if (row.id == id) {
        row.file_removed_at = env_.now();
        env_.store.save(row);
      }
  };
  for (std::size_t i = 0; i < plan.remove.size(); ++i) {
    if (!problems[i].empty()) {
      env_.log.job(Level::warning, job_.export_name, job_.id, "keep: " + problems[i]);
      continue;
    }
    mark_removed(plan.remove[i].job_id);
    if (env_.metrics) ++env_.metrics->files_removed;
    env_.log.job(Level::info, job_.export_name, job_.id, "keep: deleted " + plan.remove[i].path.string());
  }
  for (const auto id : plan.superseded) mark_removed(id);
}

boost::asio::awaitable<void> JobLifecycle::run_hook() {
  const auto& hook = *definition_->on_success;
  job_.hook_result = "started " + format_iso8601(env_.now()) + ", not finished";  // what a crash now leaves
  save();
  std::string outcome;
  try {
    const auto result = co_await hook::run_command(hook.argv, hook_environment(), hook.timeout);
    job_.hook_result = result.describe();
    outcome = result.succeeded() ? "ok" : result.timed_out ? "timeout" : "failed";
  } catch (const boost::system::system_error& e) {
    if (http::is_cancellation(e.code())) {
      job_.hook_result = "interrupted by shutdown";
      save();
      throw;
    }
    job_.hook_result = std::string("could not run: ") + e.what();
    outcome = "failed";
  } catch (const std::exception& e) {
    job_.hook_result = std::string("could not run: ") + e.what();
    outcome = "failed";
  }
  save();
  if (env_.metrics) ++env_.metrics->hook_runs[outcome];
  env_.log.job(outcome == "ok" ? Level::info : Level::warning, job_.export_name, job_.id,
               "on_success: " + *job_.hook_result);
}

std::map<std::string, std::string> JobLifecycle::hook_environment() const {
  return {{"APSIS_FILE", job_.output_path.value_or("")},
          {"APSIS_MANIFEST", job_.manifest_path.value_or("")},
          {"APSIS_EXPORT", job_.export_name},
          {"APSIS_JOB_ID", std::to_string(job_.id)},
          {"APSIS_SCHEDULED_FOR", format_iso8601(job_.scheduled_for)},
          {"APSIS_BYTES", std::to_string(job_.bytes.value_or(0))},
          {"APSIS_SHA256", job_.sha256.value_or("")},
          {"APSIS_CONTENT_TYPE", job_.content_type.value_or("")},
          {"APSIS_CONTENT_ENCODING", job_.content_encoding.value_or("")},
          {"APSIS_OUTPUT_DIR", env_.config->output_dir.string()}};
}

// A 503 on the poll URL: the export failed at APSIS if it keeps coming; until then the URL is asked
// again soon (the retry back-off, seconds), not on the poll back-off.
void JobLifecycle::on_503(const apsis_one::PollAnswer& answer) {
  ++job_.polls_503_in_a_row;
  if (export_failed(definition_->polling, job_))
    return give_up(GiveUp::export_failed, "the export failed at APSIS One: its poll URL answered 503 " +
                                              std::to_string(job_.polls_503_in_a_row) + " times in a row (" +
                                              answer.detail + ")");
  env_.log.job(Level::warning, job_.export_name, job_.id,
               answer.detail + " (" + std::to_string(job_.polls_503_in_a_row) + " in a row; " +
                   std::to_string(definition_->polling.failed_export_after_503s) + " mean the export failed)");
  poll_again_after(backoff_delay(env_.config->retry.backoff, job_.polls_503_in_a_row - 1, env_.random),
                   JobState::submitted);
}

void JobLifecycle::give_up(GiveUp reason, std::string why) {
  download_.reset();
  if (should_resubmit(*definition_, job_, reason)) {
    // A new export for the same slot, in the same row: the slot keeps exactly one job.
    const char* rule = reason == GiveUp::expired ? "on_expired" : "on_failed_export";
    prepare_resubmit(job_, why);
    job_.error = why + "; requesting a new export (" + rule + ": resubmit, " + std::to_string(job_.resubmits) +
                 " of max_resubmits " + std::to_string(definition_->max_resubmits) + ")";
    save();
    env_.log.job(Level::warning, job_.export_name, job_.id, *job_.error);
    return;
  }
  finish(reason == GiveUp::expired ? JobState::expired : JobState::failed, std::move(why));
}

void JobLifecycle::still_in_progress() {
  schedule_poll(backoff_delay(definition_->polling.backoff, job_.polls, env_.random), JobState::submitted);
  // A 404 changes only the poll counter and the next poll time, and losing those in a crash costs
  // one early poll: the row is refreshed at most once a minute instead of on every poll.
  if (env_.now() - last_saved_ >= kProgressSaveInterval) save();
}

void JobLifecycle::poll_again_after(Milliseconds delay, JobState state) {
  schedule_poll(delay, state);
  save();
}

void JobLifecycle::schedule_poll(Milliseconds delay, JobState state) {
  job_.state = state;
  job_.next_poll_at = next_poll_time(env_.now(), delay, job_.poll_expires_at.value_or(TimePoint::max()));
}

void JobLifecycle::finish(JobState state, std::string error) {
  job_.state = state;
  job_.finished_at = env_.now();
  job_.next_poll_at.reset();
  job_.error = error.empty() ? std::optional<std::string>() : std::move(error);
  save();
  if (state == JobState::succeeded)
    env_.log.job(Level::info, job_.export_name, job_.id,
                 "published " + job_.output_path.value_or("") + " (" + std::to_string(job_.bytes.value_or(0)) +
                     " bytes, sha256 " + job_.sha256.value_or("") + ")");
  else
    env_.log.job(Level::error, job_.export_name, job_.id,
                 std::string(store::to_string(state)) + ": " + job_.error.value_or(""));
}

void JobLifecycle::save() {
  env_.store.save(job_);
  last_saved_ = env_.now();
  if (env_.metrics) ++env_.metrics->job_row_writes;
}

std::filesystem::path JobLifecycle::output_path() const {
  const config::TemplateValues values{job_.export_name, job_.id, job_.scheduled_for,
                                      config::file_extension(definition_->format, definition_->compression)};
  return env_.config->output_dir / config::expand_output_template(definition_->output_template, values);
}

}  // namespace apsis::jobs
