// The job table's writes as the event loop sees them. A write that finds the database locked by
// another connection (store::Busy) waits on a timer and tries again: the job that asked for it waits
// (the write-ahead rule: its row is written before its next network step), everything else on the
// loop keeps running. "Still in progress" notes are batched: one transaction a second, however many
// jobs poll. Lives on the event-loop thread; not thread-safe.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>
#include <random>
#include <string_view>

#include "store/job_store.hpp"
#include "store/job_updates.hpp"
#include "util/time.hpp"

namespace apsis::store {

struct StoreWriterOptions {
  Milliseconds first_retry{20};  // the wait after the first Busy, doubling up to max_retry
  Milliseconds max_retry{2000};
  std::uint32_t seed{std::random_device{}()};  // of the jitter on each wait
  // Where the writer says what went wrong (the database busy and free again, a failed batch);
  // null: standard error.
  std::function<void(std::string_view)> report;
  // Where store calls run. Empty: on the caller's thread (SQLite: a local file). PostgreSQL: one
  // database thread, so a call waiting on the network never holds up the event loop.
  std::optional<boost::asio::any_io_executor> database{};
};

class StoreWriter {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  using Options = StoreWriterOptions;

  StoreWriter(boost::asio::any_io_executor executor, JobStore& store, Milliseconds flush_interval = std::chrono::seconds(1),
              Options options = {});
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Runs `write` now; on store::Busy waits (20 ms doubling to 2 s, with jitter) and tries again until
  // it succeeds or the coroutine is cancelled (then throws operation_aborted with nothing written).
  // Any other exception propagates. While some write waits, busy() is true. Progress queued before
  // is written first, so a later write of the same row is never undone by an older note.
  boost::asio::awaitable<void> write(std::function<void(JobStore&)> write);

  // A read (or a write with an answer) with write()'s rules: Busy retried, run where store calls run.
  template <typename T>
  boost::asio::awaitable<T> call(std::function<T(JobStore&)> read) {
    std::optional<T> answer;
    std::function<void(JobStore&)> run = [&answer, &read](JobStore& store) { answer.emplace(read(store)); };
    co_await write(std::move(run));
    co_return std::move(*answer);
  }

  // A "still in progress" update: queued; a later one for the same id replaces the earlier; written
  // with the others by record_progress in one transaction at most flush_interval later. A Busy
  // flush keeps the batch for the next turn. Never blocks, never throws.
  void queue_progress(const PollProgress& progress);

  // Writes the queued batch now (shutdown), retrying Busy like write().
  boost::asio::awaitable<void> flush();

  // Shutdown: no more timed flushes, so the loop can end; what is queued (now or later) waits for flush().
  void stop();

  bool busy() const { return waiting_writes_ > 0 || flush_stuck_; }
  std::optional<SteadyTime> busy_since() const { return busy_since_; }
  std::size_t queued() const { return queued_.size(); }

 private:
  struct Flusher;  // the flush timer, shared with the coroutine that waits on it
  class WaitingWrite;

  boost::asio::awaitable<void> flush_later(std::shared_ptr<Flusher> flusher);
  void arm_flush();
  // Writes the queued batch; Busy propagates with the batch kept.
  boost::asio::awaitable<void> write_queued();
  // Runs `call` on the store where store calls run (options.database), and comes back here.
  boost::asio::awaitable<void> run_on_store(const std::function<void(JobStore&)>& call);
  Milliseconds jittered(Milliseconds delay);
  Milliseconds next_retry(Milliseconds delay) const;
  void busy_changed(bool was_busy, std::string_view why = {});
  void report(std::string_view problem) const;

  boost::asio::any_io_executor executor_;
  JobStore& store_;
  Milliseconds flush_interval_;
  Options options_;
  std::minstd_rand random_;
  std::map<std::int64_t, PollProgress> queued_;
  std::shared_ptr<Flusher> flusher_;
  int waiting_writes_{0};
  bool flush_stuck_{false};
  std::optional<SteadyTime> busy_since_;
};

}  // namespace apsis::store
