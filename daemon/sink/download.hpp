// One download attempt's destination: a staged file, hashed as it is written and, for gzip, checked
// to the last trailer byte. Either publish() makes a complete file visible, or destruction leaves nothing.
//
// With a worker pool, each piece is written, hashed and checked on the worker while the event loop
// reads the next one (SHA-256 alone runs at ~270 MB/s on a core without SHA extensions); one piece at
// most is in flight, so memory does not grow with the file.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sink/gzip_check.hpp"
#include "sink/sink_failure.hpp"
#include "sink/sha256.hpp"
#include "sink/staged_file.hpp"

namespace apsis::sink {

struct Published {
  std::filesystem::path path;
  std::uint64_t bytes{0};
  std::string sha256;
};

class Download {
 public:
  // `worker` null: everything happens inline on the caller's thread. The file is published under
  // `final_path`, or the first of `alternatives` that is free when another file holds it (never
  // replaced). Without `may_be_empty`, empty content (an empty body, or a gzip stream of nothing) is
  // refused at publish().
  Download(boost::asio::any_io_executor loop, std::filesystem::path final_path, bool verify_gzip,
           boost::asio::thread_pool* worker, std::vector<std::filesystem::path> alternatives = {},
           bool may_be_empty = true);
  ~Download();
  Download(const Download&) = delete;
  Download& operator=(const Download&) = delete;

  // Takes a copy of `bytes`. Waits for the previous piece first, and returns its failure (disk
  // full...) as an io SinkFailure.
  boost::asio::awaitable<Result<void, SinkFailure>> write(std::span<const char> bytes);
  // Returns an unverified SinkFailure (the file is then discarded) if the gzip stream is incomplete
  // or corrupt or the content is empty when it must not be, an io one if the last piece failed or the
  // file cannot be made durable or put in place. Throws only for cancellation (shutdown).
  boost::asio::awaitable<Result<Published, SinkFailure>> publish();

 private:
  // Touched by one thread at a time: the worker while a piece is in flight, else the event loop.
  struct Sink {
    Sink(std::filesystem::path final_path, bool verify_gzip, std::vector<std::filesystem::path> alternatives,
         bool may_be_empty);
    void write(std::span<const char> bytes);
    Published publish();
    StagedFile file;
    std::vector<std::filesystem::path> alternatives;
    bool may_be_empty;
    Sha256 hash;
    std::optional<GzipCheck> gzip;
  };

  // Shared with a piece in flight, which may outlive an abandoned download; its last owner (always a
  // handler on the event loop, or the Download) destroys the sink, which removes an unpublished file.
  struct State {
    State(boost::asio::any_io_executor loop, std::filesystem::path final_path, bool verify_gzip,
          std::vector<std::filesystem::path> alternatives, bool may_be_empty);
    Sink sink;
    std::vector<char> spare;  // the buffer of the last finished piece, reused for the next
    bool busy{false};
    std::exception_ptr failure;
    boost::asio::steady_timer piece_done;  // cancelled when the piece in flight ends
  };

  boost::asio::awaitable<void> wait_for_piece();
  boost::asio::awaitable<void> hand_over(std::span<const char> bytes);
  boost::asio::awaitable<Published> publish_or_throw();

  boost::asio::thread_pool* worker_;
  std::shared_ptr<State> state_;
};

}  // namespace apsis::sink
