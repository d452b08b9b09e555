#include "store/store_writer.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <iostream>
#include <tuple>
#include <utility>
#include <vector>

namespace apsis::store {

namespace asio = boost::asio;

struct StoreWriter::Flusher {
  explicit Flusher(asio::any_io_executor executor) : timer(std::move(executor)) {}
  asio::steady_timer timer;
  StoreWriter* owner{nullptr};  // null once the writer is gone: a resumed wait then just ends
  bool armed{false};
  bool stopped{false};  // stop(): no more turns; flush() writes what is queued
};

// Counts one write waiting out a Busy database for as long as it lives.
class StoreWriter::WaitingWrite {
 public:
  WaitingWrite(StoreWriter& writer, std::string_view why) : writer_(writer) {
    const bool was_busy = writer_.busy();
    ++writer_.waiting_writes_;
    writer_.busy_changed(was_busy, why);
  }
  ~WaitingWrite() {
    const bool was_busy = writer_.busy();
    --writer_.waiting_writes_;
    writer_.busy_changed(was_busy);
  }
  WaitingWrite(const WaitingWrite&) = delete;
  WaitingWrite& operator=(const WaitingWrite&) = delete;

 private:
  StoreWriter& writer_;
};

StoreWriter::StoreWriter(asio::any_io_executor executor, JobStore& store, Milliseconds flush_interval,
                         Options options)
    : executor_(std::move(executor)),
      store_(store),
      flush_interval_(flush_interval),
      options_(std::move(options)),
      random_(options_.seed),
      flusher_(std::make_shared<Flusher>(executor_)) {
  flusher_->owner = this;
}

StoreWriter::~StoreWriter() {
  flusher_->owner = nullptr;
  flusher_->timer.cancel();
}

asio::awaitable<void> StoreWriter::write(std::function<void(JobStore&)> write) {
  const auto cancellation = co_await asio::this_coro::cancellation_state;
  std::optional<WaitingWrite> waiting;
  asio::steady_timer timer(executor_);
  for (Milliseconds delay = options_.first_retry;; delay = next_retry(delay)) {
    std::string busy;
    try {
      co_await write_queued();
      co_await run_on_store(write);
      co_return;
    } catch (const Busy& e) {
      busy = e.what();
    }
    if (!waiting) waiting.emplace(*this, busy);
    if (cancellation.cancelled() != asio::cancellation_type::none)
      throw boost::system::system_error(asio::error::operation_aborted, "waiting for the job database");
    timer.expires_after(jittered(delay));
    co_await timer.async_wait(asio::use_awaitable);  // cancellation ends the wait with operation_aborted
  }
}

void StoreWriter::queue_progress(const PollProgress& progress) {
  queued_.insert_or_assign(progress.id, progress);
  if (!flusher_->armed && !flusher_->stopped) arm_flush();
}

asio::awaitable<void> StoreWriter::flush() {
  co_await write([](JobStore&) {});  // write() writes the queued batch first
}

void StoreWriter::stop() {
  flusher_->stopped = true;
  flusher_->timer.cancel();
}

asio::awaitable<void> StoreWriter::write_queued() {
  if (queued_.empty()) co_return;
  // Taken out first: on a database thread, more notes may queue while this batch is written.
  auto taken = std::exchange(queued_, {});
  std::vector<PollProgress> batch;
  batch.reserve(taken.size());
  for (const auto& [id, progress] : taken) batch.push_back(progress);
  std::string handed_over;
  try {
    const std::function<void(JobStore&)> record = [&batch](JobStore& store) { store.record_progress(batch); };
    co_await run_on_store(record);
  } catch (const LeaseLost& e) {
    // Notes of accounts another instance holds now: the batch's other notes are written, these are
    // not ours to write (the new owner polls the jobs itself). Kept, they would fail every write after.
    handed_over = e.what();
  } catch (...) {
    taken.merge(queued_);  // a note queued meanwhile is newer than the batch's: it wins
    queued_ = std::move(taken);
    throw;
  }
  if (!handed_over.empty()) report("progress notes dropped: " + handed_over);
  if (flush_stuck_) {
    flush_stuck_ = false;
    busy_changed(true);
  }
}

asio::awaitable<void> StoreWriter::run_on_store(const std::function<void(JobStore&)>& call) {
  if (!options_.database) {
    call(store_);
    co_return;
  }
  // The coroutine runs on the database thread; its answer (or exception) comes back to this one.
  auto on_database = [&store = store_, &call]() -> asio::awaitable<void> {
    call(store);
    co_return;
  };
  co_await asio::co_spawn(*options_.database, std::move(on_database), asio::use_awaitable);
}

void StoreWriter::arm_flush() {
  flusher_->armed = true;
  asio::co_spawn(executor_, flush_later(flusher_), [flusher = flusher_](std::exception_ptr error) {
    if (!error) return;  // flush_later disarmed itself as it ended
    flusher->armed = false;
    if (!flusher->owner) return;
    // flush_later catches everything it expects; anything else is reported, and the batch stays
    // queued for another turn rather than being lost silently.
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      flusher->owner->report(std::string("job progress flush stopped: ") + e.what() + "; starting it again");
    } catch (...) {
      flusher->owner->report("job progress flush stopped; starting it again");
    }
    if (!flusher->owner->queued_.empty() && !flusher->stopped) flusher->owner->arm_flush();
  });
}

