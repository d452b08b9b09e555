// The APSIS One export API as a job's steps use it: submit an export, poll its URL. ApsisClient
// speaks it over HTTP; a unit test scripts it. Single-threaded: use from the event loop.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "apsis/protocol.hpp"
#include "budget/account_budget.hpp"
#include "config/config.hpp"
#include "http/client.hpp"
#include "util/result.hpp"
#include "util/time.hpp"

namespace apsis::apsis_one {

// Why a submit or a poll failed in a way that ends the job: the client already retried what heals.
// The message is written for the job row's `error` column and the log, and never contains a secret
// or token. The kind says which failure it was, for callers and tests that tell them apart.
struct ApiFailure {
  enum class Kind {
    refused,         // for good: 400, 413, a 403 with a fresh token, credentials the token endpoint refuses
    bad_answer,      // accepted (2xx) without a usable poll URL; never submitted again
    maybe_sent,      // the POST went out and no answer came back: an export may exist, so never sent again
    network,         // network trouble that retrying does not heal (a certificate, an unknown host)
    past_deadline,   // waiting to retry would pass the export's next scheduled slot
    gave_up,         // every attempt failed
    bad_url,         // the poll URL cannot be parsed
    foreign_origin,  // the poll URL is not on the account's origin: the token is never sent there
  };
  Kind kind{Kind::refused};
  std::string message;
  std::optional<unsigned> status;  // the HTTP status that refused it, when one did
};

// Lets Result<T, ApiFailure>::value() throw the failure's message (util/result.hpp).
[[noreturn]] inline void throw_exception_from_error(const ApiFailure& failure, const boost::source_location&) {
  throw_failure(failure);
}

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
// network trouble, no token for now: the job logs it), and give up rather than wait past a deadline
// (the export's next scheduled slot). Waits for the account's budget are not retry waits and never
// count.
struct SubmitLimits {
  std::function<void(const std::string& message)> on_retry;  // null = not reported
  std::optional<TimePoint> retry_deadline;
  BudgetWait* budget_wait{nullptr};  // set while an attempt waits for the budget; null = not shown
};

struct PollAnswer {
  Verdict verdict{Verdict::transient};
  unsigned status{0};                     // 0 when no answer arrived (network error, no token)
  std::string detail;                     // why, for the job row, when not a success
  std::optional<Milliseconds> retry_after;
  // A 200 whose body broke off: fetch again from the same URL. Never set by poll(), whose answer
  // ends at the head; the download step sets it when it finds the body cut or unpublishable.
  bool body_cut{false};
  http::Response response;                // the head (status, headers); a collected body otherwise
  // On success, the file: unread, on the connection that carries it, for the download step to drain.
  std::unique_ptr<http::BodySource> body;
};

class ExportApi {
 public:
  virtual ~ExportApi() = default;

  // POSTs `body` as the export's request, retrying 429, 5xx, network trouble before the request
  // went out and a token endpoint that cannot give a token for now. Returns an ApiFailure when
  // refused, when retries run out, when a retry's wait would end past `limits.retry_deadline`, and
  // at once (never POSTing again) when an accepted answer has no usable poll URL or the POST may have
  // reached APSIS without an answer coming back. Throws only for cancellation (shutdown) and what
  // `on_attempt` throws. `on_attempt` runs before each POST (once the
  // token is in hand: an attempt that found no token sent nothing and is not counted). `first` is a
  // budget ticket the caller already holds for the first attempt (empty = acquire it here); later
  // attempts and a resend after a token rejection acquire their own.
  virtual boost::asio::awaitable<Result<Submitted, ApiFailure>> submit(
      const config::ExportDefinition& definition, const std::string& body,
      const std::function<boost::asio::awaitable<void>()>& on_attempt, const SubmitLimits& limits,
      budget::AccountBudget::Ticket first) = 0;

  // One GET of the poll URL, its answer read as `field` prescribes, with a ticket the caller already
  // holds (empty = acquire it here); the ticket is released when the answer's head arrives. A token
  // rejection renews the token once and sends again (acquiring a second ticket). On success (200)
  // PollAnswer::body holds the file unread. Network trouble and "no token for now" are answers
  // (transient, status 0). Returns an ApiFailure if the poll URL is unusable or not on the account's
  // origin (the token is never sent elsewhere), the token is refused for good, or the network
  // fails in a way retrying does not heal. Throws only for cancellation (shutdown).
  virtual boost::asio::awaitable<Result<PollAnswer, ApiFailure>> poll(const std::string& poll_url,
                                                                      config::PollUrlField field,
                                                                      const config::ExportDefinition& definition,
                                                                      budget::AccountBudget::Ticket ticket) = 0;

  virtual budget::AccountBudget& budget() = 0;
};

}  // namespace apsis::apsis_one
