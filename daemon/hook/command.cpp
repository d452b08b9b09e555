#include "hook/command.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
// glibc 2.36's <sys/pidfd.h> lacks the extern "C" its other headers have (fixed in 2.37).
extern "C" {
#include <sys/pidfd.h>
}
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

#include "util/duration.hpp"
#include "util/time.hpp"

namespace apsis::hook {
namespace {

namespace asio = boost::asio;
using asio::posix::stream_descriptor;
using boost::system::error_code;
using boost::system::system_error;

constexpr std::size_t kTailBytes = 4096;
constexpr std::size_t kLastLineBytes = 200;
constexpr std::chrono::milliseconds kOutputLinger{1000};  // for output still held open after the exit  // of the output, in describe(): one log line, not a page

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw system_error(error_code(error, boost::system::system_category()), what);
}

void check(int posix_spawn_result, const char* what) {
  if (posix_spawn_result != 0) throw_errno(posix_spawn_result, what);
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(release());
  }

 private:
  int fd_;
};

// Registers `fd` with the event loop; the descriptor owns it from then on, and until then `fd` does.
stream_descriptor adopt(const asio::any_io_executor& executor, UniqueFd fd, const char* what) {
  stream_descriptor descriptor(executor);
  error_code ec;
  descriptor.assign(fd.get(), ec);
  if (ec) throw system_error(ec, what);
  fd.release();
  return descriptor;
}

struct OutputPipe {
  stream_descriptor read_end;
  UniqueFd write_end;
};

// Close-on-exec on both ends: the child gets the write end only through its dup2 onto 1 and 2,
// and no other command started meanwhile inherits either end (which would hold our EOF back).
OutputPipe open_output_pipe(const asio::any_io_executor& executor) {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) throw_errno(errno, "creating the command's output pipe");
  UniqueFd write_end(fds[1]);
  return {adopt(executor, UniqueFd(fds[0]), "watching the command's output"), UniqueFd(write_end.release())};
}

std::vector<std::string> environment_with(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> environment;
  for (char** entry = ::environ; *entry != nullptr; ++entry) {
    const std::string_view variable(*entry);
    if (!extra.contains(std::string(variable.substr(0, variable.find('='))))) environment.emplace_back(variable);
  }
  for (const auto& [name, value] : extra) {
    if (name.empty() || name.find('=') != std::string::npos)
      throw std::invalid_argument("environment variable name '" + name + "' is empty or contains '='");
    environment.push_back(name + "=" + value);
  }
  return environment;
}

// The char* arrays exec wants; they point into `strings`, which must outlive them.
std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

