#include "apsis/token_source.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "apsis/errors.hpp"
#include "apsis/protocol.hpp"

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

// One fetch under way; everyone who asked meanwhile waits on `done` and takes its outcome.
struct TokenSource::Fetch {
  explicit Fetch(const asio::any_io_executor& executor) : done(executor, asio::steady_timer::time_point::max()) {}
  asio::steady_timer done;  // cancelled when the fetch ends
  bool finished{false};     // false at wake-up: the fetching caller was cancelled, so someone asks again
  std::exception_ptr error;
};

TokenSource::TokenSource(http::Client& http, budget::AccountBudget& budget, const config::Account& account,
                         const config::RetryPolicy& retry, NowFunction now, Random& random,
                         metrics::Metrics* metrics)
    : http_(http),
      budget_(budget),
      account_(account),
      retry_(retry),
      now_(std::move(now)),
      random_(random),
      metrics_(metrics) {}

TokenSource::~TokenSource() = default;

bool TokenSource::usable() const { return token_ && now_() < renew_at_; }

asio::awaitable<std::string> TokenSource::get() {
  for (;;) {
    if (usable()) co_return *token_;
    if (failure_ && now_() < retry_at_) std::rethrow_exception(failure_);
    auto fetch = fetching_;
    if (!fetch) {
      fetch = fetching_ = std::make_shared<Fetch>(http_.executor());
      co_await this->fetch(*fetch);
    } else {
      co_await fetch->done.async_wait(asio::as_tuple(asio::use_awaitable));
      if (!fetch->finished) {
        // Still under way: our own wait was cancelled (shutdown). Otherwise its caller was.
        if (fetching_ == fetch) throw boost::system::system_error(asio::error::operation_aborted);
        continue;
      }
    }
    if (fetch->error) std::rethrow_exception(fetch->error);
    if (token_) co_return *token_;  // else rejected again before we woke: fetch anew
  }
}

void TokenSource::reject(const std::string& token) {
  if (token_ && *token_ == token) token_.reset();
}

asio::awaitable<void> TokenSource::fetch(Fetch& outcome) {
  struct WakeWaiters {
    TokenSource& self;
    Fetch& outcome;
    ~WakeWaiters() {
      self.fetching_.reset();
      outcome.done.cancel();
    }
  } wake{*this, outcome};
  try {
    co_await request_token();
    failure_ = nullptr;
    failures_in_a_row_ = 0;
    outcome.finished = true;
    co_return;
  } catch (const RetryableTokenError& e) {
    hold_failure(e.retry_after);
    failure_ = std::make_exception_ptr(TokenUnavailable(
        "cannot get an API token (" + std::to_string(failures_in_a_row_) + " failed request" +
            (failures_in_a_row_ == 1 ? "" : "s") + " in a row): " + e.what() + "; asking again after " +
            format_iso8601(retry_at_),
        retry_at_));
  } catch (const ApsisError&) {
    hold_failure(std::nullopt);  // refused credentials: a reload with new ones makes a new source
    failure_ = std::current_exception();
  }
  // A cancellation passes through: outcome.finished stays false and a waiter fetches again.
  outcome.error = failure_;
  outcome.finished = true;
}

// Sets when the endpoint is asked next: what a 429/503 asked for (capped at the retry policy's
// max_delay), else the back-off with equal jitter — at least half of it, so a failure is always held
// for a while instead of letting the next caller ask again at once.
void TokenSource::hold_failure(std::optional<Milliseconds> asked) {
  const auto ceiling = backoff_ceiling(retry_.backoff, failures_in_a_row_++);
  const auto delay = ceiling / 2 + full_jitter(ceiling / 2, random_);
  retry_at_ = now_() + bounded_retry_after(asked, retry_.backoff.max_delay).value_or(delay);
}

asio::awaitable<void> TokenSource::request_token() {
  std::string error;
  http::Request request;
  request.method = http::beast_http::verb::post;
  request.url = *http::parse_url(account_.base_url + account_.token_path, &error);
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  request.body = json::serialize(json::object{{"grant_type", "client_credentials"},
                                              {"client_id", account_.client_id},
                                              {"client_secret", account_.client_secret}});
  request.timeout = account_.request_timeout;
  http::Response response;
  auto ticket = co_await budget_.acquire(budget::CallKind::token);
  ++requests_;
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
