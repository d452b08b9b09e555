// OAuth 2.0 client-credentials tokens for one account: fetched once, shared by every job of the
// account, renewed ahead of expiry and when the API rejects one. The token endpoint is rate limited
// harder than the rest of the API, so concurrent callers wait for one fetch instead of each starting one.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

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
  TokenSource(http::Client& http, budget::AccountBudget& budget, const config::Account& account, const config::RetryPolicy& retry, NowFunction now,
              Random& random, metrics::Metrics* metrics = nullptr);

  // A token valid for a while yet.
  boost::asio::awaitable<std::string> get();
  // The API refused `token`; the next get() fetches a new one unless it was already replaced.
  void reject(const std::string& token);

 private:
  bool usable() const;
  boost::asio::awaitable<void> fetch();
  boost::asio::awaitable<void> fetch_with_retries();
  void accept_token_answer(std::string_view body);

  http::Client& http_;
  budget::AccountBudget& budget_;  // token requests have a budget of their own (10/min documented)
  const config::Account& account_;
  config::RetryPolicy retry_;
  NowFunction now_;
  Random& random_;
  metrics::Metrics* metrics_;  // null = not counted
  std::optional<std::string> token_;
  TimePoint renew_at_{};
  bool fetching_{false};
  boost::asio::steady_timer fetch_done_;  // cancelled to wake everyone waiting for a fetch
};

}  // namespace apsis::apsis_one
