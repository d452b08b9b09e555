// The on_success command runner against real processes: exit codes, output capture, environment,
// PATH lookup, start failures, the timeout's TERM-then-KILL of the whole group, cancellation, and
// what the child does not inherit (signal mask and dispositions, descriptors).
#include <doctest/doctest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <optional>
#include <thread>

#include "hook/command.hpp"
#include "temp_dir.hpp"
#include "util/sleep.hpp"

using apsis::hook::CommandResult;
using apsis::hook::run_command;
using namespace std::chrono_literals;
using Env = std::map<std::string, std::string>;

namespace {

CommandResult run(std::vector<std::string> argv, Env env = {}, std::chrono::milliseconds timeout = 20s,
                  std::chrono::milliseconds kill_grace = 5s) {
  boost::asio::io_context io;
  std::optional<CommandResult> result;
  std::exception_ptr error;
  boost::asio::co_spawn(io, run_command(std::move(argv), std::move(env), timeout, kill_grace),
                        [&](std::exception_ptr e, CommandResult r) {
                          error = e;
                          result = std::move(r);
                        });
  io.run();
  if (error) std::rethrow_exception(error);
  return *result;
}

// Dead means absent or a zombie: an orphaned grandchild is reaped by init, whenever init gets to it.
bool process_gone(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const auto state = stat.rfind(')');
    if (stat.empty() || (state != std::string::npos && stat.substr(state + 2, 1) == "Z")) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

pid_t read_pid(const std::filesystem::path& file) { return static_cast<pid_t>(std::stoi(read_file(file))); }

}  // namespace

TEST_CASE("a command that exits 0 succeeds") {
  const auto result = run({"/bin/true"});
  CHECK(result.exit_code == 0);
  CHECK_FALSE(result.signal);
  CHECK_FALSE(result.timed_out);
  CHECK(result.succeeded());
  CHECK(result.describe().starts_with("exit 0 after "));
  CHECK(result.describe().ends_with(" s"));
}

TEST_CASE("the exit code and both output streams come back, the last line in describe()") {
  const auto result = run({"sh", "-c", "echo hi; echo err >&2; exit 3"});
  CHECK(result.exit_code == 3);
  CHECK_FALSE(result.succeeded());
  CHECK(result.output_tail == "hi\nerr\n");
  CHECK(result.describe().starts_with("exit 3 after "));
  CHECK(result.describe().ends_with(" s: err"));
}

TEST_CASE("the environment is the daemon's plus the extra variables, which win") {
  ::setenv("APSIS_HOOK_TEST_INHERITED", "yes", 1);
  ::setenv("APSIS_HOOK_TEST_OVERRIDDEN", "old", 1);
  const auto result = run({"sh", "-c",
                           "test \"$APSIS_FILE\" = /x/y && test \"$APSIS_HOOK_TEST_INHERITED\" = yes && "
                           "test \"$APSIS_HOOK_TEST_OVERRIDDEN\" = new && "
                           "test \"$(env | grep -c ^APSIS_HOOK_TEST_OVERRIDDEN=)\" = 1"},
                          {{"APSIS_FILE", "/x/y"}, {"APSIS_HOOK_TEST_OVERRIDDEN", "new"}});
  ::unsetenv("APSIS_HOOK_TEST_INHERITED");
  ::unsetenv("APSIS_HOOK_TEST_OVERRIDDEN");
  CHECK(result.exit_code == 0);
}

TEST_CASE("a program name without a slash is looked up in PATH; no shell interprets the arguments") {
  CHECK(run({"true"}).succeeded());
  CHECK(run({"echo", "$HOME", "a;b", "*"}).output_tail == "$HOME a;b *\n");
}

TEST_CASE("a program that cannot be started is a result that says why, not an exception") {
  const auto missing = run({"/no/such"});
  CHECK_FALSE(missing.succeeded());
  CHECK_FALSE(missing.exit_code);
  CHECK(missing.describe() == "could not start '/no/such': No such file or directory");

  CHECK(run({"apsis-no-such-program"}).describe() ==
        "could not start 'apsis-no-such-program': No such file or directory");

  TempDir dir;
  const auto script = dir.path() / "not-executable";
  write_file(script, "#!/bin/sh\n");
  ::chmod(script.c_str(), 0644);
  CHECK(run({script.string()}).describe() == "could not start '" + script.string() + "': Permission denied");

  CHECK_THROWS_AS(run({}), std::invalid_argument);
}

TEST_CASE("stdin is /dev/null and the child runs in its own process group") {
  CHECK(run({"cat"}, {}, 5s).succeeded());
  const auto result = run({"sh", "-c", "echo $$; cut -d' ' -f5 /proc/$$/stat"});
  const auto& out = result.output_tail;
  const auto newline = out.find('\n');
  REQUIRE(newline != std::string::npos);
  CHECK(out.substr(0, newline + 1) == out.substr(newline + 1));
}

TEST_CASE("the command ends with its output: a background grandchild still writing is waited for") {
  const auto result = run({"sh", "-c", "(sleep 0.3; echo late) & echo early"});
  CHECK(result.exit_code == 0);
  CHECK(result.output_tail == "early\nlate\n");
}

TEST_CASE("a signal that kills the command is reported by name") {
  const auto result = run({"sh", "-c", "echo dying; kill -USR1 $$"});
  CHECK(result.signal == SIGUSR1);
  CHECK(result.describe().starts_with("killed by SIGUSR1 after "));
  CHECK(result.describe().ends_with(": dying"));
}

TEST_CASE("at the timeout the whole process group gets SIGTERM") {
  TempDir dir;
  const auto pid_file = dir.path() / "grandchild.pid";
  const auto started = std::chrono::steady_clock::now();
  const auto result = run({"sh", "-c", "sleep 30 & echo $! > \"$PID_FILE\"; wait"}, {{"PID_FILE", pid_file.string()}}, 200ms);
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(result.timed_out);
  CHECK(result.signal == SIGTERM);
  CHECK_FALSE(result.succeeded());
  CHECK(result.duration >= 200ms);
  CHECK(result.duration < 10s);
  CHECK(result.describe() == "killed after the 200ms timeout");
  CHECK(process_gone(read_pid(pid_file)));

  const auto sleeper = run({"sleep", "30"}, {}, 200ms);
  CHECK(sleeper.timed_out);
  CHECK(sleeper.signal == SIGTERM);
}

TEST_CASE("a command that ignores SIGTERM gets SIGKILL after the grace period") {
  const auto result = run({"sh", "-c", "trap '' TERM; echo stubborn; sleep 30"}, {}, 200ms, 300ms);
  CHECK(result.timed_out);
  CHECK(result.signal == SIGKILL);
  CHECK(result.duration >= 500ms);
  CHECK(result.duration < 10s);
  CHECK(result.describe() == "killed after the 200ms timeout (SIGKILL): stubborn");
}

TEST_CASE("a command that exits on SIGTERM with its own code is reported as stopped") {
  const auto result = run({"sh", "-c", "trap 'exit 7' TERM; sleep 30 & wait"}, {}, 200ms);
  CHECK(result.timed_out);
  CHECK(result.exit_code == 7);
  CHECK(result.describe() == "stopped after the 200ms timeout (exit 7)");
}

TEST_CASE("a descendant that left the group and holds the output open cannot stall the command") {
  const auto result = run({"sh", "-c", "setsid sleep 5 & echo started"}, {}, 20s, 200ms);
  CHECK_FALSE(result.timed_out);
  CHECK(result.exit_code == 0);
  CHECK(result.succeeded());
  CHECK(result.output_tail == "started\n");
  CHECK(result.duration < 4s);
}

TEST_CASE("a background child left behind is no timeout: the main process's exit is the result, the child is killed") {
  TempDir dir;
  const auto pid_file = dir.path() / "child.pid";
  const auto result =
      run({"sh", "-c", "sleep 100 & echo $! > \"$PID_FILE\"; echo loaded"}, {{"PID_FILE", pid_file.string()}}, 3s);
  CHECK_FALSE(result.timed_out);
  CHECK(result.exit_code == 0);
  CHECK(result.succeeded());
  CHECK(result.output_tail == "loaded\n");
  CHECK(result.describe().starts_with("exit 0 after "));
  CHECK(process_gone(read_pid(pid_file)));
}

TEST_CASE("a background child that closed its output is killed with the group when the command exits") {
  TempDir dir;
  const auto pid_file = dir.path() / "child.pid";
  const auto result = run({"sh", "-c", "sleep 100 >/dev/null 2>&1 & echo $! > \"$PID_FILE\""},
                          {{"PID_FILE", pid_file.string()}}, 3s);
  CHECK(result.succeeded());
  CHECK(process_gone(read_pid(pid_file)));
}

TEST_CASE("megabytes of output never block the child; only the last 4 KiB are kept") {
  const auto result = run({"sh", "-c", "head -c 2000000 /dev/zero | tr '\\0' x"});
  CHECK(result.exit_code == 0);
  CHECK(result.output_tail == std::string(4096, 'x'));
}

TEST_CASE("the tail is cut at a character boundary and describe() keeps the last line short") {
  // 4096 bytes end the output; the first kept byte would fall inside a two-byte 'é'.
  const auto result = run({"sh", "-c", "printf 'é'; head -c 4095 /dev/zero | tr '\\0' y; exit 1"});
  CHECK(result.output_tail == std::string(4095, 'y'));
  CHECK(result.describe().ends_with(": " + std::string(200, 'y') + "…"));
}

namespace {

// Runs `script` (which writes its pid to $PID_FILE) and cancels it, as the daemon's shutdown does,
// `delay` after the pid file appears; returns how the awaiting coroutine ended and the child's pid.
std::pair<std::exception_ptr, pid_t> cancel_after(const std::string& script, std::chrono::milliseconds delay,
                                                  std::chrono::milliseconds timeout) {
  TempDir dir;
  const auto pid_file = dir.path() / "child.pid";
  boost::asio::io_context io;
  boost::asio::cancellation_signal shutdown;
  std::exception_ptr error;
  bool done = false;
  boost::asio::co_spawn(io, run_command({"sh", "-c", script}, {{"PID_FILE", pid_file.string()}}, timeout),
                        boost::asio::bind_cancellation_slot(shutdown.slot(), [&](std::exception_ptr e, CommandResult) {
                          error = e;
                          done = true;
                        }));
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        while (read_file(pid_file).empty()) co_await apsis::sleep_for(10ms);
        co_await apsis::sleep_for(delay);
        shutdown.emit(boost::asio::cancellation_type::terminal);
      },
      boost::asio::detached);
  const auto started = std::chrono::steady_clock::now();
  io.run();
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(done);
  return {error, read_pid(pid_file)};
}

