#include "http/client.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <algorithm>
#include <memory>

#include "http/connection.hpp"
#include "util/errors.hpp"

namespace apsis::http {
namespace {

using boost::system::error_code;

constexpr std::size_t kMaxCollectedBody = 1 << 20;  // error/JSON answers; files stream instead
constexpr int kMaxInterimAnswers = 8;                // 1xx answers skipped before the real one

std::string host_header(const Url& url) {
  const bool default_port = (url.is_tls() && url.port == "443") || (!url.is_tls() && url.port == "80");
  const bool v6 = url.host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + url.host + "]" : url.host;
  return default_port ? host : host + ":" + url.port;
}

beast_http::request<beast_http::string_body> build_request(const Request& request, const std::string& user_agent) {
  beast_http::request<beast_http::string_body> out{request.method, request.url.target, 11};
  out.set(beast_http::field::host, host_header(request.url));
  out.set(beast_http::field::user_agent, user_agent);
  for (const auto& [name, value] : request.headers) out.set(name, value);
  out.body() = request.body;
  out.prepare_payload();
  out.keep_alive(true);
  return out;
}

// Big reads for files (fewer syscalls), small ones for JSON and error answers. Sized to the body
// when its length is known: thousands of small answers and files in flight must not each hold a
// big buffer.
std::size_t read_chunk_size(bool file, boost::optional<std::uint64_t> content_length) {
  const std::uint64_t cap = file ? 256 * 1024 : 16 * 1024;
  return static_cast<std::size_t>(content_length ? std::clamp<std::uint64_t>(*content_length, 1024, cap) : cap);
}

// How far one exchange got, for deciding whether it may be sent again.
struct Progress {
  bool request_written{false};  // some bytes of the request went out
  bool header_received{false};
};

// Writes the request and reads the final answer's header, skipping interim 1xx answers (RFC 9110
// 15.2): a 100 Continue is not the answer. 101 is final (no upgrade is ever asked for, so it ends up
// an unknown status).
asio::awaitable<std::unique_ptr<ResponseParser>> send_head(Connection& connection, const Request& request,
                                                           const std::string& user_agent, Milliseconds timeout,
                                                           Progress& progress) {
  auto message = build_request(request, user_agent);
  error_code write_failure;
  progress.request_written = co_await connection.write(message, timeout, write_failure) > 0;
  if (write_failure) throw NetworkError(write_failure, "sending request");
  for (int interim = 0;; ++interim) {
    auto parser = std::make_unique<ResponseParser>();
    parser->body_limit(boost::none);  // files are unbounded; collected bodies are capped below
    co_await connection.read_header(*parser, timeout);
    const unsigned status = parser->get().result_int();
    if (status < 100 || status >= 200 || status == 101) {
      progress.header_received = true;
      co_return parser;
    }
    if (interim == kMaxInterimAnswers)
      throw NetworkError(beast_http::error::bad_status, "reading response header (only interim 1xx answers)");
  }
}

asio::awaitable<void> collect_body(Connection& connection, ResponseParser& parser, Milliseconds timeout,
                                   Response& response) {
  const std::size_t chunk_size = read_chunk_size(false, parser.content_length());
  const auto chunk = std::make_unique_for_overwrite<char[]>(chunk_size);
  while (!parser.is_done()) {
    parser.get().body().data = chunk.get();
    parser.get().body().size = chunk_size;
    const auto ec = co_await connection.read_body(parser, timeout);
    if (ec) throw NetworkError(ec, "reading response body");
    const std::size_t got = chunk_size - parser.get().body().size;
    response.body_bytes += got;
    if (response.body.size() < kMaxCollectedBody)
      response.body.append(chunk.get(), std::min(got, kMaxCollectedBody - response.body.size()));
  }
}

}  // namespace

struct BodyReader::Parser {
  std::unique_ptr<ResponseParser> parser;
};

BodyReader::BodyReader(std::shared_ptr<ConnectionPool> pool, std::string origin,
                       std::unique_ptr<Connection> connection, std::unique_ptr<Parser> parser, Milliseconds timeout,
                       bool end_framed)
    : pool_(std::move(pool)),
      origin_(std::move(origin)),
      connection_(std::move(connection)),
      parser_(std::move(parser)),
      timeout_(timeout),
      chunk_size_(read_chunk_size(true, parser_->parser->content_length())),
      end_framed_(end_framed) {}

// Unfinished, the connection goes with the reader: the rest of the body is still on its way.
BodyReader::~BodyReader() = default;

asio::awaitable<std::span<const char>> BodyReader::read_some() {
  if (done_) co_return std::span<const char>();
  if (failure_) throw NetworkError(failure_, "reading response body");
  if (!chunk_) chunk_ = std::make_unique_for_overwrite<char[]>(chunk_size_);
  auto& parser = *parser_->parser;
  while (!parser.is_done()) {
    parser.get().body().data = chunk_.get();
    parser.get().body().size = chunk_size_;
    if (const auto ec = co_await connection_->read_body(parser, timeout_)) {
      failure_ = ec;
      connection_.reset();  // in an unknown state: never reused
      held_.reset();
    }
    const std::size_t got = chunk_size_ - parser.get().body().size;
    if (got > 0) {
      // The bytes before a failure are handed out first; the next read reports the failure.
      bytes_read_ += got;
      co_return std::span<const char>(chunk_.get(), got);
    }
    if (failure_) throw NetworkError(failure_, "reading response body");
  }
  finish();
  co_return std::span<const char>();
}

void BodyReader::finish() {
  done_ = true;
  held_.reset();
  chunk_.reset();
  if (parser_->parser->keep_alive())
    pool_->release(origin_, std::move(connection_));
  else
    connection_.reset();
}

Client::Client(asio::any_io_executor executor, Options options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      pool_(std::make_shared<ConnectionPool>(executor_, options_)) {}

Client::~Client() = default;

Client::Stats Client::stats() const { return pool_->stats; }

std::size_t Client::idle(const std::string& origin) const {
  const auto found = pool_->origins.find(origin);
  return found == pool_->origins.end() ? 0 : found->second->idle.size();
}

asio::awaitable<Response> Client::send(const Request& request, ReadBody read_body) {
  const auto pool = pool_;  // the client may go while we wait; its connections stay consistent
  const auto timeout = request.timeout.value_or(options_.timeout);
  const auto origin = request.url.origin();
  // A POST that was written whole may have arrived and been acted on (APSIS creates an export per
  // submit), however the connection ends: it never goes on a reused connection, where a server's
  // idle close would tempt a second try.
  const bool idempotent = request.method == beast_http::verb::get || request.method == beast_http::verb::head;
  for (;;) {
    bool reused = false;
    auto connection = co_await pool->acquire(request.url, idempotent, reused, timeout);
    Progress progress;
    std::unique_ptr<ResponseParser> parser;
    try {
      parser = co_await send_head(*connection, request, options_.user_agent, timeout, progress);
    } catch (const NetworkError& error) {
      // The server may have closed an idle keep-alive connection just before we used it: that
      // says nothing about the request, so a GET is tried once more on a fresh connection.
      if (reused && !is_cancellation(error.code())) continue;
      if (progress.request_written) throw error.after_sending();
      throw;
    }
    Response response;
    response.status = parser->get().result_int();
    response.headers = static_cast<const beast_http::fields&>(parser->get());
    response.end_framed = parser->content_length().has_value() || parser->chunked();
    if (read_body == ReadBody::stream_if_ok && response.status == 200) {
      response.reader.reset(new BodyReader(pool, origin, std::move(connection),
                                           std::make_unique<BodyReader::Parser>(std::move(parser)), timeout,
                                           response.end_framed));
      co_return response;
    }
    try {
      co_await collect_body(*connection, *parser, timeout, response);
    } catch (const NetworkError& error) {
      throw error.after_sending();
    }
    if (parser->keep_alive()) pool->release(origin, std::move(connection));
    co_return response;
  }
}

ClientPool::ClientPool(asio::any_io_executor executor, Client::Options defaults)
    : executor_(std::move(executor)), defaults_(std::move(defaults)) {}

std::shared_ptr<Client> ClientPool::client_for(const std::optional<std::filesystem::path>& ca_file) {
  std::erase_if(clients_, [](const auto& entry) { return entry.second.expired(); });
  std::string key;
  if (ca_file) {
    std::error_code ec;
    const auto modified = std::filesystem::last_write_time(*ca_file, ec);
    key = ca_file->string() + '\n' + (ec ? "?" : std::to_string(modified.time_since_epoch().count()));
  }
  if (const auto known = clients_.find(key); known != clients_.end())
    if (auto client = known->second.lock()) return client;
  auto options = defaults_;
  options.ca_file = ca_file;
  auto client = std::make_shared<Client>(executor_, std::move(options));
  clients_[key] = client;
  return client;
}

bool is_cancellation(const error_code& ec) { return apsis::is_cancellation(ec); }

bool is_transient_network_error(const error_code& ec) {
  // Certificate and protocol failures will not heal by retrying; a TLS stream cut short
  // (stream_truncated, its own category) is an ordinary cut connection.
  return ec.category() != asio::error::get_ssl_category();
}

}  // namespace apsis::http
