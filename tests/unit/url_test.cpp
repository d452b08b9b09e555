#include <doctest/doctest.h>

#include "http/url.hpp"

using namespace apsis::http;

TEST_CASE("absolute URLs split into origin and target") {
  const auto url = parse_url("HTTPS://API.apsis.one/audience/x?y=1#frag");
  REQUIRE(url);
  CHECK(url->scheme == "https");
  CHECK(url->host == "api.apsis.one");
  CHECK(url->port == "443");
  CHECK(url->target == "/audience/x?y=1");
  CHECK(url->origin() == "https://api.apsis.one:443");
  CHECK(parse_url("http://127.0.0.1:8080")->target == "/");
  CHECK(parse_url("http://[::1]:9/p")->origin() == "http://[::1]:9");
}

TEST_CASE("bad URLs say why") {
  std::string why;
  CHECK_FALSE(parse_url("api.apsis.one", &why));
  CHECK(why.find("absolute") != std::string::npos);
  CHECK_FALSE(parse_url("ftp://x", &why));
  CHECK(why.find("scheme") != std::string::npos);
  CHECK_FALSE(parse_url("https://user:pw@x", &why));
  CHECK_FALSE(parse_url("https://x:99999", &why));
  CHECK(why.find("port") != std::string::npos);
  CHECK_FALSE(parse_url("https://x/a b", &why));
  CHECK_FALSE(parse_url("https://:443/", &why));
}

TEST_CASE("poll URL references resolve against the account's base") {
  const auto base = *parse_url("https://api.apsis.one");
  CHECK(resolve_reference(base, "/exports/1")->origin() == base.origin());
  CHECK(resolve_reference(base, "/exports/1")->target == "/exports/1");
  CHECK(resolve_reference(base, "https://evil.example/exports/1")->host == "evil.example");
  CHECK(resolve_reference(base, "//other.host/x")->host == "other.host");
  CHECK_FALSE(resolve_reference(base, "exports/1"));
  // Same host, other port or scheme: another origin, so no token goes there.
  CHECK(resolve_reference(base, "http://api.apsis.one/x")->origin() != base.origin());
  CHECK(resolve_reference(base, "https://api.apsis.one:8443/x")->origin() != base.origin());
}

TEST_CASE("loopback hosts") {
  CHECK(is_loopback_host("localhost"));
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.1.2.3"));
  CHECK(is_loopback_host("::1"));
  CHECK_FALSE(is_loopback_host("127.example.com"));
  CHECK_FALSE(is_loopback_host("127.0.0.1.nip.io"));
  CHECK_FALSE(is_loopback_host("127.0.0.256"));
  CHECK_FALSE(is_loopback_host("10.0.0.1"));
  CHECK_FALSE(is_loopback_host("api.apsis.one"));
}

TEST_CASE("a URL's userinfo never appears in a message") {
  CHECK(redact_userinfo("https://user:s3cret@api.apsis.one/x") == "https://***@api.apsis.one/x");
  CHECK(redact_userinfo("https://api.apsis.one/x?mail=a@b") == "https://api.apsis.one/x?mail=a@b");
  CHECK(redact_userinfo("https://api.apsis.one") == "https://api.apsis.one");
  CHECK(redact_userinfo("https://user:pa/ss@host/x").find("pa/ss") == std::string::npos);
  std::string why;
  CHECK_FALSE(parse_url("https://user:s3cret@x", &why));
  CHECK(why.find("s3cret") == std::string::npos);
  // A '/' in the password ends the authority early: its first part would pass for a port.
  CHECK_FALSE(parse_url("https://user:pa/ss@x", &why));
  CHECK(why.find("pa") == std::string::npos);
  CHECK_FALSE(resolve_reference(*parse_url("https://x"), "user:s3cret@x/y", &why));
  CHECK(why.find("s3cret") == std::string::npos);
}
