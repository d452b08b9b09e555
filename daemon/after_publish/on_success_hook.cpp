#include "after_publish/on_success_hook.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include "hook/command.hpp"

namespace apsis::after_publish {

std::map<std::string, std::string> hook_environment(const PublishedJob& job,
                                                    const std::optional<std::filesystem::path>& manifest,
                                                    const std::filesystem::path& output_dir) {
  return {{"APSIS_FILE", job.output_path},
          {"APSIS_MANIFEST", manifest ? manifest->string() : std::string()},
          {"APSIS_EXPORT", job.export_name},
          {"APSIS_JOB_ID", std::to_string(job.id)},
          {"APSIS_SCHEDULED_FOR", format_iso8601(job.scheduled_for)},
          {"APSIS_BYTES", std::to_string(job.bytes)},
          {"APSIS_SHA256", job.sha256},
          {"APSIS_CONTENT_TYPE", job.content_type},
          {"APSIS_CONTENT_ENCODING", job.content_encoding.value_or("")},
          {"APSIS_OUTPUT_DIR", output_dir.string()}};
}

namespace {

// Shutdown: the coroutine can await nothing more, so one direct try; a busy database leaves the
// "not finished" note, which says the same to a reader.
void record_interrupted(const Context& context, const PublishedJob& job) {
  try {
    context.store.record_hook_result(job.id, "interrupted by shutdown");
  } catch (const std::exception& e) {
    context.log.log(Level::warning, std::string("on_success: interrupted by shutdown, not recorded: ") + e.what(),
                    log_fields(context, job));
  }
}

}  // namespace

boost::asio::awaitable<void> run_hook(const Context& context, const PublishedJob& job,
                                      const std::optional<std::filesystem::path>& manifest) {
  const auto& hook = *context.definition.on_success;
  const auto started = "started " + format_iso8601(context.now()) + ", not finished";  // what a crash now leaves
  co_await context.writer.write([&](store::JobStore& store) { store.record_hook_result(job.id, started); });
  std::string result;
  std::string outcome;
  try {
    const auto command =
        co_await hook::run_command(hook.argv, hook_environment(job, manifest, context.config.output_dir), hook.timeout);
    result = command.describe();
    outcome = command.succeeded() ? "ok" : command.timed_out ? "timeout" : "failed";
  } catch (const boost::system::system_error& e) {
    if (e.code() == boost::asio::error::operation_aborted) {
      record_interrupted(context, job);
      throw;
    }
    result = std::string("could not run: ") + e.what();
    outcome = "failed";
  } catch (const std::exception& e) {
    result = std::string("could not run: ") + e.what();
    outcome = "failed";
  }
  co_await context.writer.write([&](store::JobStore& store) { store.record_hook_result(job.id, result); });
  if (context.metrics) ++context.metrics->hook_runs[outcome];
  context.log.log(outcome == "ok" ? Level::info : Level::warning, "on_success: " + result, log_fields(context, job));
}

}  // namespace apsis::after_publish
