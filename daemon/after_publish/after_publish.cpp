#include "after_publish/after_publish.hpp"

#include <unistd.h>

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include "after_publish/on_success_hook.hpp"
#include "after_publish/retention_step.hpp"
#include "sink/manifest.hpp"
#include "util/blocking.hpp"

namespace apsis::after_publish {
namespace {

bool is_shutdown(const std::exception& e) {
  const auto* error = dynamic_cast<const boost::system::system_error*>(&e);
  return error && error->code() == boost::asio::error::operation_aborted;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return {};
  return name;
}

}  // namespace

boost::asio::awaitable<std::filesystem::path> write_manifest(const Context& context, const PublishedJob& job) {
  const sink::Manifest manifest{job.export_name,
                                job.id,
                                job.scheduled_for,
                                job.output_path,
                                job.bytes,
                                job.sha256,
                                job.content_type,
                                job.content_encoding,
                                std::string(config::to_string(context.definition.format)),
                                std::string(config::to_string(context.definition.compression)),
                                job.created_at,
                                job.submitted_at,
                                context.now(),
                                job.download_duration,
                                job.polls,
                                job.download_attempts,
                                std::string(context.instance),
                                host_name()};
  std::filesystem::path written;
  co_await run_blocking(context.blocking, [&] { written = sink::write_manifest(manifest); });
  co_return written;
}

boost::asio::awaitable<void> after_success(const Context& context, const PublishedJob& job,
                                           std::optional<std::filesystem::path> manifest) {
  try {
    if (context.definition.keep.any()) co_await apply_retention(context, job);
  } catch (const std::exception& e) {
    if (is_shutdown(e)) throw;
    context.log.log(Level::warning, std::string("keep: ") + e.what(), log_fields(context, job));
  }
  if (!context.definition.on_success) co_return;
  try {
    co_await run_hook(context, job, manifest);
  } catch (const std::exception& e) {
    if (is_shutdown(e)) throw;
    // The row could not take the hook's result (gone, say): the job stays succeeded all the same.
    context.log.log(Level::warning, std::string("on_success: ") + e.what(), log_fields(context, job));
  }
}

}  // namespace apsis::after_publish