void check_aborted(const std::exception_ptr& error) {
  REQUIRE(error);
  try {
    std::rethrow_exception(error);
  } catch (const boost::system::system_error& e) {
    CHECK(e.code() == boost::asio::error::operation_aborted);
  }
}

}  // namespace

TEST_CASE("cancelling the awaiting coroutine kills the child, reaps it and ends with operation_aborted") {
  SUBCASE("while it runs") {
    const auto [error, pid] = cancel_after("echo $$ > \"$PID_FILE\"; exec sleep 30", 100ms, 20s);
    check_aborted(error);
    // Reaped, not just killed: the pid no longer exists at all.
    CHECK(::kill(pid, 0) == -1);
    CHECK(errno == ESRCH);
  }
  SUBCASE("during the grace period after the timeout's SIGTERM") {
    const auto [error, pid] = cancel_after("trap '' TERM; echo $$ > \"$PID_FILE\"; exec sleep 30", 400ms, 100ms);
    check_aborted(error);
    CHECK(::kill(pid, 0) == -1);
    CHECK(errno == ESRCH);
  }
}

TEST_CASE("the child gets an empty signal mask, default dispositions and only descriptors 0, 1, 2") {
  sigset_t term;
  sigset_t previous_mask;
  ::sigemptyset(&term);
  ::sigaddset(&term, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &term, &previous_mask);
  const auto previous_pipe = ::signal(SIGPIPE, SIG_IGN);
  const int leaked = ::open("/dev/null", O_RDONLY);  // not close-on-exec, like Asio's sockets

  const auto signals = run({"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"});
  const auto descriptors = run({"sh", "-c", "ls /proc/$$/fd"});

  ::close(leaked);
  ::signal(SIGPIPE, previous_pipe);
  ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  // glibc's posix_spawn leaves its own two internal signals (32, 33) ignored in every child: not ours to reset.
  const auto ignored = signals.output_tail.find("SigIgn:\t");
  REQUIRE(ignored != std::string::npos);
  const auto ignored_mask = std::stoull(signals.output_tail.substr(ignored + 8), nullptr, 16);
  const unsigned long long signals_1_to_31 = (1ULL << 31) - 1;
  CHECK((ignored_mask & signals_1_to_31) == 0);
  CHECK(signals.output_tail.starts_with("SigBlk:\t0000000000000000\n"));
  CHECK(descriptors.output_tail == "0\n1\n2\n");
}
