#include "sink/staged_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <system_error>

#include "util/directories.hpp"

namespace apsis::sink {
namespace {

[[noreturn]] void throw_errno(const std::string& what, const std::filesystem::path& path) {
  throw std::system_error(errno, std::generic_category(), what + " " + path.string());
}

std::string random_suffix() {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::uniform_int_distribution<int> pick(0, sizeof alphabet - 2);
  std::string out(10, 'x');
  for (auto& c : out) c = alphabet[pick(device)];
  return out;
}

void fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory", dir);
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) throw_errno("cannot fsync directory", dir);
}

}  // namespace

StagedFile::StagedFile(std::filesystem::path final_path) : final_path_(std::move(final_path)) {
  const auto dir = final_path_.parent_path();
  apsis::create_directories(dir, 0750);  // like the files: the owner writes, a loader's group may read
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    temp_path_ = dir / (std::string(kTempPrefix) + final_path_.filename().string() + "-" + random_suffix());
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd_ < 0 && errno != EEXIST) throw_errno("cannot create", temp_path_);
  }
  if (fd_ < 0) throw_errno("cannot create a temporary file in", dir);
}

StagedFile::~StagedFile() {
  if (!published_) discard();
}

void StagedFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void StagedFile::write(std::span<const char> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", temp_path_);
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
    bytes_written_ += static_cast<std::uint64_t>(n);
  }
}

void StagedFile::publish() {
  if (::fsync(fd_) != 0) {
    const int saved = errno;
    discard();
    errno = saved;
    throw_errno("cannot fsync", temp_path_);
  }
  if (::close(fd_) != 0) {
    fd_ = -1;
    const int saved = errno;
    discard();
    errno = saved;
    throw_errno("cannot close", temp_path_);
  }
  fd_ = -1;
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    const int saved = errno;
    discard();
    errno = saved;
    throw_errno("cannot rename into place", final_path_);
  }
  published_ = true;
  fsync_directory(final_path_.parent_path());
}

int remove_orphaned_temp_files(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return 0;
  int removed = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != decltype(it){}; it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().filename().string().starts_with(kTempPrefix)) {
      std::filesystem::remove(it->path(), ec);
      if (!ec) ++removed;
    }
  }
  return removed;
}

}  // namespace apsis::sink
