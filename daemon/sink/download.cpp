#include "sink/download.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "util/blocking.hpp"
#include "util/errors.hpp"

namespace apsis::sink {

namespace asio = boost::asio;

namespace {

// Whether `path` (not followed if a symbolic link) holds `bytes` bytes with this SHA-256.
bool holds(const std::filesystem::path& path, std::uint64_t bytes, const std::string& sha256) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  Sha256 hash;
  std::uint64_t size = 0;
  std::vector<char> buffer(1 << 16);
  ssize_t n = 0;
  while ((n = ::read(fd, buffer.data(), buffer.size())) > 0 || (n < 0 && errno == EINTR)) {
    if (n < 0) continue;
    size += static_cast<std::uint64_t>(n);
    hash.update(std::span<const char>(buffer.data(), static_cast<std::size_t>(n)));
  }
  ::close(fd);
  return n == 0 && size == bytes && hash.hex_digest() == sha256;
}

// What the sink threw, as the failure its caller acts on. A failed system call is io, with its
// operation, path and errno; any other failure (the content's own check) is unverified.
SinkFailure failure_of(const std::exception& error) {
  SinkFailure failure{SinkFailure::Kind::unverified, {}, {}, {}, error.what()};
  if (const auto* io = dynamic_cast<const IoError*>(&error)) {
    failure.operation = io->operation();
    failure.path = io->path();
  }
  if (const auto* system = dynamic_cast<const std::system_error*>(&error)) {
    failure.kind = SinkFailure::Kind::io;
    failure.code = system->code();
  } else if (const auto* boost_system = dynamic_cast<const boost::system::system_error*>(&error)) {
    failure.kind = SinkFailure::Kind::io;
    failure.code = boost_system->code();
  }
  return failure;
}

}  // namespace

Download::Sink::Sink(std::filesystem::path final_path, bool verify_gzip, std::vector<std::filesystem::path> alternatives,
                     bool may_be_empty)
    : file(std::move(final_path)), alternatives(std::move(alternatives)), may_be_empty(may_be_empty) {
  if (verify_gzip) gzip.emplace();
}

void Download::Sink::write(std::span<const char> bytes) {
  file.write(bytes);
  hash.update(bytes);
  if (gzip) gzip->update(bytes);
}

Published Download::Sink::publish() {
  if (gzip && !gzip->complete())
    throw std::runtime_error(gzip->error().empty() ? "gzip stream ended before its trailer (download incomplete)"
                                                   : gzip->error());
  // A CSV always has its header row, an Excel file its zip structure.
  if (!may_be_empty && (gzip ? gzip->uncompressed_bytes() : file.bytes_written()) == 0)
    throw std::runtime_error(gzip ? "the body is a valid gzip stream of an empty file: an export file is never empty"
                                  : "the body is empty: an export file is never empty");
  Published published{{}, file.bytes_written(), hash.hex_digest()};
  published.path = file.publish(alternatives, [&](const std::filesystem::path& existing) {
    return holds(existing, published.bytes, published.sha256);
  });
  return published;
}

Download::State::State(asio::any_io_executor loop, std::filesystem::path final_path, bool verify_gzip,
                       std::vector<std::filesystem::path> alternatives, bool may_be_empty)
    : sink(std::move(final_path), verify_gzip, std::move(alternatives), may_be_empty),
      piece_done(loop, asio::steady_timer::time_point::max()) {}

Download::Download(asio::any_io_executor loop, std::filesystem::path final_path, bool verify_gzip,
                   asio::thread_pool* worker, std::vector<std::filesystem::path> alternatives, bool may_be_empty)
    : worker_(worker),
      state_(std::make_shared<State>(std::move(loop), std::move(final_path), verify_gzip, std::move(alternatives),
                                     may_be_empty)) {}

Download::~Download() = default;

asio::awaitable<void> Download::wait_for_piece() {
  while (state_->busy) co_await state_->piece_done.async_wait(asio::as_tuple(asio::use_awaitable));
  if (state_->failure) std::rethrow_exception(std::exchange(state_->failure, nullptr));
}

asio::awaitable<Result<void, SinkFailure>> Download::write(std::span<const char> bytes) {
  std::optional<SinkFailure> failure;
  try {
    co_await hand_over(bytes);
  } catch (const std::system_error& e) {
    failure = failure_of(e);
  }
  if (failure) co_return std::move(*failure);
  co_return Result<void, SinkFailure>();
}

asio::awaitable<Result<Published, SinkFailure>> Download::publish() {
  std::optional<SinkFailure> failure;
  try {
    co_return co_await publish_or_throw();
  } catch (const boost::system::system_error& e) {
    if (is_cancellation(e.code())) throw;
    failure = failure_of(e);
  } catch (const std::exception& e) {
    failure = failure_of(e);
  }
  co_return std::move(*failure);
}

asio::awaitable<void> Download::hand_over(std::span<const char> bytes) {
  if (!worker_) {
    state_->sink.write(bytes);
    co_return;
  }
  co_await wait_for_piece();
  auto piece = std::make_shared<std::vector<char>>(std::move(state_->spare));
  piece->assign(bytes.begin(), bytes.end());
  state_->busy = true;
  asio::post(*worker_, [state = state_, piece]() mutable {
    std::exception_ptr failure;
    try {
      state->sink.write(*piece);  // the loop does not touch the sink while busy
    } catch (...) {
      failure = std::current_exception();
    }
    auto loop = state->piece_done.get_executor();
    asio::post(loop, [state = std::move(state), piece = std::move(piece), failure] {
      state->busy = false;
      state->failure = failure;
      state->spare = std::move(*piece);
      state->piece_done.cancel();
    });
  });
}

asio::awaitable<Published> Download::publish_or_throw() {
  co_await wait_for_piece();
  std::optional<Published> published;
  std::exception_ptr failure;
  auto state = state_;
  // fsync of a large file can take seconds: off the event loop, so other jobs' timers stay on time.
  co_await run_blocking(worker_, [&] {
    try {
      published = state->sink.publish();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  if (failure) std::rethrow_exception(failure);
  co_return *published;
}

}  // namespace apsis::sink
