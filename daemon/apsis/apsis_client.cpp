#include "apsis/apsis_client.hpp"

#include <boost/json.hpp>

#include "apsis/errors.hpp"
#include "util/sleep.hpp"

namespace apsis::apsis_one {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using boost::beast::http::verb;

constexpr std::string_view kCsv = "text/csv;charset=UTF-8;header=present";
constexpr std::string_view kXlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

http::Url base_url_of(const config::Account& account) {
  std::string error;
  auto url = http::parse_url(account.base_url, &error);
  if (!url) throw ApsisError("account '" + account.name + "': base_url: " + error);
  return *url;
}

http::Client::Options client_options(const config::Account& account) {
  http::Client::Options options;
  options.ca_file = account.ca_file;
  options.timeout = account.request_timeout;
  options.max_connections = account.max_connections;
  return options;
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

std::optional<std::string> find_poll_url(const http::Response& response, std::string* why) {
  boost::system::error_code ec;
  const auto body = json::parse(response.body, ec);
  if (!ec && body.is_object()) {
    if (const auto* url = body.as_object().if_contains("poll_url"); url && url->is_string())
      return std::string(url->as_string());
  }
  if (const auto location = response.headers[boost::beast::http::field::location]; !location.empty())
    return std::string(location);
  if (why) {
    if (ec || !body.is_object()) {
      *why = "the submit answer is not a JSON object and has no Location header (body starts: " +
             api_message(response.body.substr(0, 80)) + ")";
    } else {
      std::string fields;
      for (const auto& field : body.as_object()) fields += (fields.empty() ? "" : ", ") + std::string(field.key());
      *why = "the submit answer has no poll_url field and no Location header (fields: " +
             (fields.empty() ? std::string("none") : fields) + ")";
    }
  }
  return std::nullopt;
}

ApsisClient::ApsisClient(asio::any_io_executor executor, const config::Account& account,
                         const config::RetryPolicy& retry, NowFunction now, jobs::Random& random,
                         metrics::Metrics* metrics)
    : account_(account),
      retry_(retry),
      now_(now),
      random_(random),
      metrics_(metrics),
      base_(base_url_of(account)),
      http_(std::move(executor), client_options(account)),
      tokens_(http_, account_, retry, now, random, metrics),
      requests_(static_cast<std::size_t>(std::max(0, account.max_connections))) {}

asio::awaitable<http::Response> ApsisClient::send_authorized(Call call, http::Request request,
                                                             http::BodyTarget* target) {
  std::string token = co_await tokens_.get();
  set_bearer(request, token);
  auto response = co_await send_counted(call, request, target);
  if (classify(call, response.status, response.body) != Verdict::token_rejected) co_return response;
  tokens_.reject(token);
  token = co_await tokens_.get();
  set_bearer(request, token);
  co_return co_await send_counted(call, request, target);
}

asio::awaitable<http::Response> ApsisClient::send_counted(Call call, const http::Request& request,
                                                          http::BodyTarget* target) {
  const auto kind = call == Call::submit ? metrics::Request::submit : metrics::Request::poll;
  if (metrics_) ++(kind == metrics::Request::submit ? metrics_->submissions : metrics_->polls);
  auto response = co_await http_.send(request, target);
  if (metrics_) metrics_->count_response(kind, response.status);
  co_return response;
}

http::Request ApsisClient::submit_request(const config::ExportDefinition& definition) const {
  http::Request request;
  request.method = verb::post;
  request.url = base_;
  request.url.target = account_.export_paths.at(definition.kind);
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  request.body = definition.request_json;
  return request;
}

asio::awaitable<Submitted> ApsisClient::submit(const config::ExportDefinition& definition,
                                               const std::function<void()>& on_attempt) {
  std::string last_problem;
  for (int attempt = 0; attempt < retry_.max_attempts; ++attempt) {
    std::optional<Milliseconds> retry_after;
    on_attempt();
    try {
      const auto in_flight = co_await requests_.acquire();  // released before any back-off sleep
      const auto response = co_await send_authorized(Call::submit, submit_request(definition), nullptr);
      const auto verdict = classify(Call::submit, response.status, response.body);
      if (verdict == Verdict::success) {
        std::string why;
        auto poll_url = find_poll_url(response, &why);
        if (!poll_url) throw ApsisError("APSIS One accepted the export but " + why, response.status);
        co_return Submitted{*poll_url, response.status};
      }
      last_problem = describe_failure(Call::submit, response.status, response.body);
      if (verdict != Verdict::transient && verdict != Verdict::rate_limited)
        throw ApsisError(last_problem, response.status);
      retry_after = parse_retry_after(response.headers["Retry-After"], now_());
    } catch (const boost::system::system_error& e) {
      if (http::is_cancellation(e.code())) throw;
      if (!http::is_transient_network_error(e.code())) throw ApsisError(std::string("export submit: ") + e.what());
      last_problem = std::string("export submit: ") + e.what();
    }
    if (attempt + 1 < retry_.max_attempts)
      co_await sleep_for(retry_after.value_or(jobs::backoff_delay(retry_.backoff, attempt, random_)));
  }
  throw ApsisError("gave up after " + std::to_string(retry_.max_attempts) + " submit attempts; last: " + last_problem);
}

asio::awaitable<PollAnswer> ApsisClient::poll(const std::string& poll_url, const config::ExportDefinition& definition,
                                              http::BodyTarget& target) {
  std::string error;
  const auto url = http::resolve_reference(base_, poll_url, &error);
  if (!url) throw ApsisError("APSIS One gave an unusable poll URL: " + error);
  if (url->origin() != base_.origin())
    throw ApsisError("the poll URL is on " + url->origin() + ", not on the account's origin " + base_.origin() +
                     "; refusing to send the API token there");

  const auto in_flight = co_await requests_.acquire();
  http::Request request;
  request.url = *url;
  request.headers = {
      {"Accept", std::string(definition.format == config::FileFormat::xlsx ? kXlsx : kCsv)},
      {"Accept-Encoding", definition.compression == config::Compression::gzip ? "gzip" : "identity"}};

  bool body_started = false;
  http::BodyTarget tracked{[&](const http::Response& head) {
                             body_started = true;
                             target.begin(head);
                           },
                           target.data};
  PollAnswer answer;
  try {
    answer.response = co_await send_authorized(Call::poll, std::move(request), &tracked);
  } catch (const boost::system::system_error& e) {
    if (http::is_cancellation(e.code())) throw;
    if (!http::is_transient_network_error(e.code())) throw ApsisError(std::string("poll: ") + e.what());
    answer.verdict = Verdict::transient;
    answer.body_cut = body_started;
    answer.status = body_started ? 200 : 0;
    answer.detail = body_started ? std::string("download cut short: ") + e.what() : std::string("poll: ") + e.what();
    co_return answer;
  }
  const auto& response = answer.response;
  answer.status = response.status;
  answer.verdict = classify(Call::poll, response.status, response.body);
  if (answer.verdict != Verdict::success && answer.verdict != Verdict::in_progress)
    answer.detail = describe_failure(Call::poll, response.status, response.body);
  if (answer.verdict == Verdict::rate_limited || answer.verdict == Verdict::transient)
    answer.retry_after = parse_retry_after(response.headers["Retry-After"], now_());
  co_return answer;
}

}  // namespace apsis::apsis_one
