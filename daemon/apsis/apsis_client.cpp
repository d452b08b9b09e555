#include "apsis/apsis_client.hpp"

#include <boost/json.hpp>

#include "apsis/errors.hpp"
#include "util/duration.hpp"
#include "util/sleep.hpp"

namespace apsis::apsis_one {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::beast::http::verb;

constexpr std::string_view kCsv = "text/csv;charset=UTF-8;header=present";
constexpr std::string_view kXlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
constexpr std::string_view kJson = "application/json";

std::string_view media_type(config::FileFormat format) {
  switch (format) {
    case config::FileFormat::csv: return kCsv;
    case config::FileFormat::xlsx: return kXlsx;
    case config::FileFormat::json: return kJson;
  }
  return kCsv;
}

// Marks a job as waiting for the account's budget for as long as this lives.
class BudgetWaitScope {
 public:
  explicit BudgetWaitScope(BudgetWait* wait) : wait_(wait) {
    if (wait_) wait_->waiting = true;
  }
  ~BudgetWaitScope() {
    if (wait_) wait_->waiting = false;
  }
  BudgetWaitScope(const BudgetWaitScope&) = delete;
  BudgetWaitScope& operator=(const BudgetWaitScope&) = delete;

 private:
  BudgetWait* wait_;
};

http::Url base_url_of(const config::Account& account) {
  std::string error;
  auto url = http::parse_url(account.base_url, &error);
  if (!url) throw ApsisError("account '" + account.name + "': base_url: " + error);
  return *url;
}

// Keeps one of the account's request slots while a body reader holds the connection.
struct HeldSlot {
  std::shared_ptr<AsyncSemaphore> requests;  // declared first: outlives the permit
  AsyncSemaphore::Permit permit;
};

// Rounded up: a caller that wakes a fraction early would find the token's failure still held.
Milliseconds until(TimePoint when, TimePoint now) {
  return std::max(Milliseconds(0), std::chrono::ceil<Milliseconds>(when - now));
}

void set_bearer(http::Request& request, const std::string& token) {
  for (auto& [name, value] : request.headers)
    if (name == "Authorization") {
      value = "Bearer " + token;
      return;
    }
  request.headers.emplace_back("Authorization", "Bearer " + token);
}

}  // namespace

budget::Limits budget_limits(const config::AccountBudget& budget) {
  const auto limit = [](const config::RateBudget& rate) { return budget::Limit{rate.count, rate.window}; };
  return {limit(budget.submits), limit(budget.event_submits), limit(budget.polls), limit(budget.tokens)};
}

ApsisClient::ApsisClient(std::shared_ptr<http::Client> http, const config::Account& account,
                         const config::RetryPolicy& retry, NowFunction now, Random& random,
                         metrics::Metrics* metrics)
    : account_(account),
      retry_(retry),
      now_(now),
      random_(random),
      metrics_(metrics),
      base_(base_url_of(account)),
      http_(std::move(http)),
      budget_(http_->executor(), budget_limits(account.budget)),
      tokens_(*http_, budget_, account_, retry, now, random, metrics),
      requests_(std::make_shared<AsyncSemaphore>(static_cast<std::size_t>(std::max(0, account.max_connections)))) {}

bool ApsisClient::same_endpoint(const config::Account& account) const {
  auto with_our_budget = account;
  with_our_budget.budget = account_.budget;
  return with_our_budget == account_;
}

void ApsisClient::set_budget(const config::AccountBudget& budget) {
  account_.budget = budget;
  budget_.set_limits(budget_limits(budget));
}

asio::awaitable<http::Response> ApsisClient::send_authorized(CallSpec call, http::Request request,
                                                             budget::AccountBudget::Ticket ticket, BudgetWait* wait,
                                                             const std::function<boost::asio::awaitable<void>()>* before_sending) {
  std::string token;
  try {
    token = co_await tokens_.get();
  } catch (...) {
    ticket.release_unsent();  // nothing went to APSIS: the budget is not spent
    throw;
  }
  if (before_sending) co_await (*before_sending)();
  set_bearer(request, token);
  auto response = co_await send_counted(call, request, std::move(ticket), wait);
  if (classify(call.call, response.status, response.body, call.field) != Verdict::token_rejected) co_return response;
  tokens_.reject(token);
  token = co_await tokens_.get();
  set_bearer(request, token);
  budget::AccountBudget::Ticket second;  // acquired in send_counted
  co_return co_await send_counted(call, request, std::move(second), wait);
}

