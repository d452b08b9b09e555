// The APSIS One export API (export_api.hpp) over HTTP for one account: adds the bearer token (only
// ever to the account's own origin), renews it once when the API rejects it, and retries submits
// through 429/5xx/network trouble. Polls are single attempts: the job decides when to poll again.
// Every request goes out with a ticket of the account's budget (budget/account_budget.hpp), shared
// by all jobs of the account; a 429 slows the whole account down. The HTTP client, with its idle
// connections, is shared by every account on the same trust configuration (http::ClientPool).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <optional>
#include <string>

#include "apsis/export_api.hpp"
#include "apsis/protocol.hpp"
#include "apsis/token_source.hpp"
#include "budget/account_budget.hpp"
#include "config/config.hpp"
#include "http/client.hpp"
#include "util/backoff.hpp"
#include "metrics/metrics.hpp"
#include "util/async_semaphore.hpp"

namespace apsis::apsis_one {

class ApsisClient final : public ExportApi {
 public:
  // Throws ApsisError if the account's base_url is unusable.
  ApsisClient(std::shared_ptr<http::Client> http, const config::Account& account, const config::RetryPolicy& retry,
              NowFunction now, Random& random, metrics::Metrics* metrics = nullptr);

  boost::asio::awaitable<Result<Submitted, ApiFailure>> submit(
      const config::ExportDefinition& definition, const std::string& body,
      const std::function<boost::asio::awaitable<void>()>& on_attempt, const SubmitLimits& limits,
      budget::AccountBudget::Ticket first) override;
  // A 200's body stays unread in PollAnswer::body, holding one of the account's max_connections
  // request slots until it is drained or dropped.
  boost::asio::awaitable<Result<PollAnswer, ApiFailure>> poll(const std::string& poll_url, config::PollUrlField field,
                                                              const config::ExportDefinition& definition,
                                                              budget::AccountBudget::Ticket ticket) override;
  budget::AccountBudget& budget() override { return budget_; }
  const budget::AccountBudget& budget() const { return budget_; }

  const config::Account& account() const { return account_; }
  const http::Client& http() const { return *http_; }
  // The account differs from this client's in its budget alone (a reload changed the budget).
  bool same_endpoint(const config::Account& account) const;
  void set_budget(const config::AccountBudget& budget);

 private:
  struct CallSpec {
    apsis_one::Call call;
    budget::CallKind budget;
    config::PollUrlField field{config::PollUrlField::file_download_url};
  };
  // Sends with the current token; on a token rejection renews once and sends again. A ticket that
  // goes unused (no token) leaves the budget uncounted. `before_sending` (may be null) runs once the
  // token is in hand, before the first send.
  boost::asio::awaitable<http::Response> send_authorized(CallSpec call, http::Request request,
                                                         budget::AccountBudget::Ticket ticket, BudgetWait* wait,
                                                         const std::function<boost::asio::awaitable<void>()>* before_sending);
  // Sends with `ticket` (or one acquired here) and counts the answer; a 429 slows the account.
  boost::asio::awaitable<http::Response> send_counted(CallSpec call, const http::Request& request,
                                                      budget::AccountBudget::Ticket ticket, BudgetWait* wait);
  http::Request submit_request(const config::ExportDefinition& definition, const std::string& body) const;

  config::Account account_;  // a copy: the client may outlive the configuration it came from
  config::RetryPolicy retry_;
  NowFunction now_;
  Random& random_;
  metrics::Metrics* metrics_;  // null = not counted
  http::Url base_;
  std::shared_ptr<http::Client> http_;
  budget::AccountBudget budget_;
  TokenSource tokens_;
  // The account's max_connections: requests under way, a download being drained included. When
  // thousands of jobs submit or poll at once, the rest wait here, each holding only its small
  // request. Shared with the body readers that hold a slot, which may outlive the client.
  std::shared_ptr<AsyncSemaphore> requests_;
};

// The account's budget in the budget module's terms.
budget::Limits budget_limits(const config::AccountBudget& budget);

}  // namespace apsis::apsis_one