// What the child does between its birth and exec, in order. The pipe is dup'ed before stdin is
// opened: a daemon started with 0, 1 or 2 closed may have been given one of them as the pipe.
class ChildFileActions {
 public:
  explicit ChildFileActions(int output_fd) {
    check(::posix_spawn_file_actions_init(&actions_), "posix_spawn_file_actions_init");
    try {
      check(::posix_spawn_file_actions_adddup2(&actions_, output_fd, STDOUT_FILENO), "redirecting stdout");
      check(::posix_spawn_file_actions_adddup2(&actions_, output_fd, STDERR_FILENO), "redirecting stderr");
      check(::posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null", O_RDONLY, 0), "redirecting stdin");
      // Not every descriptor of the daemon is close-on-exec (Asio opens sockets without it):
      // closing the rest in the child is what guarantees it holds 0, 1 and 2 only.
      check(::posix_spawn_file_actions_addclosefrom_np(&actions_, STDERR_FILENO + 1), "closing descriptors");
    } catch (...) {
      ::posix_spawn_file_actions_destroy(&actions_);
      throw;
    }
  }
  ChildFileActions(const ChildFileActions&) = delete;
  ChildFileActions& operator=(const ChildFileActions&) = delete;
  ~ChildFileActions() { ::posix_spawn_file_actions_destroy(&actions_); }
  const posix_spawn_file_actions_t* get() const { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

// A new process group, so the timeout reaches grandchildren too; an empty signal mask and default
// dispositions for every signal, so the child does not inherit the daemon's blocked or ignored ones
// (exec alone resets only handled signals).
class ChildAttributes {
 public:
  ChildAttributes() {
    check(::posix_spawnattr_init(&attributes_), "posix_spawnattr_init");
    sigset_t none;
    sigset_t all;
    ::sigemptyset(&none);
    ::sigfillset(&all);
    ::posix_spawnattr_setsigmask(&attributes_, &none);
    ::posix_spawnattr_setsigdefault(&attributes_, &all);
    ::posix_spawnattr_setpgroup(&attributes_, 0);
    ::posix_spawnattr_setflags(&attributes_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  ChildAttributes(const ChildAttributes&) = delete;
  ChildAttributes& operator=(const ChildAttributes&) = delete;
  ~ChildAttributes() { ::posix_spawnattr_destroy(&attributes_); }
  const posix_spawnattr_t* get() const { return &attributes_; }

 private:
  posix_spawnattr_t attributes_;
};

struct SpawnOutcome {
  pid_t pid = -1;
  int error = 0;  // errno of the failed start, 0 when the child runs
};

// posix_spawnp, not fork: glibc clones with CLONE_VM|CLONE_VFORK, so no copy of the daemon's page
// tables, and it hands the child's exec errno back as its return value (glibc >= 2.24, after reaping
// that child), so "no such file" and "permission denied" arrive here as errors, never as an exit 127
// to guess about. The PATH searched is the daemon's, not `environment`'s.
SpawnOutcome spawn(std::vector<std::string> argv, std::vector<std::string> environment, int output_fd) {
  const ChildFileActions actions(output_fd);
  const ChildAttributes attributes;
  const auto argv_pointers = c_strings(argv);
  const auto environment_pointers = c_strings(environment);
  SpawnOutcome outcome;
  outcome.error = ::posix_spawnp(&outcome.pid, argv.front().c_str(), actions.get(), attributes.get(),
                                 argv_pointers.data(), environment_pointers.data());
  return outcome;
}

// A started child, leader of its own process group, until reaped. Its exit is observed through a
// pidfd (no SIGCHLD handler), and it is reaped only at the very end: the unreaped leader keeps its
// pid, and so the group id, from being reused while we may still signal the group.
class ChildProcess {
 public:
  ChildProcess(const asio::any_io_executor& executor, pid_t pid) : pid_(pid), exit_(executor) {
    try {
      const int pidfd = ::pidfd_open(pid, 0);
      if (pidfd < 0) throw_errno(errno, "pidfd_open");
      exit_ = adopt(executor, UniqueFd(pidfd), "watching the command's process");
    } catch (...) {
      kill_and_reap();
      throw;
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // A child must not outlive its awaiting coroutine (shutdown, an exception). The blocking wait
  // after SIGKILL lasts as long as the kernel takes to tear the process down.
  ~ChildProcess() {
    if (!reaped_) kill_and_reap();
  }

  // The child itself too, should it have moved to another group: the SIGKILL before a blocking
  // reap must reach it.
  void signal_group(int signal) const {
    if (::kill(-pid_, signal) != 0) ::kill(pid_, signal);
  }

  // An exit while nothing waited is not missed: Asio re-arms the descriptor (EPOLL_CTL_MOD) when
  // a wait starts, and the kernel then reports the pidfd's readiness again.
  asio::awaitable<void> wait_for_exit() {
    co_await exit_.async_wait(stream_descriptor::wait_read, asio::use_awaitable);
  }

  // Call once it has exited.
  int reap() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return status;
  }

 private:
  void kill_and_reap() {
    signal_group(SIGKILL);
    reap();
  }

  pid_t pid_;
  stream_descriptor exit_;
  bool reaped_ = false;
};

// The last kTailBytes of everything read; the cut never starts inside a UTF-8 sequence.
class OutputTail {
 public:
  void append(std::string_view bytes) {
    text_.append(bytes);
    if (text_.size() <= kTailBytes) return;
    std::size_t cut = text_.size() - kTailBytes;
    while (cut < text_.size() && (static_cast<unsigned char>(text_[cut]) & 0xC0) == 0x80) ++cut;
    text_.erase(0, cut);
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Reads as fast as the child writes: a chatty child never blocks on a full pipe.
asio::awaitable<void> read_to_end(stream_descriptor& output, OutputTail& tail) {
  std::array<char, 64 * 1024> buffer;  // a Linux pipe's default capacity: one read empties it
  for (;;) {
    auto [ec, n] = co_await output.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
    tail.append(std::string_view(buffer.data(), n));
    if (ec == asio::error::eof) co_return;
    if (ec) throw system_error(ec, "reading the command's output");
  }
}

// Whether `work` completes before `limit` passes; when the limit wins, `work` is cancelled. A
// cancellation of the awaiting coroutine ends both and surfaces as operation_aborted, as callers
// expect (Boost 1.81's awaitable_operators `||` would wrap it in multiple_exceptions).
asio::awaitable<bool> completes_within(asio::awaitable<void> work, Milliseconds limit) {
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer deadline(executor, limit);
  auto [order, work_error, deadline_error] =
      co_await asio::experimental::make_parallel_group(asio::co_spawn(executor, std::move(work), asio::deferred),
                                                       deadline.async_wait(asio::deferred))
          .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  if (order[0] == 0) {
    if (work_error) std::rethrow_exception(work_error);
    co_return true;
  }
  if (deadline_error) throw system_error(deadline_error, "waiting for the command");
  co_return false;
}

// The command is its main process: its exit (or the timeout) ends the command. Its output is read
// all along, and after the exit until every writer has closed it, for at most kOutputLinger; then what
// it left running in its process group (`sleep 100 &`) gets SIGKILL, and output held open by a
// process outside the group (setsid) is no longer waited for.
class RunningCommand {
 public:
  RunningCommand(ChildProcess& child, stream_descriptor& output, OutputTail& tail)
      : child_(child), output_(output), tail_(tail), linger_(output.get_executor()) {}

  // Returns whether the timeout struck.
  asio::awaitable<bool> run(Milliseconds timeout, Milliseconds kill_grace) {
    const auto executor = co_await asio::this_coro::executor;
    auto [order, read_error, end_error] =
        co_await asio::experimental::make_parallel_group(
            asio::co_spawn(executor, read_output(), asio::deferred),
            asio::co_spawn(executor, end(timeout, kill_grace), asio::deferred))
            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    (void)order;
    if (end_error) std::rethrow_exception(end_error);
    if (read_error) std::rethrow_exception(read_error);
    co_return timed_out_;
  }

  bool killed_leftovers() const { return killed_leftovers_; }

 private:
  asio::awaitable<void> read_output() {
    try {
      co_await read_to_end(output_, tail_);
    } catch (const system_error& e) {
      if (e.code() != asio::error::operation_aborted || !killed_leftovers_) throw;
      co_return;  // end() stopped waiting for a leftover's output
    }
    output_closed_ = true;
    linger_.cancel();
  }

  // After SIGKILL only the leader's exit is awaited: a descendant that left the group (setsid) may
  // hold the output open forever.
  asio::awaitable<void> end(Milliseconds timeout, Milliseconds kill_grace) {
    const bool in_time = co_await completes_within(child_.wait_for_exit(), timeout);
    if (!in_time) {
      timed_out_ = true;
      child_.signal_group(SIGTERM);
      const bool within_grace = co_await completes_within(child_.wait_for_exit(), kill_grace);
      if (!within_grace) {
        child_.signal_group(SIGKILL);
        co_await child_.wait_for_exit();
      }
    }
    if (!output_closed_) {
      linger_.expires_after(kOutputLinger);
      co_await linger_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    // Whatever it left in its group goes with it. The leader is not reaped yet: the group id is still ours.
    child_.signal_group(SIGKILL);
    if (output_closed_) co_return;
    killed_leftovers_ = true;
    output_.cancel();
  }

  ChildProcess& child_;
  stream_descriptor& output_;
  OutputTail& tail_;
  asio::steady_timer linger_;
  bool output_closed_ = false;
  bool timed_out_ = false;
  bool killed_leftovers_ = false;
};

void record_status(int wait_status, CommandResult& result) {
  if (WIFEXITED(wait_status)) result.exit_code = WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) result.signal = WTERMSIG(wait_status);
}

std::string signal_name(int signal) {
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation ? std::string("SIG") + abbreviation : "signal " + std::to_string(signal);
}

std::string seconds(Milliseconds duration) {
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%.1f s", static_cast<double>(duration.count()) / 1000.0);
  return text.data();
}

// The output's last non-empty line, fit for a log line: control characters blanked, length capped.
std::string last_line(std::string_view output) {
  const auto end = output.find_last_not_of(" \t\r\n");
  if (end == std::string_view::npos) return "";
  output = output.substr(0, end + 1);
  const auto newline = output.rfind('\n');
  std::string line(newline == std::string_view::npos ? output : output.substr(newline + 1));
  if (line.size() > kLastLineBytes) {
    std::size_t cut = kLastLineBytes;
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    line = line.substr(0, cut) + "…";
  }
  for (char& c : line)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  return line;
}

}  // namespace

bool CommandResult::succeeded() const { return !start_error && !timed_out && exit_code == 0; }

std::string CommandResult::describe() const {
  if (start_error) return *start_error;
  const std::string exit = "exit " + std::to_string(exit_code.value_or(-1));
  std::string text;
  if (timed_out && signal)
    text = "killed after the " + format_duration(timeout) + " timeout" + (signal == SIGKILL ? " (SIGKILL)" : "");
  else if (timed_out)  // it exited on SIGTERM with a code of its own, or a descendant held its output open
    text = "stopped after the " + format_duration(timeout) + " timeout (" + exit + ")";
  else if (signal)
    text = "killed by " + signal_name(*signal) + " after " + seconds(duration);
  else
    text = exit + " after " + seconds(duration);
  if (killed_leftovers && !timed_out) text += " (processes it left behind held its output open: killed)";
  if (!succeeded())
    if (const auto line = last_line(output_tail); !line.empty()) text += ": " + line;
  return text;
}

boost::asio::awaitable<CommandResult> run_command(std::vector<std::string> argv,
                                                  std::map<std::string, std::string> extra_env,
                                                  std::chrono::milliseconds timeout,
                                                  std::chrono::milliseconds kill_grace) {
  if (argv.empty()) throw std::invalid_argument("run_command: no program given");
  const auto started = std::chrono::steady_clock::now();
  const auto executor = co_await asio::this_coro::executor;
  CommandResult result;
  result.timeout = timeout;

  auto pipe = open_output_pipe(executor);
  const auto spawned = spawn(argv, environment_with(extra_env), pipe.write_end.get());
  pipe.write_end.reset();  // the child's copies are the only writers left: their closing is our EOF
  if (spawned.error != 0) {
    result.start_error = "could not start '" + argv.front() + "': " + std::system_category().message(spawned.error);
  } else {
    ChildProcess child(executor, spawned.pid);
    OutputTail tail;
    RunningCommand command(child, pipe.read_end, tail);
    result.timed_out = co_await command.run(timeout, kill_grace);
    result.killed_leftovers = command.killed_leftovers();
    record_status(child.reap(), result);
    result.output_tail = tail.text();
  }
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  co_return result;
}

}  // namespace apsis::hook
