// The APSIS One API as the job lifecycle needs it: submit an export, poll its URL. Adds the bearer
// token (only ever to the account's own origin), renews it once when the API rejects it, and retries
// submits through 429/5xx/network trouble. Polls are single attempts: the job decides when to poll again.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>

#include "apsis/protocol.hpp"
#include "apsis/token_source.hpp"
#include "config/config.hpp"
#include "http/client.hpp"
#include "jobs/backoff.hpp"
#include "metrics/metrics.hpp"
#include "util/async_semaphore.hpp"

namespace apsis::apsis_one {

struct Submitted {
  std::string poll_url;
  unsigned status{0};
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
              NowFunction now, jobs::Random& random, metrics::Metrics* metrics = nullptr);

  // POSTs the export's request; throws ApsisError when it is refused or retries run out.
  // `on_attempt` runs before each POST is sent (the job counts attempts in its row).
  boost::asio::awaitable<Submitted> submit(const config::ExportDefinition& definition,
                                           const std::function<void()>& on_attempt);

  // One GET on the poll URL. A 200's body streams to `target`. Throws ApsisError if the poll URL is
  // not on the account's origin (the token is never sent elsewhere).
  boost::asio::awaitable<PollAnswer> poll(const std::string& poll_url, const config::ExportDefinition& definition,
                                          http::BodyTarget& target);

  const config::Account& account() const { return account_; }

 private:
  // Sends with the current token; on a token rejection renews once and sends again.
  boost::asio::awaitable<http::Response> send_authorized(Call call, http::Request request, http::BodyTarget* target);
  boost::asio::awaitable<http::Response> send_counted(Call call, const http::Request& request, http::BodyTarget* target);
  http::Request submit_request(const config::ExportDefinition& definition) const;

  config::Account account_;  // a copy: the client may outlive the configuration it came from
  config::RetryPolicy retry_;
  NowFunction now_;
  jobs::Random& random_;
  metrics::Metrics* metrics_;  // null = not counted
  http::Url base_;
  http::Client http_;
  TokenSource tokens_;
  // As many requests under way as there are connections: when thousands of jobs submit or poll at
  // once, the rest wait here before building a request, instead of each holding one in memory.
  AsyncSemaphore requests_;
};

// The accepted export's poll URL from a submit answer: JSON `poll_url`, else the Location header.
std::optional<std::string> find_poll_url(const http::Response& response, std::string* why);

}  // namespace apsis::apsis_one
