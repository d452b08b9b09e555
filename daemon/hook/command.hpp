// Runs an external command (the on_success hook) from the event loop: no shell, its own process
// group, output captured, bounded by a timeout, and never left running behind the awaiting coroutine.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace apsis::hook {

struct CommandResult {
  std::optional<std::string> start_error;  // "could not start '/no/such': No such file or directory"
  std::optional<int> exit_code;            // normal exit
  std::optional<int> signal;               // killed by a signal (including our timeout kill)
  bool timed_out = false;
  bool killed_leftovers = false;  // processes it left behind still held the output open after its exit
  std::string output_tail;  // last ≤ 4 KiB of the child's combined stdout+stderr, for the job's log line
  std::chrono::milliseconds duration{0};
  std::chrono::milliseconds timeout{0};  // the limit it ran under, for describe()

  bool succeeded() const;  // started, exit 0, not timed out
  // One line for humans: "exit 0 after 0.2 s", "exit 3 after 1.0 s: <last line of output>",
  // "killed after the 5m timeout", "could not start '/no/such': No such file or directory".
  std::string describe() const;
};

// Starts argv[0] (searched in the daemon's PATH when it has no '/', like execvp) with argv: no shell,
// stdin from /dev/null, stdout and stderr into one pipe of which the last 4 KiB are kept, no other
// inherited descriptors, default signal mask and dispositions, and in a new process group.
// The environment is the daemon's own plus `extra_env` (which wins on equal names).
//
// The command is its main process: its exit status is the result, and its exit ends the command.
// Output is still collected after the exit until every writer has closed it, for at most 1 s; then
// whatever the command left running in its process group (`sleep 100 &`) gets SIGKILL, so a hook
// leaves no processes behind in its group and a background child never counts as a timeout (a
// process meant to outlive the hook must start its own session, setsid, and is then left alone). At `timeout` the
// whole group gets SIGTERM, and SIGKILL `kill_grace` later. A program that cannot be started comes back as a result with start_error set, not as an
// exception; failing to create the pipe or pidfd throws boost::system::system_error.
//
// Cancelling the awaiting coroutine (terminal cancellation, daemon shutdown) SIGKILLs the group, reaps
// the child and propagates operation_aborted. Never needs a SIGCHLD handler. Event-loop thread only.
boost::asio::awaitable<CommandResult> run_command(std::vector<std::string> argv,
                                                  std::map<std::string, std::string> extra_env,
                                                  std::chrono::milliseconds timeout,
                                                  std::chrono::milliseconds kill_grace = std::chrono::seconds(5));

}  // namespace apsis::hook
