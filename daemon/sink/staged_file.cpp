#include "sink/staged_file.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "sink/sink_failure.hpp"
#include "util/directories.hpp"
#include "util/fault_injection.hpp"

namespace apsis::sink {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void throw_errno(const std::string& what, const fs::path& path) { throw IoError(errno, what, path); }

std::string random_suffix() {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::uniform_int_distribution<int> pick(0, sizeof alphabet - 2);
  std::string out(10, 'x');
  for (auto& c : out) c = alphabet[pick(device)];
  return out;
}

void fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory", dir);
  const int rc = fault::inject("fsync directory", dir.native()) ? fault::failed_call(EIO) : ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) throw_errno("cannot fsync directory", dir);
}

// 0, or the errno: EEXIST when `to` exists, whatever the file system (NFS included).
int move_without_replacing(const fs::path& from, const fs::path& to) {
  const int rc = fault::inject("rename", to.native())
                     ? fault::failed_call(EIO)
                     : ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE);
  if (rc == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return errno;
  if (::link(from.c_str(), to.c_str()) != 0) return errno;
  ::unlink(from.c_str());  // should it fail, a second name of a complete file remains, removed at a restart
  return 0;
}

bool is_host_character(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_';
}

std::string this_host() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  std::string host(name);
  for (char& c : host)
    if (!is_host_character(c)) c = '_';
  return host;
}

template <typename Number>
std::optional<Number> parse_number(std::string_view text) {
  Number value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// The part after the last '-' of `rest`, which then ends before it.
std::string_view take_last_field(std::string_view& rest) {
  const auto dash = rest.rfind('-');
  if (dash == std::string_view::npos) {
    rest = {};
    return {};
  }
  const auto field = rest.substr(dash + 1);
  rest = rest.substr(0, dash);
  return field;
}

bool owner_is_gone(const TempOwner& owner) {
  if (owner.host != this_process().host) return false;  // its process may run: we cannot know
  return process_start_time(owner.pid) != owner.start_time;
}

bool older_than_a_day(const fs::path& path) {
  std::error_code ec;
  const auto written = fs::last_write_time(path, ec);
  return !ec && fs::file_time_type::clock::now() - written > std::chrono::hours(24);
}

}  // namespace

std::optional<std::uint64_t> process_start_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string stat = buffer.str();
  // "PID (COMM) STATE ..." where COMM may hold spaces and parentheses: fields count from the last ')'.
  const auto comm_end = stat.rfind(')');
  if (comm_end == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(comm_end + 1));
  std::string field;
  for (int number = 3; number <= 22 && (fields >> field); ++number)
    if (number == 22) return parse_number<std::uint64_t>(field);
  return std::nullopt;
}

const TempOwner& this_process() {
  static const TempOwner owner{this_host(), ::getpid(), process_start_time(::getpid()).value_or(0)};
  return owner;
}

std::string temp_file_name(const TempOwner& owner, std::string_view random, std::string_view target_name) {
  const std::string owner_part = "-" + std::to_string(owner.pid) + "-" + std::to_string(owner.start_time) + "-" +
                                 std::string(random) + "@" + owner.host;
  constexpr std::size_t kNameMax = 255;
  const std::size_t room = kNameMax - std::min(kNameMax, kTempPrefix.size() + owner_part.size());
  return std::string(kTempPrefix) + std::string(target_name.substr(0, room)) + owner_part;
}

std::optional<TempOwner> parse_temp_owner(std::string_view file_name) {
  if (!file_name.starts_with(kTempPrefix)) return std::nullopt;
  const auto at = file_name.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  const auto host = file_name.substr(at + 1);
  if (host.empty()) return std::nullopt;
  for (const char c : host)
    if (!is_host_character(c)) return std::nullopt;
  // TARGET-PID-START-RANDOM, read from the right: the target name may hold '-' itself.
  std::string_view rest = file_name.substr(kTempPrefix.size(), at - kTempPrefix.size());
  const auto random = take_last_field(rest);
  const auto start_time = parse_number<std::uint64_t>(take_last_field(rest));
  const auto pid = parse_number<pid_t>(take_last_field(rest));
  if (!pid || *pid <= 0 || !start_time || random.empty()) return std::nullopt;
  return TempOwner{std::string(host), *pid, *start_time};
}

StagedFile::StagedFile(fs::path final_path) : final_path_(std::move(final_path)) {
  const auto dir = final_path_.parent_path();
  apsis::create_directories(dir, 0750);  // like the files: the owner writes, a loader's group may read
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    temp_path_ = dir / temp_file_name(this_process(), random_suffix(), final_path_.filename().string());
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
    const ssize_t n = fault::inject("write", final_path_.native()) ? fault::failed_call(EIO)
                                                                 : ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", temp_path_);
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
    bytes_written_ += static_cast<std::uint64_t>(n);
  }
}

fs::path StagedFile::publish(std::span<const fs::path> alternatives, const SameFile& same_file) {
  if ((fault::inject("fsync", final_path_.native()) ? fault::failed_call(EIO) : ::fsync(fd_)) != 0) {
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
  std::vector<fs::path> names{final_path_};
  names.insert(names.end(), alternatives.begin(), alternatives.end());
  for (const auto& name : names) {
    const int error = move_without_replacing(temp_path_, name);
    if (error == EEXIST && same_file && same_file(name)) {
      discard();  // the very same bytes are in place already
      published_ = true;
      final_path_ = name;
      return final_path_;
    }
    if (error == EEXIST) continue;
    if (error != 0) {
      discard();
      errno = error;
      throw_errno("cannot move into place", name);
    }
    final_path_ = name;
    try {
      fsync_directory(final_path_.parent_path());
    } catch (...) {
      ::unlink(final_path_.c_str());  // its name may not last: lost, like a failed fsync's data
      throw;
    }
    published_ = true;
    return final_path_;
  }
  discard();
  errno = EEXIST;
  throw_errno("cannot publish without replacing another file: every name is taken, the last", names.back());
}

int remove_orphaned_temp_files(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  int removed = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != decltype(it){}; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (!name.starts_with(kTempPrefix) || !it->is_regular_file(ec)) continue;
    const auto owner = parse_temp_owner(name);
    if (owner ? !owner_is_gone(*owner) : !older_than_a_day(it->path())) continue;
    std::error_code remove_error;
    if (fs::remove(it->path(), remove_error)) ++removed;
  }
  return removed;
}

void check_inside(const fs::path& root, const fs::path& dir) {
  std::error_code ec;
  fs::path existing = dir;
  while (!fs::exists(fs::symlink_status(existing, ec))) {
    if (existing == root || !existing.has_relative_path()) return;  // all of it will be made as directories
    existing = existing.parent_path();
  }
  const auto real_root = fs::weakly_canonical(root, ec);
  const auto real = fs::canonical(existing, ec);
  if (ec)
    throw std::runtime_error("refusing to write below " + existing.string() + ": it cannot be resolved (" +
                             ec.message() + "), and a symbolic link may lead outside output_dir " + root.string());
  const auto inside = real.lexically_relative(real_root);
  if (inside.empty() || *inside.begin() == "..")
    throw std::runtime_error("refusing to write below " + existing.string() + ": a symbolic link leads to " +
                             real.string() + ", outside output_dir " + root.string());
}

}  // namespace apsis::sink