// Waits flush_interval, writes the batch, and keeps at it (with back-off) while the batch cannot be
// written; ends when nothing is queued, so a stopping event loop is not held up by an idle timer.
asio::awaitable<void> StoreWriter::flush_later(std::shared_ptr<Flusher> flusher) {
  Milliseconds wait = flush_interval_;
  Milliseconds retry = options_.first_retry;
  for (;;) {
    boost::system::error_code ec;
    if (!flusher->stopped) {  // stop() may come before this turn first waits
      flusher->timer.expires_after(wait);
      std::tie(ec) = co_await flusher->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    StoreWriter* self = flusher->owner;
    if (!self || ec || flusher->stopped) {  // the writer is gone or stop()ped: flush() writes what is left
      flusher->armed = false;
      co_return;
    }
    try {
      co_await self->write_queued();
      self = flusher->owner;  // the write may have suspended: the writer may be gone
      if (!self) co_return;
      if (!self->queued_.empty()) {  // queued while this batch was written: another turn
        wait = flush_interval_;
        continue;
      }
      flusher->armed = false;  // all written; the next queue_progress arms a new turn
      co_return;
    } catch (const Busy& e) {
      self = flusher->owner;
      if (!self) co_return;
      if (!self->flush_stuck_) {
        const bool was_busy = self->busy();
        self->flush_stuck_ = true;
        self->busy_changed(was_busy, e.what());
      }
    } catch (const std::exception& e) {
      self = flusher->owner;
      if (!self) co_return;
      self->report(std::string("writing the progress of ") + std::to_string(self->queued_.size()) +
                   " job(s) failed: " + e.what() + "; trying again");
    }
    wait = std::max(self->jittered(retry), Milliseconds(1));
    retry = self->next_retry(retry);
  }
}

Milliseconds StoreWriter::jittered(Milliseconds delay) {
  // Half to all of the delay: writers that met the same lock do not all come back at once.
  std::uniform_int_distribution<Milliseconds::rep> pick(delay.count() / 2, delay.count());
  return Milliseconds(pick(random_));
}

Milliseconds StoreWriter::next_retry(Milliseconds delay) const { return std::min(delay * 2, options_.max_retry); }

void StoreWriter::busy_changed(bool was_busy, std::string_view why) {
  const bool now_busy = busy();
  if (now_busy == was_busy) return;
  if (now_busy) {
    busy_since_ = std::chrono::steady_clock::now();
    report(std::string("job database busy, writes wait and retry: ") + std::string(why));
    return;
  }
  const auto waited = std::chrono::steady_clock::now() - busy_since_.value_or(std::chrono::steady_clock::now());
  busy_since_.reset();
  report("job database writable again after " +
         std::to_string(std::chrono::duration_cast<Milliseconds>(waited).count()) + " ms");
}

void StoreWriter::report(std::string_view problem) const {
  if (options_.report)
    options_.report(problem);
  else
    std::cerr << "apsis-exportd: " << problem << '\n';
}

}  // namespace apsis::store
