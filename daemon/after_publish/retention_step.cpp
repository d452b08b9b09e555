#include "after_publish/retention_step.hpp"

#include <vector>

#include "sink/retention.hpp"
#include "util/blocking.hpp"

namespace apsis::after_publish {
namespace {


// Which files go: reads through the writer, so a busy database delays retention instead of failing it.
boost::asio::awaitable<sink::RetentionPlan> plan(const Context& context, const PublishedJob& job) {
  std::vector<sink::PublishedFile> files;
  co_await context.writer.write([&](store::JobStore& store) {
    files.clear();
    for (const auto& row : store.published_files(job.export_name))
      files.push_back({row.id, row.scheduled_for, *row.output_path});
  });
  const auto now = context.now();
  // Another export's newer file may hold an old file's path (two templates giving one path).
  sink::PathOwners owners;
  const auto first = sink::plan_retention(files, context.definition.keep, now, job.id);
  co_await context.writer.write([&](store::JobStore& store) {
    owners.clear();
    for (const auto& file : first.remove)
      if (const auto owner = store.newest_owner(file.path.string())) owners[file.path] = *owner;
  });
  co_return sink::plan_retention(files, context.definition.keep, now, job.id, owners);
}

}  // namespace

boost::asio::awaitable<void> apply_retention(const Context& context, const PublishedJob& job) {
  const auto retention = co_await plan(context, job);
  std::vector<std::string> problems(retention.remove.size());
  co_await run_blocking(context.blocking, [&] {
    for (std::size_t i = 0; i < retention.remove.size(); ++i)
      problems[i] = sink::remove_published(retention.remove[i].path);
  });
  std::vector<std::int64_t> removed;
  for (std::size_t i = 0; i < retention.remove.size(); ++i) {
    if (!problems[i].empty()) {
      context.log.log(Level::warning, "keep: " + problems[i], log_fields(context, job));
      continue;
    }
    removed.push_back(retention.remove[i].job_id);
    if (context.metrics) ++context.metrics->files_removed;
    context.log.log(Level::info, "keep: deleted " + retention.remove[i].path.string(), log_fields(context, job));
  }
  removed.insert(removed.end(), retention.superseded.begin(), retention.superseded.end());
  if (removed.empty()) co_return;
  const auto removed_at = context.now();
  // Only file_removed_at of those rows: their jobs may still be running their own hooks.
  co_await context.writer.write([&](store::JobStore& store) {
    for (const auto id : removed) store.record_file_removed(id, removed_at);
  });
}

}  // namespace apsis::after_publish
