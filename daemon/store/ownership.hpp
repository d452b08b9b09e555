// Who may run the jobs of a state database. A service (`run`) owns every row of its database while it
// runs, so no two services run one row: it holds an exclusive flock(2) on "<state_db>.lock", which the
// kernel releases when the process ends, however it ends. The file says who holds it (pid, start time)
// for the messages of those who find it held. Callers see only this interface: with PostgreSQL,
// account leases take the file's place.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include "util/time.hpp"

namespace apsis::store {

// The service that owns a state database, as it described itself.
struct ServiceHolder {
  long pid{0};          // 0 when the file could not be read (a holder still writing it)
  std::string started;  // ISO-8601, as the holder wrote it
};

// Another service owns the database.
class ServiceRunning : public std::runtime_error {
 public:
  ServiceRunning(std::filesystem::path lock_file, ServiceHolder holder);
  const std::filesystem::path& lock_file() const { return lock_file_; }
  const ServiceHolder& holder() const { return holder_; }

 private:
  std::filesystem::path lock_file_;
  ServiceHolder holder_;
};

// Held for the life of a service; released on destruction. Move-only.
class ServiceOwnership {
 public:
  ServiceOwnership(ServiceOwnership&& other) noexcept;
  ServiceOwnership& operator=(ServiceOwnership&&) = delete;
  ~ServiceOwnership();

  const std::filesystem::path& lock_file() const { return lock_file_; }

 private:
  friend ServiceOwnership acquire_service_ownership(const std::filesystem::path&, TimePoint);
  ServiceOwnership(std::filesystem::path lock_file, int fd) : lock_file_(std::move(lock_file)), fd_(fd) {}

  std::filesystem::path lock_file_;
  int fd_;
};

// Makes this process the service of `state_db` (creating its directory if needed). Throws
// ServiceRunning when another service owns it, std::system_error when the lock file cannot be used.
ServiceOwnership acquire_service_ownership(const std::filesystem::path& state_db, TimePoint now);

// The service owning `state_db` now, if any. Never waits; keeps no lock and creates no file.
std::optional<ServiceHolder> service_owner(const std::filesystem::path& state_db);

}  // namespace apsis::store
