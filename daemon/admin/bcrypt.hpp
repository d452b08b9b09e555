// bcrypt password hashes as the admin endpoint's basic_auth_users hold them (the Prometheus exporter
// toolkit's format): checked at load, verified per request through libxcrypt.
//
// libxcrypt rather than code of our own: it is the system's maintained crypt(3), used by PAM and
// shadow, it reads the $2a$/$2b$/$2y$ variants htpasswd and mkpasswd write, and password hashing is
// no place for a hand-written cipher. Thread-safe (crypt_rn keeps its state in the caller's buffer).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace apsis::admin {

// nullopt when `hash` is a bcrypt hash crypt(3) will read: $2a$, $2b$ or $2y$, a cost of 04..31,
// 53 characters of salt and digest in bcrypt's base64 alphabet. Else what is wrong, without
// quoting the hash.
std::optional<std::string> bcrypt_hash_problem(std::string_view hash);

// Whether `password` hashes to `hash`; false for a hash crypt(3) rejects. Takes as long as the
// hash's cost says (tens of milliseconds at cost 10): call it off the event loop. The comparison
// of the outputs takes the same time wherever they differ.
bool bcrypt_matches(std::string_view password, const std::string& hash);

}  // namespace apsis::admin
