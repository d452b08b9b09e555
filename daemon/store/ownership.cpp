#include "store/ownership.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <sstream>
#include <system_error>
#include <thread>

#include "util/directories.hpp"

namespace apsis::store {
namespace {

std::filesystem::path lock_path(const std::filesystem::path& state_db) {
  auto path = state_db;
  path += ".lock";
  return path;
}

std::system_error os_error(const std::string& what, const std::filesystem::path& path) {
  return std::system_error(errno, std::generic_category(), what + " " + path.string());
}

// What the holder wrote: "pid 1234\nstarted 2026-01-02T03:04:05.000Z\n".
ServiceHolder read_holder(int fd) {
  std::array<char, 256> buffer{};
  const auto n = ::pread(fd, buffer.data(), buffer.size() - 1, 0);
  ServiceHolder holder;
  if (n <= 0) return holder;
  std::istringstream text(std::string(buffer.data(), static_cast<std::size_t>(n)));
  for (std::string key; text >> key;) {
    if (key == "pid")
      text >> holder.pid;
    else if (key == "started")
      text >> holder.started;
  }
  return holder;
}

std::string describe(const std::filesystem::path& lock_file, const ServiceHolder& holder) {
  std::string text = "another `apsis-exportd run` owns this state database: " + lock_file.string() + " is locked by ";
  text += holder.pid > 0 ? "pid " + std::to_string(holder.pid) : std::string("a process that has not said who it is");
  if (!holder.started.empty()) text += " (started " + holder.started + ")";
  return text;
}

}  // namespace

ServiceRunning::ServiceRunning(std::filesystem::path lock_file, ServiceHolder holder)
    : std::runtime_error(describe(lock_file, holder)), lock_file_(std::move(lock_file)), holder_(std::move(holder)) {}

ServiceOwnership::ServiceOwnership(ServiceOwnership&& other) noexcept
    : lock_file_(std::move(other.lock_file_)), fd_(other.fd_) {
  other.fd_ = -1;
}

// The file stays: removing it would let a process that opened it before the unlink lock a file
// nobody else can see.
ServiceOwnership::~ServiceOwnership() {
  if (fd_ >= 0) ::close(fd_);
}

ServiceOwnership acquire_service_ownership(const std::filesystem::path& state_db, TimePoint now) {
  if (state_db.has_parent_path()) apsis::create_directories(state_db.parent_path(), 0700);
  auto path = lock_path(state_db);
  // Readable by all: a `once` running as another user must be able to see that a service runs.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) throw os_error("cannot open", path);
  // A `once` looking (service_owner) holds a shared lock for microseconds: a few tries tell it from
  // a service, which holds it for its life.
  constexpr int kTries = 20;
  for (int attempt = 1; ::flock(fd, LOCK_EX | LOCK_NB) != 0; ++attempt) {
    if (errno != EWOULDBLOCK || attempt == kTries) {
      const int saved = errno;
      auto holder = read_holder(fd);
      ::close(fd);
      if (saved != EWOULDBLOCK) throw std::system_error(saved, std::generic_category(), "cannot lock " + path.string());
      throw ServiceRunning(std::move(path), std::move(holder));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string text = "pid " + std::to_string(::getpid()) + "\nstarted " + format_iso8601(now) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    // Only what messages say: the lock is what counts. A full disk is reported by the job table soon.
  }
  return ServiceOwnership(std::move(path), fd);
}

std::optional<ServiceHolder> service_owner(const std::filesystem::path& state_db) {
  const auto path = lock_path(state_db);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;  // no service has ever run on this database
    throw os_error("cannot tell whether a service runs: cannot open", path);
  }
  std::optional<ServiceHolder> holder;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      const auto error = os_error("cannot tell whether a service runs: cannot lock", path);
      ::close(fd);
      throw error;
    }
    holder = read_holder(fd);
  }
  ::close(fd);  // also releases the shared lock taken when nobody held it
  return holder;
}

}  // namespace apsis::store
