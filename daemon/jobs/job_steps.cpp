#include "jobs/job_steps.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>

#include "after_publish/after_publish.hpp"
#include "config/output_template.hpp"
#include "http/client.hpp"
#include "jobs/submit_body.hpp"
#include "schedule/schedule.hpp"
#include "sink/download.hpp"
#include "sink/staged_file.hpp"
#include "util/errors.hpp"

namespace apsis::jobs {
namespace {

namespace asio = boost::asio;
using store::JobState;

std::string header(const http::Response& response, boost::beast::http::field field) {
  return std::string(response.headers[field]);
}

std::optional<std::string> unless_empty(std::string text) {
  return text.empty() ? std::nullopt : std::optional<std::string>(std::move(text));
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

// What an API failure does to the job, whichever step met it and whatever its kind: the job fails
// with the failure's message, and the HTTP status that refused it (if any) becomes its last. The
// client has already retried what heals; cancellation never gets here (it stays an exception).
Event api_failed(const apsis_one::ApiFailure& failure) { return event::ApiFailed{failure.message, failure.status}; }

enum class SinkCall { write, publish };

// What a sink failure does to the job. A piece that cannot be written ends the job with the
// file system's message. At publish, a file system failure (the last piece, fsync, the move into
// place) ends it as "publishing the file failed"; content that fails its own check (a gzip stream
// cut short, an empty file), whole by HTTP framing, is fetched again.
Event sink_failed(SinkCall call, const sink::SinkFailure& failure) {
  if (call == SinkCall::write) return event::Failed{failure.message};
  return event::DownloadFailed{failure.message, failure.kind == sink::SinkFailure::Kind::unverified};
}

// One job's step, with everything it touches at hand.
class Step {
 public:
  Step(const JobContext& context, ActiveJob& job, apsis_one::ExportApi& api)
      : context_(context), job_(job), api_(api), policy_(job_policy(*job.definition, context.config->retry)) {}

  asio::awaitable<Decision> run(budget::AccountBudget::Ticket ticket) {
    const std::function<asio::awaitable<Decision>()> step = [&]() -> asio::awaitable<Decision> {
      if (job_.row.state == JobState::pending) co_return co_await submit(std::move(ticket));
      co_return co_await poll(std::move(ticket));
    };
    auto decision = co_await guarded(step);
    if (decision.action == Action::finish && decision.row.state == JobState::succeeded) co_await after_success();
    co_return decision;
  }

 private:
  // ---- submit -------------------------------------------------------------------------------------
  asio::awaitable<Decision> submit(budget::AccountBudget::Ticket ticket) {
    const auto& definition = *job_.definition;
    log(Level::info, "submitting " + std::string(config::to_string(definition.kind)) + " export");
    fix_event_window(definition, job_.row);
    const auto on_attempt = [this]() -> asio::awaitable<void> {
      ++job_.row.submit_attempts;
      // Before the POST: a crash after it leaves a row that says an export may exist.
      std::function<void(store::JobStore&)> write =
          [id = job_.row.id, attempt = store::SubmitAttempt{job_.row.submit_attempts, job_.row.window_start,
                                                            job_.row.window_end}](store::JobStore& store) {
            store.record_submit_attempt(id, attempt);
          };
      co_await context_.writer.write(std::move(write));
    };
    const apsis_one::SubmitLimits limits{[this](const std::string& message) { log(Level::warning, message); },
                                         next_slot(definition, now())};
    const auto body = submit_body(definition, job_.row);
    const auto submitted = co_await api_.submit(definition, body, on_attempt, limits, std::move(ticket));
    Event outcome;
    if (submitted) {
      if (!submitted->poll_url.note.empty()) log(Level::warning, submitted->poll_url.note);
      outcome = event::SubmitAccepted{submitted->poll_url.url, submitted->poll_url.field, submitted->status};
    } else {
      outcome = api_failed(submitted.error());
    }
    auto decision = co_await apply(outcome);
    if (decision.row.state == JobState::submitted)
      log(Level::info, "submitted; polling until " + format_iso8601(*decision.row.poll_expires_at));
    co_return decision;
  }

  // ---- poll ---------------------------------------------------------------------------------------
  asio::awaitable<Decision> poll(budget::AccountBudget::Ticket ticket) {
    auto turn = decide(job_.row, event::PollTurn{}, policy_, now(), context_.random);
    if (turn.action != Action::poll) co_return co_await record(std::move(turn));
    record_timer_lateness();
    job_.last_polled_at = now();
    auto polled = co_await api_.poll(job_.row.poll_url, job_.row.poll_url_field, *job_.definition, std::move(ticket));
    if (!polled) {
      const Event failed = api_failed(polled.error());
      co_return co_await apply(failed);
    }
    auto& answer = *polled;
    auto body = std::move(answer.body);
    const Event answered =
        event::PollAnswered{answer.verdict, answer.status, answer.detail, answer.retry_after, answer.body_cut};
    auto decision = co_await apply(answered);
    if (decision.action != Action::download) co_return decision;
    co_return co_await download_and_publish(answer.response, std::move(body));
  }

  // ---- download and publish -----------------------------------------------------------------------
  // The 200's head is in and its row says "downloading" (written before the first body byte: a crash
  // now leaves a row that says "download again"); the body is drained into a staged file that is
  // published complete or not at all.
  asio::awaitable<Decision> download_and_publish(const http::Response& head, std::unique_ptr<http::BodySource> body) {
    const auto& definition = *job_.definition;
    const auto encoding = header(head, boost::beast::http::field::content_encoding);
    const bool gzip = encoding.find("gzip") != std::string::npos;
    const bool want_gzip = definition.compression == config::Compression::gzip;
    if (gzip != want_gzip) {
      const Event mismatch = event::Failed{std::string("asked for ") + (want_gzip ? "gzip" : "uncompressed") +
                                           " content but APSIS One sent Content-Encoding '" + encoding + "'"};
      co_return co_await apply(mismatch);
    }
    const auto content_type = header(head, boost::beast::http::field::content_type);
    std::function<void(store::JobStore&)> write_started =
        [id = job_.row.id, started = store::DownloadStarted{job_.row.download_attempts, job_.row.last_http_status,
                                                            unless_empty(content_type), unless_empty(encoding),
                                                            job_.row.polls}](
            store::JobStore& store) { store.record_download_started(id, started); };
    co_await context_.writer.write(std::move(write_started));
    // Any 200 turns into an open file: their number stays bounded however fast downloads finish.
    AsyncSemaphore::Permit transfer;
    if (context_.transfers) transfer = co_await context_.transfers->acquire();
    const auto path = output_path(*context_.config, definition, job_.row);
    std::optional<sink::Download> download;
    std::optional<Event> failure;
    try {
      sink::check_inside(context_.config->output_dir, path.parent_path());  // a symbolic link must not lead out
      // A CSV always has its header row, an Excel file its zip structure: empty, the body is not the file.
      download.emplace(context_.executor, path, gzip, context_.blocking, collision_names(definition, job_.row.id, path),
                       definition.format == config::FileFormat::json);
    } catch (const std::exception& e) {
      failure = event::Failed{e.what()};
    }
    if (failure) co_return co_await apply(*failure);
    job_.download_started = now();
    job_.bytes_received = 0;
    try {
      for (auto bytes = co_await body->read_some(); !bytes.empty(); bytes = co_await body->read_some()) {
        job_.bytes_received += bytes.size();
        if (context_.metrics) context_.metrics->bytes_downloaded += bytes.size();
        const auto written = co_await download->write(bytes);
        if (!written) {
          failure = sink_failed(SinkCall::write, written.error());
          // The staged file and the connection go before the row says failed.
          download.reset();
          body.reset();
          break;
        }
      }
    } catch (const http::NetworkError& e) {
      if (is_cancellation(e.code())) throw;
      failure = event::DownloadFailed{std::string("download cut short: ") + e.what(), true};
    }
    if (failure) co_return co_await apply(*failure);
    // A body that cannot be trusted to be the whole file is fetched again, like a cut one.
    if (const auto refusal = apsis_one::unpublishable_body(content_type, definition.format, body->end_framed(), gzip);
        !refusal.empty()) {
      const Event unverifiable = event::DownloadFailed{refusal, true};
      co_return co_await apply(unverifiable);
    }
    body.reset();  // the connection goes back to the pool
    co_await confirm_lease();  // a file another instance may publish too is never published here
    const auto published = co_await download->publish();
    if (!published) {
      failure = sink_failed(SinkCall::publish, published.error());
      co_return co_await apply(*failure);
    }
    co_return co_await deliver(*published, content_type, encoding);
  }

  // Several instances on one PostgreSQL table: LeaseLost (the step ends, the job goes to the lease's
  // new owner, and the staged file is removed) unless this one still holds the job's account.
  asio::awaitable<void> confirm_lease() {
    std::function<void(store::JobStore&)> confirm = [id = job_.row.id](store::JobStore& store) {
      store.confirm_lease(id);
    };
    co_await context_.writer.write(std::move(confirm));
  }

  // The file is in place. Its manifest comes next (loaders wait for it), then the row says succeeded.
  asio::awaitable<Decision> deliver(const sink::Published& published, const std::string& content_type,
                                    const std::string& encoding) {
    const auto preferred = output_path(*context_.config, *job_.definition, job_.row);
    if (published.path != preferred)
      log(Level::warning, "published as " + published.path.filename().string() + ": " + preferred.string() +
                              " already exists (another job's file, never replaced)");
    if (context_.metrics) {
      ++context_.metrics->downloads;
      context_.metrics->download_seconds += std::chrono::duration<double>(now() - *job_.download_started).count();
    }
    published_ = after_publish::PublishedJob{job_.row.id,
                                             job_.definition->name,
                                             job_.row.scheduled_for,
                                             job_.row.created_at,
                                             job_.row.submitted_at,
                                             published.path.string(),
                                             published.bytes,
                                             published.sha256,
                                             content_type,
                                             unless_empty(encoding),
                                             job_.row.polls,
                                             job_.row.download_attempts,
                                             std::chrono::duration_cast<Milliseconds>(now() - *job_.download_started)};
    if (job_.definition->manifest) {
      std::string failure;
      try {
        const auto context = after_publish_context();
        manifest_ = co_await after_publish::write_manifest(context, *published_);
      } catch (const std::system_error& e) {
        failure = std::string("the file was published but its manifest was not: ") + e.what();
      }
      const Event no_manifest = event::Failed{failure};
      if (!failure.empty()) co_return co_await apply(no_manifest);
    }
    auto decision = decide(job_.row, event::Published{}, policy_, now(), context_.random);
    std::function<void(store::JobStore&)> write_published =
        [id = job_.row.id,
         columns = store::PublishedColumns{published.path.string(), static_cast<std::int64_t>(published.bytes),
                                           published.sha256,
                                           manifest_ ? std::optional<std::string>(manifest_->string()) : std::nullopt,
                                           now(), decision.row.last_http_status}](store::JobStore& store) {
          store.record_published(id, columns);
        };
    co_await context_.writer.write(std::move(write_published));
    job_.row = decision.row;
    log(Level::info, "published " + published.path.string() + " (" + std::to_string(published.bytes) +
                         " bytes, sha256 " + published.sha256 + ")");
    co_return decision;
  }

  // ---- after publish: retention, then the hook; neither can undo the publish ---------------------
  asio::awaitable<void> after_success() {
    if (!published_) co_return;
    const auto context = after_publish_context();
    co_await after_publish::after_success(context, *published_, manifest_);
  }

  after_publish::Context after_publish_context() const {
    return {context_.executor, context_.writer, context_.store, *context_.config, *job_.definition,
            context_.log,      context_.blocking, context_.metrics, context_.now,
            context_.instance};
  }

  // ---- decisions ----------------------------------------------------------------------------------
  // Anything a step throws but cancellation ends the job as failed, written like any decision. (The
  // API's failures are results, handled where they arrive: this is for the unexpected.)
  asio::awaitable<Decision> guarded(const std::function<asio::awaitable<Decision>()>& step) {
    std::string failure;
    try {
      co_return co_await step();
    } catch (const std::exception& e) {
      if (is_cancellation(e)) throw;
      failure = e.what();
    }
    const Event failed = event::Failed{failure};
    co_return co_await apply(failed);
  }

  // (Every co_await here takes named values, never temporaries that own memory: GCC 12 can destroy
  // such a temporary twice when the coroutine resumes.)
  asio::awaitable<Decision> apply(const Event& event) {
    auto decision = decide(job_.row, event, policy_, now(), context_.random);
    co_return co_await record(std::move(decision));
  }

  // The final row. A file this job already put on disk is named in it even when the job failed
  // after the publish (its manifest, or the write saying "succeeded"): no file without its row.
  store::FinishedColumns finished_columns(const Decision& decision, std::optional<int> status) {
    const auto& row = decision.row;
    store::FinishedColumns columns{row.state, now(), unless_empty(decision.error), status, row.polls,
                                   row.polls_503_in_a_row, {}, {}, {}, {}};
    if (published_) {
      columns.output_path = published_->output_path;
      columns.bytes = static_cast<std::int64_t>(published_->bytes);
      columns.sha256 = published_->sha256;
      if (manifest_) columns.manifest_path = manifest_->string();
    }
    return columns;
  }

  // Writes the decision's part of the row, then makes the decision the job's state.
  asio::awaitable<Decision> record(Decision decision) {
    const auto& row = decision.row;
    const auto id = row.id;
    const auto status = row.last_http_status == 0 ? std::optional<int>() : std::optional<int>(row.last_http_status);
    const store::PollProgress progress{id, row.state, row.polls, row.next_poll_at, status, row.polls_503_in_a_row,
                                       row.download_attempts};
    // Built first and awaited after: GCC 12 destroys a temporary inside a co_await in a switch twice.
    std::function<void(store::JobStore&)> write;
    switch (decision.write) {
      case RowWrite::none:
      case RowWrite::download_started:  // written with the response's headers, in download_and_publish
      case RowWrite::published:         // written with the file's details, in deliver
        break;
      case RowWrite::progress_batched:
        if (job_.row_written_at && now() - *job_.row_written_at < kProgressNoteInterval) break;
        context_.writer.queue_progress(progress);
        job_.row_written_at = now();
        break;
      case RowWrite::progress:
        write = [progress](store::JobStore& store) { store.record_progress({&progress, 1}); };
        break;
      case RowWrite::submitted:
        write = [id, columns = store::SubmittedColumns{*row.submitted_at, row.poll_url,
                                                       std::string(config::to_string(row.poll_url_field)),
                                                       *row.poll_expires_at, row.last_http_status, *row.next_poll_at}](
                    store::JobStore& store) { store.record_submitted(id, columns); };
        break;
      case RowWrite::resubmit:
        write = [id, columns = store::Resubmitting{row.resubmits, decision.previous_poll_url, decision.resubmit_reason,
                                                   decision.error, row.polls}](store::JobStore& store) {
          store.record_resubmit(id, columns);
        };
        break;
      case RowWrite::finished:
        write = [id, columns = finished_columns(decision, status)](
                    store::JobStore& store) { store.record_finished(id, columns); };
        break;
    }
    if (write) {
      co_await context_.writer.write(std::move(write));
      job_.row_written_at = now();
    }
    // A decision's lines name the last APSIS One answer the job had, as its row does.
    if (!decision.warning.empty()) log(Level::warning, decision.warning, status);
    if (decision.action == Action::finish && row.state != JobState::succeeded)
      log(Level::error, std::string(store::to_string(row.state)) + ": " + decision.error, status);
    job_.row = decision.row;
    co_return decision;
  }

  void record_timer_lateness() {
    if (context_.metrics && job_.row.next_poll_at)
      context_.metrics->poll_timer_lateness.record(std::chrono::duration_cast<Milliseconds>(now() - *job_.row.next_poll_at));
  }

  void log(Level level, const std::string& message, std::optional<int> http_status = {}) const {
    auto fields = log_fields(job_);
    fields.http_status = http_status;
    context_.log.log(level, message, fields);
  }
  TimePoint now() const { return context_.now(); }

  JobContext context_;  // a copy: a reload must not change a step's configuration under it
  ActiveJob& job_;
  apsis_one::ExportApi& api_;
  JobPolicy policy_;
  std::optional<after_publish::PublishedJob> published_;
  std::optional<std::filesystem::path> manifest_;
};

}  // namespace

asio::awaitable<Decision> run_step(JobContext context, ActiveJob& job, apsis_one::ExportApi& api,
                                   budget::AccountBudget::Ticket ticket) {
  Step step(context, job, api);
  co_return co_await step.run(std::move(ticket));
}

std::filesystem::path output_path(const config::Config& config, const config::ExportDefinition& definition,
                                  const JobRow& row) {
  const config::TemplateValues values{definition.name, row.id, row.scheduled_for,
                                      config::file_extension(definition.format, definition.compression)};
  return config.output_dir / config::expand_output_template(definition.output_template, values);
}

}  // namespace apsis::jobs
