// Who runs a job that `apsis-exportd once` started. `once` holds an exclusive flock(2) on
// "<state_db>.once-<job id>.lock" while it runs the job, and removes the file when the job ends in a
// final state. So a `once` killed with -9 leaves the file, unlocked: the next `once` of that export
// resumes the job, and a starting `run` takes it over; a live `once`'s job is left alone by both.
// (flock is per open file: it is released by the kernel when the process dies, however it dies.)
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace apsis::service {

class OnceLock {
 public:
  enum class Owner {
    none,   // no lock file: not a `once` job (or one that ended)
    alive,  // a `once` runs it now
    gone,   // the `once` that ran it died before the job ended
  };

  // Creates and locks the lock file of a job this process is about to run. Throws on failure.
  static OnceLock create(const std::filesystem::path& state_db, std::int64_t job_id);
  // The lock of a job whose `once` is gone, now held by this process; nullopt if the job has no lock
  // file or its owner is alive.
  static std::optional<OnceLock> take_abandoned(const std::filesystem::path& state_db, std::int64_t job_id);
  static Owner owner(const std::filesystem::path& state_db, std::int64_t job_id);
  // The jobs that have a lock file beside `state_db` (their `once` runs, or died): a running
  // service looks at these to take over the jobs of a `once` killed after the service started.
  static std::vector<std::int64_t> jobs_with_lock_files(const std::filesystem::path& state_db);
  // Whether the process named in the job's lock file may still run it, read without touching the
  // lock: a file still being created (no pid yet) counts as alive. Probing with flock instead would
  // make a `once` creating its lock at that moment fail to take it.
  static bool named_holder_may_live(const std::filesystem::path& state_db, std::int64_t job_id);

  OnceLock(OnceLock&& other) noexcept;
  OnceLock& operator=(OnceLock&&) = delete;
  ~OnceLock();  // releases the lock; the file stays, so the job can be resumed

  // The job ended (or another process took it over): removes the file, then releases the lock.
  void remove();

 private:
  OnceLock(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_;
};

}  // namespace apsis::service
