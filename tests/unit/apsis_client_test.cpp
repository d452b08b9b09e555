// The APSIS client and its token source against a scripted server on 127.0.0.1: one token fetch at
// a time with its outcome shared, polls that leave a 200's body unread, tickets the caller holds,
// and accounts on one origin sharing one connection pool.
#include <doctest/doctest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "apsis/apsis_client.hpp"
#include "apsis/errors.hpp"
#include "apsis/token_source.hpp"
#include "loopback_server.hpp"

using namespace apsis;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using test::answer;
using test::LoopbackServer;

namespace {

config::Account account_on(const LoopbackServer& server, const std::string& name) {
  config::Account account;
  account.name = name;
  account.base_url = server.base_url();
  account.client_id = name;
  account.client_secret = "secret";
  account.request_timeout = 5s;
  account.budget.tokens = {100, 60'000ms};
  account.budget.polls = {100, 60'000ms};
  return account;
}

// A wall clock the test moves by hand.
struct VirtualClock {
  TimePoint now{Clock::now()};
  NowFunction function() {
    return [this] { return now; };
  }
};

// Waits (on the loop) until `done()` holds.
asio::awaitable<void> until(const std::function<bool()>& done) {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  while (!done()) {
    tick.expires_after(1ms);
    co_await tick.async_wait(asio::use_awaitable);
  }
}

std::size_t count(const LoopbackServer& server, const std::string& target) {
  std::size_t n = 0;
  for (const auto& seen : server.seen()) n += seen.target == target;
  return n;
}

// (A named definition: GCC 12 mishandles temporaries bound to a co_awaited call's reference parameters.)
const config::ExportDefinition kDefinition;

test::Answer token_for(const LoopbackServer::Request& request) {
  const auto id = request.body().find("\"client_id\":\"b\"") != std::string::npos ? "b" : "a";
  return answer(200, std::string(R"({"access_token":"tok-)") + id + R"(","expires_in":3600})");
}

}  // namespace

TEST_CASE("a failing token endpoint is asked once by 50 waiting callers, who all get its error") {
  asio::io_context io;
  bool endpoint_up = false;
  LoopbackServer server(io, [&](const LoopbackServer::Request& request) {
    return endpoint_up ? token_for(request) : answer(503, R"({"message":"maintenance"})");
  });
  http::Client client(io.get_executor(), {});
  const auto account = account_on(server, "a");
  budget::AccountBudget budget(io.get_executor(), apsis_one::budget_limits(account.budget));
  VirtualClock clock;
  Random random(7);
  apsis_one::TokenSource tokens(client, budget, account, config::RetryPolicy{}, clock.function(), random);
  std::vector<std::string> errors;
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 50; ++i)
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            try {
              co_await tokens.get();
            } catch (const apsis_one::TokenUnavailable& e) {
              errors.push_back(e.what());
            }
          },
          [](std::exception_ptr) {});
    co_await until([&] { return errors.size() == 50; });
    CHECK(tokens.requests() == 1);
    CHECK(server.seen().size() == 1);
    for (const auto& error : errors) CHECK(error == errors.front());
    CHECK(errors.front().find("503") != std::string::npos);

    // Until the retry time every caller gets the same error at once, without a request.
    std::optional<TimePoint> retry_at;
    try {
      co_await tokens.get();
    } catch (const apsis_one::TokenUnavailable& e) {
      retry_at = e.retry_at();
    }
    REQUIRE(retry_at);
    CHECK(*retry_at > clock.now);
    CHECK(server.seen().size() == 1);

    // After it, exactly one new request, shared again.
    clock.now = *retry_at;
    endpoint_up = true;
    std::vector<std::string> got;
    for (int i = 0; i < 10; ++i)
      asio::co_spawn(
          io, [&]() -> asio::awaitable<void> { got.push_back(co_await tokens.get()); }, [](std::exception_ptr) {});
    co_await until([&] { return got.size() == 10; });
    CHECK(tokens.requests() == 2);
    CHECK(server.seen().size() == 2);
    CHECK(got.front() == "tok-a");
  });
}

