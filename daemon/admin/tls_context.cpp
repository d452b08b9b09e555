#include "admin/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace apsis::admin {

namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> make_tls_server_context(const TlsServerFiles& files) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  if (SSL_CTX_set_min_proto_version(context->native_handle(), files.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION) != 1)
    throw std::runtime_error("admin_web: cannot set the minimum TLS version");
  boost::system::error_code ec;
  context->use_certificate_chain_file(files.cert_file.string(), ec);
  if (ec) throw std::runtime_error("admin_web: cert_file " + files.cert_file.string() + ": " + ec.message());
  context->use_private_key_file(files.key_file.string(), ssl::context::pem, ec);
  if (ec) throw std::runtime_error("admin_web: key_file " + files.key_file.string() + ": " + ec.message());
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    ERR_clear_error();
    throw std::runtime_error("admin_web: key_file " + files.key_file.string() + " does not belong to cert_file " +
                             files.cert_file.string());
  }
  return context;
}

}  // namespace apsis::admin
