// OAuth 2.0 client-credentials tokens for one account: fetched once, shared by every job of the
// account, renewed ahead of expiry and when the API rejects one. The token endpoint is rate limited
// harder than the rest of the API (10/min), so there is one fetch at a time, and its outcome is
// shared: every caller waiting for it gets its token or its error, and after a failure every get()
// until the next retry time gets that same error at once, without a request.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "budget/account_budget.hpp"
#include "config/config.hpp"
#include "http/client.hpp"
#include "util/backoff.hpp"
#include "metrics/metrics.hpp"
#include "util/time.hpp"

namespace apsis::apsis_one {

class TokenSource {
 public:
  // `account` and `budget` must outlive the source.
  TokenSource(http::Client& http, budget::AccountBudget& budget, const config::Account& account,
              const config::RetryPolicy& retry, NowFunction now, Random& random,
              metrics::Metrics* metrics = nullptr);
  ~TokenSource();

  // A token valid for a while yet. Throws TokenUnavailable (apsis/errors.hpp) while the endpoint
  // cannot give one for now, ApsisError when it refuses the credentials (shared the same way).
  boost::asio::awaitable<std::string> get();
  // The API refused `token`; the next get() fetches a new one unless it was already replaced.
  void reject(const std::string& token);

  std::uint64_t requests() const { return requests_; }  // token requests sent

 private:
  struct Fetch;
  bool usable() const;
  boost::asio::awaitable<void> fetch(Fetch& outcome);
  boost::asio::awaitable<void> request_token();
  void hold_failure(std::optional<Milliseconds> asked);
  void accept_token_answer(std::string_view body);

  http::Client& http_;
  budget::AccountBudget& budget_;  // token requests have a budget of their own
  const config::Account& account_;
  config::RetryPolicy retry_;
  NowFunction now_;
  Random& random_;
  metrics::Metrics* metrics_;  // null = not counted
  std::optional<std::string> token_;
  TimePoint renew_at_{};
  std::exception_ptr failure_;  // the last fetch's error, given to every caller until retry_at_
  TimePoint retry_at_{};
  int failures_in_a_row_{0};
  std::shared_ptr<Fetch> fetching_;  // the fetch under way, if any
  std::uint64_t requests_{0};
};

}  // namespace apsis::apsis_one
