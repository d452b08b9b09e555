#include "util/journal.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace apsis {
namespace {

std::error_code last_error() { return {errno, std::system_category()}; }

void append_le64(std::string& out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

sockaddr_un address_of(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const auto& text = path.native();
  if (text.empty() || text.size() >= sizeof(address.sun_path))
    throw std::invalid_argument("journal socket path '" + text + "' does not fit a unix socket address (at most " +
                                std::to_string(sizeof(address.sun_path) - 1) + " bytes)");
  std::memcpy(address.sun_path, text.data(), text.size());
  return address;
}

// Closes a descriptor at scope exit.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::error_code write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const auto written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return {};
}

}  // namespace

std::string encode_journal_entry(const JournalFields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    out += name;
    if (value.find('\n') == std::string::npos) {
      out += '=';
      out += value;
    } else {
      out += '\n';
      append_le64(out, value.size());
      out += value;
    }
    out += '\n';
  }
  return out;
}

JournalSender::JournalSender(std::filesystem::path socket_path) : path_(std::move(socket_path)) {
  address_of(path_);  // a path that can never be sent to is an error now, not at every line
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::system_error(last_error(), "journal socket");
  const auto timeout_us = std::chrono::duration_cast<std::chrono::microseconds>(kJournalSendTimeout).count();
  const timeval timeout{static_cast<time_t>(timeout_us / 1'000'000), static_cast<suseconds_t>(timeout_us % 1'000'000)};
  if (::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) != 0) {
    const auto error = last_error();
    ::close(fd_);
    throw std::system_error(error, "journal socket send timeout");
  }
}

JournalSender::~JournalSender() {
  if (fd_ >= 0) ::close(fd_);
}

JournalSender::JournalSender(JournalSender&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

JournalSender& JournalSender::operator=(JournalSender&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

std::error_code JournalSender::send(std::string_view entry) const {
  const auto error = send_datagram(entry);
  if (error == std::errc::message_size || error == std::errc::no_buffer_space) return send_as_memfd(entry);
  return error;
}

std::error_code JournalSender::send_datagram(std::string_view entry) const {
  auto address = address_of(path_);
  iovec part{const_cast<char*>(entry.data()), entry.size()};
  msghdr message{};
  message.msg_name = &address;
  message.msg_namelen = sizeof(address);
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  while (::sendmsg(fd_, &message, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) return last_error();
  }
  return {};
}

std::error_code JournalSender::send_as_memfd(std::string_view entry) const {
  const ScopedFd memory(::memfd_create("apsis-exportd-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (memory.get() < 0) return last_error();
  if (const auto error = write_all(memory.get(), entry)) return error;
  // journald accepts only a sealed memfd: the contents cannot change after it has read them.
  if (::fcntl(memory.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    return last_error();

  auto address = address_of(path_);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  msghdr message{};
  message.msg_name = &address;
  message.msg_namelen = sizeof(address);
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  const int passed = memory.get();
  std::memcpy(CMSG_DATA(header), &passed, sizeof(int));
  while (::sendmsg(fd_, &message, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) return last_error();
  }
  return {};
}

bool is_journal_stream(std::string_view journal_stream, int fd) {
  const auto colon = journal_stream.find(':');
  if (colon == std::string_view::npos) return false;
  const auto parse = [](std::string_view text, std::uint64_t& value) {
    const auto* end = text.data() + text.size();
    const auto [stopped, error] = std::from_chars(text.data(), end, value);
    return !text.empty() && error == std::errc() && stopped == end;
  };
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  if (!parse(journal_stream.substr(0, colon), device) || !parse(journal_stream.substr(colon + 1), inode)) return false;
  struct stat status {};
  if (::fstat(fd, &status) != 0) return false;
  return static_cast<std::uint64_t>(status.st_dev) == device && static_cast<std::uint64_t>(status.st_ino) == inode;
}

}  // namespace apsis
