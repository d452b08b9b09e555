// journald's native protocol (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/), written here rather than
// taken from libsystemd because sd_journal_send's socket path is fixed and a test must point the sender
// at a socket of its own.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace apsis {

// One entry's fields in order, e.g. {"MESSAGE", "..."}, {"PRIORITY", "6"}. Names are upper-case
// letters, digits and underscores (journald drops other fields), not starting with an underscore.
using JournalFields = std::vector<std::pair<std::string, std::string>>;

// The native serialization: `NAME=value\n`, or, for a value with a newline in it,
// `NAME\n` + its length as a little-endian 64-bit integer + the bytes + `\n`.
std::string encode_journal_entry(const JournalFields& fields);

inline constexpr std::string_view kJournalSocket = "/run/systemd/journal/socket";
inline constexpr std::chrono::milliseconds kJournalSendTimeout{500};

// An unbound AF_UNIX datagram socket that sends entries to `socket_path`. Thread-safe: each send is one
// sendmsg(2). A send waits while journald's queue is full, as sd_journal_send does (the queue holds only
// net.unix.max_dgram_qlen datagrams, so a burst of lines would otherwise lose their fields), but at most
// kJournalSendTimeout: a wedged journald costs that per entry, then the caller hears EAGAIN and writes
// the line to stderr (where it would have waited as long before there was a journal sender).
class JournalSender {
 public:
  // Throws std::system_error when no socket can be made, std::invalid_argument when the path does not
  // fit a sockaddr_un.
  explicit JournalSender(std::filesystem::path socket_path = std::filesystem::path(kJournalSocket));
  ~JournalSender();
  JournalSender(JournalSender&& other) noexcept;
  JournalSender& operator=(JournalSender&& other) noexcept;
  JournalSender(const JournalSender&) = delete;
  JournalSender& operator=(const JournalSender&) = delete;

  // Sends one encoded entry: as a datagram, or, when it is larger than a datagram may be (EMSGSIZE,
  // ENOBUFS), as a sealed memfd passed with SCM_RIGHTS in an empty datagram, as journald expects.
  // Returns what failed; the entry was not delivered then.
  std::error_code send(std::string_view entry) const;

  const std::filesystem::path& socket_path() const { return path_; }

 private:
  std::error_code send_datagram(std::string_view entry) const;
  std::error_code send_as_memfd(std::string_view entry) const;

  std::filesystem::path path_;
  int fd_{-1};
};

// Whether `fd` is the stream systemd connected to the journal: JOURNAL_STREAM holds "DEVICE:INODE" of
// that stream, and only a match counts. A child that inherited the variable but whose stderr now goes
// to a file or a pipe must not take it for the journal (sd-daemon(3), systemd.exec(5)).
bool is_journal_stream(std::string_view journal_stream, int fd);

}  // namespace apsis