TEST_CASE("refused credentials fail every caller until the retry time, as an ApsisError") {
  asio::io_context io;
  LoopbackServer server(io, [](const LoopbackServer::Request&) { return answer(401, R"({"message":"bad client"})"); });
  http::Client client(io.get_executor(), {});
  const auto account = account_on(server, "a");
  budget::AccountBudget budget(io.get_executor(), apsis_one::budget_limits(account.budget));
  VirtualClock clock;
  Random random(7);
  apsis_one::TokenSource tokens(client, budget, account, config::RetryPolicy{}, clock.function(), random);
  int refused = 0;
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      try {
        co_await tokens.get();
      } catch (const apsis_one::TokenUnavailable&) {
        FAIL("refused credentials are not a passing outage");
      } catch (const apsis_one::ApsisError& e) {
        CHECK(std::string(e.what()).find("client_id") != std::string::npos);
        ++refused;
      }
    }
  });
  CHECK(refused == 3);
  CHECK(tokens.requests() == 1);
}

TEST_CASE("two accounts on one origin share one connection pool, each with its own token") {
  asio::io_context io;
  LoopbackServer server(io, [](const LoopbackServer::Request& request) {
    if (request.target() == "/oauth/token") return token_for(request);
    return answer(404, "");  // not ready yet
  });
  http::ClientPool pool(io.get_executor());
  VirtualClock clock;
  Random random(7);
  apsis_one::ApsisClient a(pool.client_for(std::nullopt), account_on(server, "a"), {}, clock.function(), random);
  apsis_one::ApsisClient b(pool.client_for(std::nullopt), account_on(server, "b"), {}, clock.function(), random);
  CHECK(&a.http() == &b.http());
  const config::ExportDefinition definition;
  const auto url = server.base_url() + "/exports/1/file";
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    for (auto* client : {&a, &b, &a}) {
      const auto polled = co_await client->poll(url, config::PollUrlField::file_download_url, definition, {});
      REQUIRE(polled.has_value());
      const auto& answer = *polled;
      CHECK(answer.verdict == apsis_one::Verdict::in_progress);
      CHECK_FALSE(answer.body);
    }
  });
  // Token POSTs each open a connection; GETs reuse the idle ones, whoever's request left them there.
  const auto& seen = server.seen();
  REQUIRE(seen.size() == 5);
  CHECK(seen[0].target == "/oauth/token");
  CHECK(seen[1].authorization == "Bearer tok-a");
  CHECK(seen[2].target == "/oauth/token");
  CHECK(seen[3].authorization == "Bearer tok-b");
  CHECK(seen[4].authorization == "Bearer tok-a");
  CHECK(seen[4].connection == seen[3].connection);  // a's poll on the connection b's poll used
  CHECK(server.connections() == 2);
  CHECK(a.http().stats().reused == 3);
}

TEST_CASE("a poll answered 200 leaves the file unread and releases the caller's ticket at the head") {
  asio::io_context io;
  const std::string file = "id;email\n1;a@example.com\n";
  LoopbackServer server(io, [&](const LoopbackServer::Request& request) {
    if (request.target() == "/oauth/token") return token_for(request);
    return answer(200, file, "Content-Type: text/csv;charset=UTF-8\r\n");
  });
  http::ClientPool pool(io.get_executor());
  VirtualClock clock;
  Random random(7);
  auto account = account_on(server, "a");
  account.budget.polls = {1, 60'000ms};
  apsis_one::ApsisClient client(pool.client_for(std::nullopt), account, {}, clock.function(), random);
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    auto ticket = client.budget().try_acquire(budget::CallKind::poll);
    REQUIRE(ticket);
    auto polled = co_await client.poll(server.base_url() + "/exports/1/file", config::PollUrlField::file_download_url,
                                       kDefinition, std::move(*ticket));
    REQUIRE(polled.has_value());
    auto& answer = *polled;
    CHECK(answer.verdict == apsis_one::Verdict::success);
    CHECK(answer.status == 200);
    REQUIRE(answer.body);
    CHECK(client.budget().in_flight(budget::CallKind::poll) == 0);  // answered, though the body is unread
    std::string body;
    for (;;) {
      const auto piece = co_await answer.body->read_some();
      if (piece.empty()) break;
      body.append(piece.data(), piece.size());
    }
    CHECK(body == file);
    CHECK(answer.body->end_framed());
  });
}

TEST_CASE("a rejected token is renewed once and the poll sent again with a second ticket") {
  asio::io_context io;
  int tokens_issued = 0;
  LoopbackServer server(io, [&](const LoopbackServer::Request& request) {
    if (request.target() == "/oauth/token")
      return answer(200, R"({"access_token":"tok)" + std::to_string(++tokens_issued) + R"(","expires_in":3600})");
    if (request[boost::beast::http::field::authorization] == "Bearer tok1") return answer(401, "{}");
    return answer(404, "");
  });
  http::ClientPool pool(io.get_executor());
  VirtualClock clock;
  Random random(7);
  apsis_one::ApsisClient client(pool.client_for(std::nullopt), account_on(server, "a"), {}, clock.function(), random);
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    const auto polled = co_await client.poll(server.base_url() + "/exports/1/file",
                                             config::PollUrlField::file_download_url, kDefinition, {});
    REQUIRE(polled.has_value());
    const auto& answer = *polled;
    CHECK(answer.verdict == apsis_one::Verdict::in_progress);
  });
  CHECK(tokens_issued == 2);
  CHECK(count(server, "/exports/1/file") == 2);
}

