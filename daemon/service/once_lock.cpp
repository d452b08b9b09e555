#include "service/once_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <system_error>

namespace apsis::service {
namespace {

std::filesystem::path lock_path(const std::filesystem::path& state_db, std::int64_t job_id) {
  auto path = state_db;
  path += ".once-" + std::to_string(job_id) + ".lock";
  return path;
}

// The file is still the one at `path`: a process that locked it after another removed it holds a
// lock nobody else can see, and must not trust it.
bool still_linked(int fd, const std::filesystem::path& path) {
  struct stat open_file {};
  struct stat named {};
  return ::fstat(fd, &open_file) == 0 && ::stat(path.c_str(), &named) == 0 && open_file.st_dev == named.st_dev &&
         open_file.st_ino == named.st_ino;
}

enum class Attempt { locked, held_elsewhere, missing };

// Opens an existing lock file and tries to lock it without waiting.
Attempt try_lock(const std::filesystem::path& path, int& fd) {
  // Read-only: flock needs no more, and a daemon running as another user may still look.
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return Attempt::missing;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    fd = -1;
    return Attempt::held_elsewhere;
  }
  if (!still_linked(fd, path)) {
    ::close(fd);
    fd = -1;
    return Attempt::missing;
  }
  return Attempt::locked;
}

}  // namespace

OnceLock OnceLock::create(const std::filesystem::path& state_db, std::int64_t job_id) {
  auto path = lock_path(state_db, job_id);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create " + path.string());
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int saved = errno;
    ::close(fd);
    throw std::system_error(saved, std::generic_category(), "cannot lock " + path.string());
  }
  const std::string pid = std::to_string(::getpid()) + "\n";  // for a person looking: who holds it
  if (::ftruncate(fd, 0) != 0 || ::write(fd, pid.data(), pid.size()) < 0) {
    // Only informative: the lock is what counts.
  }
  return OnceLock(std::move(path), fd);
}

std::optional<OnceLock> OnceLock::take_abandoned(const std::filesystem::path& state_db, std::int64_t job_id) {
  auto path = lock_path(state_db, job_id);
  int fd = -1;
  if (try_lock(path, fd) != Attempt::locked) return std::nullopt;
  return OnceLock(std::move(path), fd);
}

OnceLock::Owner OnceLock::owner(const std::filesystem::path& state_db, std::int64_t job_id) {
  int fd = -1;
  switch (try_lock(lock_path(state_db, job_id), fd)) {
    case Attempt::missing: return Owner::none;
    case Attempt::held_elsewhere: return Owner::alive;
    case Attempt::locked: break;
  }
  ::close(fd);
  return Owner::gone;
}

OnceLock::OnceLock(OnceLock&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) { other.fd_ = -1; }

OnceLock::~OnceLock() {
  if (fd_ >= 0) ::close(fd_);
}

void OnceLock::remove() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // while still locked: whoever opens it next finds it gone
  ::close(fd_);
  fd_ = -1;
}

bool OnceLock::named_holder_may_live(const std::filesystem::path& state_db, std::int64_t job_id) {
  std::ifstream file(lock_path(state_db, job_id));
  long long pid = 0;
  if (!(file >> pid) || pid <= 0) return true;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

std::vector<std::int64_t> OnceLock::jobs_with_lock_files(const std::filesystem::path& state_db) {
  const auto prefix = state_db.filename().string() + ".once-";
  const std::string suffix = ".lock";
  std::vector<std::int64_t> ids;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(state_db.parent_path(), error)) {
    const auto name = entry.path().filename().string();
    if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix)) continue;
    const auto digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    ids.push_back(std::stoll(digits));
  }
  return ids;
}

}  // namespace apsis::service
