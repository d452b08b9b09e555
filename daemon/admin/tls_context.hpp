// The admin endpoint's TLS server context from a certificate chain and key in PEM files.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <memory>

namespace apsis::admin {

struct TlsServerFiles {
  std::filesystem::path cert_file;  // the server certificate, then any intermediates
  std::filesystem::path key_file;
  bool tls13_only = false;  // else TLS 1.2 and 1.3
};

// Throws std::runtime_error naming the file and OpenSSL's reason when either cannot be loaded or
// the key does not belong to the certificate.
std::shared_ptr<boost::asio::ssl::context> make_tls_server_context(const TlsServerFiles& files);

}  // namespace apsis::admin
