// A self-signed P-256 certificate for CN=localhost (valid until 2126), its key, and a key of no
// certificate: for the admin endpoint's TLS tests. Made with `openssl req -x509 -newkey ec`.
#pragma once

#include <string_view>

namespace test_pem {

inline constexpr std::string_view kCertificate = R"(-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUBjIeG4zYOpJbFu9IrAWL6q6+3/EwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEzMDE1NTExMFoYDzIxMjYxMTA2
MTU1MTEwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQqCKLWoH7morjrksFuwf1BluuBJh4kozeFOXzsvyCfYm4GvM/uWdfl
KTDVz8jQWlQWxJ7y10/9v8xvxQbzxnBxo1MwUTAdBgNVHQ4EFgQUPkUY46RZJyqR
xMitl5YrUAwE9ZswHwYDVR0jBBgwFoAUPkUY46RZJyqRxMitl5YrUAwE9ZswDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA+1MVhOE8w5qCT3ZqcAIf
5DpesYj8r+0qX3yFU5XafC0CICa11ggtD0M+fRSrUh5odRGRE/n7s60YGC1KStkj
Tjhx
-----END CERTIFICATE-----
)";
inline constexpr std::string_view kKey = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgieH/TRp2+x8Gv7+n
lyBuTv/ZAIlWmLQXPhrVRDnbtNChRANCAAQqCKLWoH7morjrksFuwf1BluuBJh4k
ozeFOXzsvyCfYm4GvM/uWdflKTDVz8jQWlQWxJ7y10/9v8xvxQbzxnBx
-----END PRIVATE KEY-----
)";
inline constexpr std::string_view kOtherKey = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgabdCBkp7XtY1BTL9
X0t3e1NDPZQ4suLwXfZq0kbrOyqhRANCAARpmgLtZ7tL9i6uJUWq1Vfg+z/yXlH4
pVPjVdwRbWYWWh+4rqWf4BxxahxGw70NkbWHpafWxAMC8RHPHLlGA+KF
-----END PRIVATE KEY-----
)";

}  // namespace test_pem
