// The APSIS One API as the job lifecycle needs it: submit an export, poll its URL. Adds the bearer
// token (only ever to the account's own origin), renews it once when the API rejects it, and retries
// submits through 429/5xx/network trouble. Polls are single attempts: the job decides when to poll again.
// Every request waits for its turn in the account's budget (budget/account_budget.hpp), shared by
// all jobs of the account; a 429 slows the whole account down.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <optional>
#include <string>

#include "apsis/protocol.hpp"
#include "apsis/token_source.hpp"
#include "budget/account_budget.hpp"
#include "config/config.hpp"
#include "http/client.hpp"
#include "util/backoff.hpp"
#include "metrics/metrics.hpp"
#include "util/async_semaphore.hpp"

namespace apsis::apsis_one {

struct Submitted {
  PollUrl poll_url;
  unsigned status{0};
};

// Set while a job's request waits for the account's budget (as opposed to waiting for APSIS): what
// /jobs and /metrics show.
struct BudgetWait {
  bool waiting{false};
};

// What a submit may do beyond POSTing: report each refused attempt before its retry (429, 5xx,
// network trouble: the job logs it), and give up rather than wait past a deadline (the export's
// next scheduled slot). Waits for the account's budget are not retry waits and never count.
struct SubmitLimits {
  std::function<void(const std::string& message)> on_retry;  // null = not reported
  std::optional<TimePoint> retry_deadline;
};

struct PollAnswer {
  Verdict verdict{Verdict::transient};
  unsigned status{0};                     // 0 when no answer arrived (network error)
  std::string detail;                     // why, for the job row, when not a success
  std::optional<Milliseconds> retry_after;
  bool body_cut{false};                   // a 200 whose body broke off: fetch again from the same URL
  http::Response response;
};

class ApsisClient {
 public:
  ApsisClient(boost::asio::any_io_executor executor, const config::Account& account, const config::RetryPolicy& retry,
              NowFunction now, Random& random, metrics::Metrics* metrics = nullptr);

  // POSTs `body` as the export's request; throws ApsisError when it is refused or retries run out,
  // when a retry's wait (Retry-After, capped at the retry policy's max_delay, or the back-off) would
  // end past `limits.retry_deadline`, and at once (never POSTing again) when an accepted answer
  // carries no usable poll URL or the POST may have reached APSIS without an answer coming back.
  // `on_attempt` runs before each POST is sent (the job counts attempts in its row).
  boost::asio::awaitable<Submitted> submit(const config::ExportDefinition& definition, const std::string& body,
                                           const std::function<void()>& on_attempt, BudgetWait* wait = nullptr,
                                           const SubmitLimits& limits = {});

  // One GET on the poll URL, its answer read as `field` prescribes. A 200's body streams to
  // `target`. Throws ApsisError if the poll URL is not on the account's origin (the token is never
  // sent elsewhere).
  boost::asio::awaitable<PollAnswer> poll(const std::string& poll_url, config::PollUrlField field,
                                          const config::ExportDefinition& definition, http::BodyTarget& target,
                                          BudgetWait* wait = nullptr);

  const config::Account& account() const { return account_; }
  budget::AccountBudget& budget() { return budget_; }
  const budget::AccountBudget& budget() const { return budget_; }
  // The account differs from this client's in its budget alone (a reload changed the budget).
  bool same_endpoint(const config::Account& account) const;
  void set_budget(const config::AccountBudget& budget);

 private:
  struct CallSpec {
    apsis_one::Call call;
    budget::CallKind budget;
    config::PollUrlField field{config::PollUrlField::file_download_url};
  };
  // Sends with the current token; on a token rejection renews once and sends again.
  boost::asio::awaitable<http::Response> send_authorized(CallSpec call, http::Request request, http::BodyTarget* target,
                                                         BudgetWait* wait);
  // Waits for the budget, sends, and counts the answer; a 429 slows the account.
  boost::asio::awaitable<http::Response> send_counted(CallSpec call, const http::Request& request,
                                                      http::BodyTarget* target, BudgetWait* wait);
  http::Request submit_request(const config::ExportDefinition& definition, const std::string& body) const;

  config::Account account_;  // a copy: the client may outlive the configuration it came from
  config::RetryPolicy retry_;
  NowFunction now_;
  Random& random_;
  metrics::Metrics* metrics_;  // null = not counted
  http::Url base_;
  http::Client http_;
  budget::AccountBudget budget_;
  TokenSource tokens_;
  // As many requests under way as there are connections: when thousands of jobs submit or poll at
  // once, the rest wait for the budget and then here, each holding only its own small request.
  AsyncSemaphore requests_;
};

// The account's budget in the budget module's terms.
budget::Limits budget_limits(const config::AccountBudget& budget);

}  // namespace apsis::apsis_one