asio::awaitable<http::Response> ApsisClient::send_counted(CallSpec call, const http::Request& request,
                                                          budget::AccountBudget::Ticket ticket, BudgetWait* wait) {
  if (!ticket) {
    const BudgetWaitScope waiting(wait);
    ticket = co_await budget_.acquire(call.budget);
  }
  // Only then a request slot: a request waiting for the budget must not hold one that a request of
  // another kind (a submit behind a queue of polls) could use now.
  auto in_flight = co_await requests_->acquire();
  const auto kind = call.call == apsis_one::Call::submit ? metrics::Request::submit : metrics::Request::poll;
  if (metrics_) ++(kind == metrics::Request::submit ? metrics_->submissions : metrics_->polls);
  auto response = co_await http_->send(
      request, call.call == apsis_one::Call::poll ? http::ReadBody::stream_if_ok : http::ReadBody::collect);
  if (response.status == 429) ticket.throttled();
  if (metrics_) metrics_->count_response(kind, response.status);
  if (response.reader) response.reader->hold_until_done(std::make_shared<HeldSlot>(requests_, std::move(in_flight)));
  // The request has arrived once its answer's head is in: the ticket goes here, a long download
  // does not hold budget.
  co_return response;
}

http::Request ApsisClient::submit_request(const config::ExportDefinition& definition, const std::string& body) const {
  http::Request request;
  request.method = verb::post;
  request.url = base_;
  request.url.target = account_.export_paths.at(definition.kind);
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  request.body = body;
  request.timeout = account_.request_timeout;
  return request;
}

asio::awaitable<Result<Submitted, ApiFailure>> ApsisClient::submit(
    const config::ExportDefinition& definition, const std::string& body,
    const std::function<boost::asio::awaitable<void>()>& on_attempt, const SubmitLimits& limits,
    budget::AccountBudget::Ticket first) {
  using Kind = ApiFailure::Kind;
  const CallSpec call{apsis_one::Call::submit, definition.kind == config::ExportKind::events
                                               ? budget::CallKind::event_submit
                                               : budget::CallKind::submit};
  std::string last_problem;
  std::optional<unsigned> last_status;
  for (int attempt = 0; attempt < retry_.max_attempts; ++attempt) {
    std::optional<Milliseconds> retry_after;
    std::string asked;  // what the answer's Retry-After said, for the log
    std::optional<ApiFailure> failure;  // ends the submit, never retried
    try {
      auto request = submit_request(definition, body);
      auto ticket = attempt == 0 ? std::move(first) : budget::AccountBudget::Ticket();
      const auto response = co_await send_authorized(call, std::move(request), std::move(ticket), limits.budget_wait,
                                                     &on_attempt);
      const auto verdict = classify(call.call, response.status, response.body);
      if (verdict == Verdict::success) {
        // The export exists at APSIS now: a second POST would create another, so no retry.
        std::string why;
        auto poll_url = find_poll_url(response.body, account_.poll_url_field, &why);
        if (poll_url) co_return Submitted{std::move(*poll_url), response.status};
        failure = ApiFailure{Kind::bad_answer,
                             "APSIS One accepted the export (" + std::to_string(response.status) + ") but " + why +
                                 "; not submitting again, since each submit creates another export",
                             response.status};
      } else {
        last_problem = describe_failure(call.call, response.status, response.body);
        last_status = response.status;
        if (verdict != Verdict::transient && verdict != Verdict::rate_limited) {
          failure = ApiFailure{Kind::refused, last_problem, response.status};
        } else {
          const auto header = response.headers["Retry-After"];
          retry_after = parse_retry_after(header, now_());
          if (retry_after) asked = " (Retry-After: " + std::string(header.data(), header.size()) + ")";
          retry_after = bounded_retry_after(retry_after, retry_.backoff.max_delay);
        }
      }
    } catch (const TokenUnavailable& e) {
      // Not sent: the account's token fetch failed, and nobody asks again before its retry time.
      last_problem = e.what();
      last_status.reset();
      retry_after = until(e.retry_at(), now_());
    } catch (const ApsisError& e) {
      // The token endpoint refused the account's credentials (or answered without a token).
      failure = ApiFailure{Kind::refused, e.what(), e.status()};
    } catch (const http::NetworkError& e) {
      if (http::is_cancellation(e.code())) throw;
      if (e.request_may_have_arrived()) {
        // Sent but unanswered: APSIS may have created the export, and a second POST would create another.
        failure = ApiFailure{Kind::maybe_sent,
                             std::string("export submit: ") + e.what() +
                                 " after the request was sent; it may have reached APSIS One, so it is not sent "
                                 "again (each submit creates another export)",
                             std::nullopt};
      } else if (!http::is_transient_network_error(e.code())) {
        failure = ApiFailure{Kind::network, std::string("export submit: ") + e.what(), std::nullopt};
      } else {
        last_problem = std::string("export submit: ") + e.what();
        last_status.reset();
      }
    } catch (const boost::system::system_error& e) {
      if (http::is_cancellation(e.code())) throw;
      if (!http::is_transient_network_error(e.code())) {
        failure = ApiFailure{Kind::network, std::string("export submit: ") + e.what(), std::nullopt};
      } else {
        last_problem = std::string("export submit: ") + e.what();
        last_status.reset();
      }
    }
    if (failure) co_return std::move(*failure);
    if (attempt + 1 >= retry_.max_attempts) break;
    const auto delay = retry_after.value_or(backoff_delay(retry_.backoff, attempt, random_));
    const std::string attempt_text = "submit attempt " + std::to_string(attempt + 1) + " of " +
                                     std::to_string(retry_.max_attempts) + ": " + last_problem + asked;
    if (limits.retry_deadline && now_() + delay > *limits.retry_deadline)
      co_return ApiFailure{Kind::past_deadline,
                           attempt_text + "; waiting " + format_duration(delay) +
                               " to retry would pass the export's next scheduled slot (" +
                               format_iso8601(*limits.retry_deadline) + "), so this slot gives up",
                           last_status};
    if (limits.on_retry) limits.on_retry(attempt_text + "; retrying in " + format_duration(delay));
    co_await sleep_for(delay);
  }
  co_return ApiFailure{Kind::gave_up,
                       "gave up after " + std::to_string(retry_.max_attempts) + " submit attempts; last: " +
                           last_problem,
                       last_status};
}

