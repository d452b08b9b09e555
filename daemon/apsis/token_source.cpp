#include "apsis/token_source.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "apsis/errors.hpp"
#include "apsis/protocol.hpp"
#include "util/sleep.hpp"

namespace apsis::apsis_one {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

// Renew this long before expiry, but never more than a fifth of the token's lifetime early.
constexpr Milliseconds kRenewMargin = std::chrono::minutes(5);

// A token request that may succeed if asked again later (429, 5xx, network trouble).
struct RetryableTokenError : std::runtime_error {
  RetryableTokenError(const std::string& message, std::optional<Milliseconds> after)
      : std::runtime_error(message), retry_after(after) {}
  std::optional<Milliseconds> retry_after;
};

}  // namespace

TokenSource::TokenSource(http::Client& http, budget::AccountBudget& budget, const config::Account& account, const config::RetryPolicy& retry,
                         NowFunction now, Random& random, metrics::Metrics* metrics)
    : http_(http),
      budget_(budget),
      account_(account),
      retry_(retry),
      now_(std::move(now)),
      random_(random),
      metrics_(metrics),
      fetch_done_(http.executor(), asio::steady_timer::time_point::max()) {}

bool TokenSource::usable() const { return token_ && now_() < renew_at_; }

asio::awaitable<std::string> TokenSource::get() {
  while (!usable()) {
    if (!fetching_) {
      co_await fetch_with_retries();
      break;
    }
    co_await fetch_done_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return *token_;
}

void TokenSource::reject(const std::string& token) {
  if (token_ && *token_ == token) token_.reset();
}

asio::awaitable<void> TokenSource::fetch_with_retries() {
  fetching_ = true;
  struct WakeWaiters {
    TokenSource& self;
    ~WakeWaiters() {
      self.fetching_ = false;
      self.fetch_done_.cancel();
    }
  } wake{*this};
  for (int attempt = 0;; ++attempt) {
    Milliseconds delay{0};
    try {
      co_await fetch();
      co_return;
    } catch (const RetryableTokenError& e) {
      if (attempt + 1 >= retry_.max_attempts)
        throw ApsisError("cannot get an API token (" + std::to_string(attempt + 1) + " attempt" +
                         (attempt == 0 ? "" : "s") + "): " + e.what());
      delay = bounded_retry_after(e.retry_after, retry_.backoff.max_delay)
                  .value_or(backoff_delay(retry_.backoff, attempt, random_));
    }
    co_await sleep_for(delay);
  }
}

asio::awaitable<void> TokenSource::fetch() {
  std::string error;
  http::Request request;
  request.method = http::beast_http::verb::post;
  request.url = *http::parse_url(account_.base_url + account_.token_path, &error);
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  request.body = json::serialize(json::object{{"grant_type", "client_credentials"},
                                              {"client_id", account_.client_id},
                                              {"client_secret", account_.client_secret}});
  http::Response response;
  auto ticket = co_await budget_.acquire(budget::CallKind::token);
  try {
    response = co_await http_.send(request);
    if (response.status == 429) ticket.throttled();
  } catch (const boost::system::system_error& e) {
    if (http::is_cancellation(e.code())) throw;
    if (!http::is_transient_network_error(e.code())) throw ApsisError(std::string("token request: ") + e.what());
    throw RetryableTokenError(std::string("token request: ") + e.what(), std::nullopt);
  }
  if (metrics_) metrics_->count_response(metrics::Request::token, response.status);
  const auto verdict = classify(Call::token, response.status, response.body);
  if (verdict == Verdict::rate_limited || verdict == Verdict::transient)
    throw RetryableTokenError(describe_failure(Call::token, response.status, response.body),
                              parse_retry_after(response.headers["Retry-After"], now_()));
  if (verdict != Verdict::success)
    throw ApsisError(describe_failure(Call::token, response.status, response.body) +
                         "; check the account's client_id and client secret",
                     response.status);
  accept_token_answer(response.body);
}

void TokenSource::accept_token_answer(std::string_view body) {
  boost::system::error_code ec;
  const auto answer = json::parse(body, ec);
  const auto* object = !ec && answer.is_object() ? &answer.as_object() : nullptr;
  const auto* token = object ? object->if_contains("access_token") : nullptr;
  if (!token || !token->is_string() || token->as_string().empty())
    throw ApsisError("the token endpoint answered 2xx without an access_token");
  const TimePoint now = now_();
  std::optional<TimePoint> expiry = jwt_expiry(token->as_string());
  if (!expiry) {
    const auto* expires_in = object->if_contains("expires_in");
    expiry = now + std::chrono::seconds(expires_in && expires_in->is_number() ? expires_in->to_number<std::int64_t>()
                                                                              : 3600);
  }
  const auto lifetime = std::max(Milliseconds(0), std::chrono::duration_cast<Milliseconds>(*expiry - now));
  token_ = std::string(token->as_string());
  if (metrics_) ++metrics_->token_renewals;
  renew_at_ = *expiry - std::min(kRenewMargin, lifetime / 5);
}

}  // namespace apsis::apsis_one