TEST_CASE("a poll without a token for now is a transient answer that spends no budget") {
  asio::io_context io;
  LoopbackServer server(io, [](const LoopbackServer::Request&) { return answer(503, "{}", "Retry-After: 30\r\n"); });
  http::ClientPool pool(io.get_executor());
  VirtualClock clock;
  Random random(7);
  auto account = account_on(server, "a");
  account.budget.polls = {1, 60'000ms};
  apsis_one::ApsisClient client(pool.client_for(std::nullopt), account, {}, clock.function(), random);
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    auto ticket = client.budget().try_acquire(budget::CallKind::poll);
    REQUIRE(ticket);
    const auto polled = co_await client.poll(server.base_url() + "/exports/1/file",
                                             config::PollUrlField::file_download_url, kDefinition,
                                             std::move(*ticket));
    REQUIRE(polled.has_value());
    const auto& answer = *polled;
    CHECK(answer.verdict == apsis_one::Verdict::transient);
    CHECK(answer.status == 0);
    CHECK(answer.detail.find("API token") != std::string::npos);
    REQUIRE(answer.retry_after);
    CHECK(*answer.retry_after == 30s);
    CHECK(client.budget().try_acquire(budget::CallKind::poll));  // the unsent poll left the window empty
  });
  CHECK(count(server, "/exports/1/file") == 0);
}

TEST_CASE("the token is never sent to a poll URL on another origin") {
  asio::io_context io;
  LoopbackServer server(io, [](const LoopbackServer::Request& request) { return token_for(request); });
  http::ClientPool pool(io.get_executor());
  VirtualClock clock;
  Random random(7);
  apsis_one::ApsisClient client(pool.client_for(std::nullopt), account_on(server, "a"), {}, clock.function(), random);
  std::optional<apsis_one::ApiFailure> refused;
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    auto answer = co_await client.poll("http://127.0.0.2:1/file", config::PollUrlField::file_download_url,
                                       kDefinition, {});
    if (!answer) refused = answer.error();
  });
  REQUIRE(refused);
  CHECK(refused->kind == apsis_one::ApiFailure::Kind::foreign_origin);
  CHECK(refused->message.find("refusing to send the API token") != std::string::npos);
  CHECK(server.seen().empty());
}

TEST_CASE("a submit waits out the token endpoint's retry time as a failed attempt, then POSTs once") {
  asio::io_context io;
  int token_requests = 0;
  LoopbackServer server(io, [&](const LoopbackServer::Request& request) {
    if (request.target() == "/oauth/token") return ++token_requests <= 2 ? answer(503, "{}") : token_for(request);
    return answer(201, R"({"file_download_url":"/exports/1/file"})");
  });
  http::ClientPool pool(io.get_executor());
  Random random(7);
  config::RetryPolicy retry;
  retry.backoff = {10ms, 2.0, 40ms};
  // The real clock: the submit sleeps until the token's retry time.
  apsis_one::ApsisClient client(pool.client_for(std::nullopt), account_on(server, "a"), retry, system_now(), random);
  int attempts = 0;
  std::vector<std::string> retries;
  apsis_one::SubmitLimits limits;
  limits.on_retry = [&](const std::string& message) { retries.push_back(message); };
  const std::string body = "{}";
  const std::function<boost::asio::awaitable<void>()> on_attempt = [&]() -> boost::asio::awaitable<void> {
    ++attempts;
    co_return;
  };
  test::run_with(io, server, [&]() -> asio::awaitable<void> {
    budget::AccountBudget::Ticket none;
    const auto submitted = co_await client.submit(kDefinition, body, on_attempt, limits, std::move(none));
    REQUIRE(submitted.has_value());
    CHECK(submitted->poll_url.url == "/exports/1/file");
  });
  CHECK(attempts == 1);  // POSTs: the attempts without a token sent nothing
  REQUIRE(retries.size() == 2);
  CHECK(retries.front().find("cannot get an API token") != std::string::npos);
  CHECK(token_requests == 3);
  CHECK(count(server, "/audience/profiles/reports/duplicates") == 1);
}