asio::awaitable<Result<PollAnswer, ApiFailure>> ApsisClient::poll(const std::string& poll_url,
                                                                  config::PollUrlField field,
                                                                  const config::ExportDefinition& definition,
                                                                  budget::AccountBudget::Ticket ticket) {
  using Kind = ApiFailure::Kind;
  const CallSpec call{apsis_one::Call::poll, budget::CallKind::poll, field};
  std::string error;
  const auto url = http::resolve_reference(base_, poll_url, &error);
  if (!url) co_return ApiFailure{Kind::bad_url, "APSIS One gave an unusable poll URL: " + error, std::nullopt};
  if (url->origin() != base_.origin())
    co_return ApiFailure{Kind::foreign_origin, "the poll URL is on " + url->origin() +
                                                   ", not on the account's origin " + base_.origin() +
                                                   "; refusing to send the API token there",
                         std::nullopt};

  http::Request request;
  request.url = *url;
  request.headers = {
      {"Accept", std::string(media_type(definition.format))},
      {"Accept-Encoding", definition.compression == config::Compression::gzip ? "gzip" : "identity"}};
  request.timeout = account_.request_timeout;

  PollAnswer answer;
  std::optional<ApiFailure> failure;
  bool answered = false;
  try {
    answer.response = co_await send_authorized(call, std::move(request), std::move(ticket), nullptr, nullptr);
    answered = true;
  } catch (const TokenUnavailable& e) {
    answer.detail = std::string("poll: ") + e.what();
    answer.retry_after = until(e.retry_at(), now_());
  } catch (const ApsisError& e) {
    // The token endpoint refused the account's credentials (or answered without a token).
    failure = ApiFailure{Kind::refused, e.what(), e.status()};
  } catch (const boost::system::system_error& e) {
    if (http::is_cancellation(e.code())) throw;
    if (!http::is_transient_network_error(e.code()))
      failure = ApiFailure{Kind::network, std::string("poll: ") + e.what(), std::nullopt};
    else
      answer.detail = std::string("poll: ") + e.what();
  }
  if (failure) co_return std::move(*failure);
  if (!answered) co_return std::move(answer);
  auto& response = answer.response;
  answer.status = response.status;
  answer.verdict = classify(call.call, response.status, response.body, field);
  if (answer.verdict == Verdict::success) answer.body = std::move(response.reader);
  response.reader.reset();  // (only a 200 has one)
  if (answer.verdict != Verdict::success && answer.verdict != Verdict::in_progress)
    answer.detail = describe_failure(call.call, response.status, response.body);
  if (answer.verdict == Verdict::rate_limited || answer.verdict == Verdict::transient)
    answer.retry_after =
        bounded_retry_after(parse_retry_after(response.headers["Retry-After"], now_()), retry_.backoff.max_delay);
  co_return std::move(answer);
}

}  // namespace apsis::apsis_one
