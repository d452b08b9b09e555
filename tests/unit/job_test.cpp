// A job's steps on a scripted API and a virtual clock: every path from submit to a final state,
// with the real job table, store writer and file sink under a temporary directory.
#include <doctest/doctest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>

#include <deque>
#include <variant>

#include "jobs/job_steps.hpp"
#include "store/sqlite_job_store.hpp"
#include "temp_dir.hpp"

namespace apsis::jobs {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using apsis_one::Verdict;
using store::JobState;

const TimePoint t0 = *parse_iso8601("2026-11-30T06:00:00.000Z");
constexpr std::string_view kCsv = "text/csv;charset=UTF-8;header=present";

// A 200's body in scripted pieces; a cut throws what a broken connection throws.
class ScriptedBody : public http::BodySource {
 public:
  ScriptedBody(std::vector<std::string> pieces, bool cut) : pieces_(std::move(pieces)), cut_(cut) {}
  asio::awaitable<std::span<const char>> read_some() override {
    if (next_ < pieces_.size()) {
      const auto& piece = pieces_[next_++];
      co_return std::span<const char>(piece.data(), piece.size());
    }
    if (cut_) throw http::NetworkError(boost::beast::http::error::partial_message, "reading response body");
    co_return std::span<const char>();
  }
  bool end_framed() const override { return true; }

 private:
  std::vector<std::string> pieces_;
  bool cut_;
  std::size_t next_{0};
};

struct File {
  std::string content;
  bool cut{false};
};
struct Hang {};  // never answers: the step waits until it is cancelled
using PollScript = std::variant<apsis_one::Verdict, File, apsis_one::ApiFailure, Hang>;
using SubmitScript = std::variant<std::string /* poll URL */, apsis_one::ApiFailure, Hang>;

// APSIS One as a script: each submit and each poll takes the next entry.
class ScriptedApi : public apsis_one::ExportApi {
 public:
  explicit ScriptedApi(asio::any_io_executor executor) : budget_(executor, {}), hang_(executor) {}

  asio::awaitable<Result<apsis_one::Submitted, apsis_one::ApiFailure>> submit(
      const config::ExportDefinition&, const std::string&, const std::function<asio::awaitable<void>()>& on_attempt,
      const apsis_one::SubmitLimits&, budget::AccountBudget::Ticket) override {
    co_await on_attempt();
    REQUIRE_FALSE(submits.empty());
    auto next = submits.front();
    submits.pop_front();
    ++submitted;
    if (std::holds_alternative<Hang>(next)) co_await wait_forever();
    if (const auto* refused = std::get_if<apsis_one::ApiFailure>(&next)) co_return *refused;
    co_return apsis_one::Submitted{{std::get<std::string>(next), config::PollUrlField::file_download_url, ""}, 201};
  }

  asio::awaitable<Result<apsis_one::PollAnswer, apsis_one::ApiFailure>> poll(
      const std::string& url, config::PollUrlField, const config::ExportDefinition&, budget::AccountBudget::Ticket) override {
    polled.push_back(url);
    REQUIRE_FALSE(polls.empty());
    auto next = polls.front();
    polls.pop_front();
    apsis_one::PollAnswer answer;
    if (std::holds_alternative<Hang>(next)) co_await wait_forever();
    if (const auto* failure = std::get_if<apsis_one::ApiFailure>(&next)) co_return *failure;
    if (const auto* file = std::get_if<File>(&next)) {
      answer.verdict = Verdict::success;
      answer.status = 200;
      answer.response.status = 200;
      answer.response.headers.set(boost::beast::http::field::content_type, kCsv);
      answer.body = std::make_unique<ScriptedBody>(std::vector<std::string>{file->content}, file->cut);
      co_return std::move(answer);
    }
    answer.verdict = std::get<Verdict>(next);
    answer.status = answer.verdict == Verdict::in_progress ? 404
                    : answer.verdict == Verdict::export_failing ? 503
                    : answer.verdict == Verdict::gone          ? 410
                    : answer.verdict == Verdict::transient     ? 0
                                                               : 400;
    answer.detail = "scripted " + std::to_string(answer.status);
    co_return std::move(answer);
  }

  budget::AccountBudget& budget() override { return budget_; }

  std::deque<SubmitScript> submits;
  std::deque<PollScript> polls;
  std::vector<std::string> polled;
  int submitted{0};

 private:
  asio::awaitable<void> wait_forever() {
    hang_.expires_at(asio::steady_timer::time_point::max());
    co_await hang_.async_wait(asio::use_awaitable);
  }
  budget::AccountBudget budget_;
  asio::steady_timer hang_;
};

// One job, driven as the dispatcher drives it, on a clock that jumps to each next poll.
struct JobRig {
  TempDir dir;
  asio::io_context io;
  store::SqliteJobStore store{store::SqliteJobStore::open(dir.path() / "jobs.sqlite3")};
  store::StoreWriter writer{io.get_executor(), store, 10ms, {.first_retry = 5ms, .max_retry = 20ms, .seed = 1, .report = {}}};
  TimePoint now{t0};
  Random random{42};
  std::string log_text;
  FILE* log_file{::fmemopen(nullptr, 1 << 16, "w")};
  Logger log{log_file, {.threshold = Level::debug}};
  std::shared_ptr<config::Config> config = [this] {
    auto c = std::make_shared<config::Config>();
    c->output_dir = dir.path() / "out";
    std::filesystem::create_directories(c->output_dir);
    return c;
  }();
  std::shared_ptr<config::ExportDefinition> definition = [] {
    auto d = std::make_shared<config::ExportDefinition>();
    d->name = "dupes";
    d->account = "main";
    d->manifest = false;
    return d;
  }();
  ScriptedApi api{io.get_executor()};
  ActiveJob job;
  int steps{0};

  JobRig() = default;
  ~JobRig() { std::fclose(log_file); }

  JobContext context() {
    return {io.get_executor(), store, writer, config, [this] { return now; }, random, log, nullptr, nullptr, nullptr};
  }

  void create() {
    job.row = to_job_row(store.create("dupes", t0, "{}", t0));
    job.definition = definition;
  }

  // Runs one step to its decision; nullopt when it was cancelled.
  std::optional<Decision> step(asio::cancellation_signal* cancel = nullptr) {
    std::optional<Decision> decision;
    std::exception_ptr error;
    asio::cancellation_signal unused;
    asio::co_spawn(io, run_step(context(), job, api, {}),
                   asio::bind_cancellation_slot((cancel ? cancel : &unused)->slot(),
                                                [&](std::exception_ptr e, Decision d) {
                                                  error = e;
                                                  if (!e) decision = std::move(d);
                                                }));
    io.restart();
    try {
      io.run();
    } catch (const std::exception& e) {
      const std::string what = e.what();
      FAIL(what);
    }
    ++steps;
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const boost::system::system_error& e) {
        REQUIRE(e.code() == asio::error::operation_aborted);
      }
    }
    return decision;
  }

  // Steps until the job finishes, jumping the clock to each next poll.
  Decision run_to_end() {
    for (int i = 0; i < 50; ++i) {
      auto decision = step();
      REQUIRE(decision);
      job.row = decision->row;
      if (decision->action == Action::finish) return *decision;
      if (decision->action == Action::poll && decision->row.next_poll_at) now = std::max(now, *decision->row.next_poll_at);
    }
    FAIL("the job did not finish in 50 steps");
    return {};
  }

  store::Job row() {
    asio::co_spawn(io, writer.flush(), [](std::exception_ptr) {});
    io.restart();
    io.run();
    return *store.find(job.row.id);
  }
};

}  // namespace

TEST_CASE("job: submit, 404, 503, 200 → the file is published and the row says so") {
  JobRig rig;
  rig.create();
  rig.api.submits = {std::string("https://api.example/exports/1")};
  rig.api.polls = {Verdict::in_progress, Verdict::export_failing, File{"id,email\n1,a@example.com\n"}};
  const auto decision = rig.run_to_end();
  CHECK(decision.row.state == JobState::succeeded);
  const auto row = rig.row();
  CHECK(row.state == JobState::succeeded);
  CHECK(row.polls == 3);
  CHECK(row.submit_attempts == 1);
  CHECK(row.download_attempts == 1);
  CHECK(row.polls_503_in_a_row == 0);
  REQUIRE(row.output_path);
  CHECK(read_file(*row.output_path) == "id,email\n1,a@example.com\n");
  CHECK(row.bytes == 25);
  CHECK(row.content_type == std::string(kCsv));
  CHECK_FALSE(row.next_poll_at);
  // The 503 was followed on the short retry back-off, not the poll back-off, and the clock moved.
  CHECK(rig.now > t0);
}

TEST_CASE("job: three 503s in a row → the export failed, a new one is requested, and its file published") {
  JobRig rig;
  rig.create();
  rig.api.submits = {std::string("https://api.example/exports/1"), std::string("https://api.example/exports/2")};
  rig.api.polls = {Verdict::export_failing, Verdict::export_failing, Verdict::export_failing, File{"id\n1\n"}};
  const auto decision = rig.run_to_end();
  CHECK(decision.row.state == JobState::succeeded);
  const auto row = rig.row();
  CHECK(row.resubmits == 1);
  CHECK(row.previous_poll_url == "https://api.example/exports/1");
  CHECK(row.resubmit_reason->find("503 3 times in a row") != std::string::npos);
  CHECK(rig.api.polled.back() == "https://api.example/exports/2");
  CHECK(rig.api.submitted == 2);
}

TEST_CASE("job: 410 with no resubmit left → expired") {
  JobRig rig;
  rig.definition->max_resubmits = 0;
  rig.create();
  rig.api.submits = {std::string("https://api.example/exports/1")};
  rig.api.polls = {Verdict::in_progress, Verdict::gone};
  const auto decision = rig.run_to_end();
  CHECK(decision.row.state == JobState::expired);
  const auto row = rig.row();
  CHECK(row.state == JobState::expired);
  CHECK(row.error == "scripted 410");
  CHECK(row.finished_at == rig.now);
}

TEST_CASE("job: the URL's day ends while waiting → resubmitted once, then expired") {
  JobRig rig;
  rig.create();
  rig.api.submits = {std::string("https://api.example/exports/1"), std::string("https://api.example/exports/2")};
  rig.api.polls = {Verdict::in_progress, Verdict::in_progress};
  auto decision = rig.step();  // submit
  REQUIRE(decision);
  rig.job.row = decision->row;
  rig.now = t0 + 25h;  // the budget gave this job no turn for a day
  decision = rig.step();
  REQUIRE(decision);
  CHECK(decision->action == Action::submit);
  CHECK(decision->row.resubmits == 1);
  CHECK(rig.api.polled.empty());  // an expired URL is never polled
  rig.job.row = decision->row;
  decision = rig.step();  // the second submit
  rig.job.row = decision->row;
  rig.now = t0 + 50h;
  decision = rig.step();
  REQUIRE(decision);
  CHECK(decision->row.state == JobState::expired);
  CHECK(rig.row().error->find("validity ended") != std::string::npos);
}

TEST_CASE("job: no token / network trouble on a poll → polled again, not failed") {
  JobRig rig;
  rig.create();
  rig.api.submits = {std::string("https://api.example/exports/1")};
  rig.api.polls = {Verdict::transient, Verdict::transient, File{"id\n"}};
  CHECK(rig.run_to_end().row.state == JobState::succeeded);
  CHECK(rig.row().polls == 3);
}

TEST_CASE("job: a refused submit fails the job with the reason") {
  JobRig rig;
  rig.create();
  rig.api.submits = {apsis_one::ApiFailure{apsis_one::ApiFailure::Kind::refused, "400 Bad Request: unknown attribute", 400u}};
  const auto decision = rig.run_to_end();
  CHECK(decision.row.state == JobState::failed);
  const auto row = rig.row();
  CHECK(row.error == "400 Bad Request: unknown attribute");
  CHECK(row.last_http_status == 400);
  CHECK(row.submit_attempts == 1);
}

TEST_CASE("job: a submit that gave up fails the job with the last answer's status") {
  JobRig rig;
  rig.create();
  rig.api.submits = {apsis_one::ApiFailure{apsis_one::ApiFailure::Kind::gave_up,
                                           "gave up after 3 submit attempts; last: 503 Service Unavailable", 503u}};
  CHECK(rig.run_to_end().row.state == JobState::failed);
  const auto row = rig.row();
  CHECK(row.error == "gave up after 3 submit attempts; last: 503 Service Unavailable");
  CHECK(row.last_http_status == 503);
}

TEST_CASE("job: a poll URL the client refuses fails the job with the reason, keeping the last status") {
  JobRig rig;
  rig.create();
  rig.api.submits = {std::string("https://other.example/exports/1")};
  rig.api.polls = {apsis_one::ApiFailure{apsis_one::ApiFailure::Kind::foreign_origin,
                                         "the poll URL is on https://other.example; refusing to send the API token there",
                                         std::nullopt}};
  const auto decision = rig.run_to_end();
  CHECK(decision.row.state == JobState::failed);
  const auto row = rig.row();
  CHECK(row.error == "the poll URL is on https://other.example; refusing to send the API token there");
  CHECK(row.last_http_status == 201);  // the submit's: the refused poll never went out
  CHECK(row.polls == 0);
}

TEST_CASE("job: a cut body leaves no file and is fetched again from the same URL") {
  JobRig rig;
  rig.create();
  rig.api.submits = {std::string("https://api.example/exports/1")};
  rig.api.polls = {File{"id\n1\n2", true}, File{"id\n1\n2\n3\n"}};
  CHECK(rig.run_to_end().row.state == JobState::succeeded);
  const auto row = rig.row();
  CHECK(row.download_attempts == 2);
  CHECK(read_file(*row.output_path) == "id\n1\n2\n3\n");
  CHECK(rig.api.polled == std::vector<std::string>{"https://api.example/exports/1", "https://api.example/exports/1"});
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(rig.config->output_dir))
    files += entry.is_regular_file();
  CHECK(files == 1);  // the cut attempt left nothing behind
}

TEST_CASE("job: cut bodies past max_download_attempts fail the job") {
  JobRig rig;
  rig.config->retry.max_download_attempts = 2;
  rig.create();
  rig.api.submits = {std::string("https://api.example/exports/1")};
  rig.api.polls = {File{"id\n1", true}, File{"id\n1", true}};
  const auto decision = rig.run_to_end();
  CHECK(decision.row.state == JobState::failed);
  CHECK(rig.row().error->find("gave up after 2 download attempts") != std::string::npos);
}

TEST_CASE("job: a database locked by another process makes the step wait, never fail") {
  JobRig rig;
  rig.create();
  rig.api.submits = {std::string("https://api.example/exports/1")};
  rig.api.polls = {File{"id\n1\n"}};
  store::Database other(rig.dir.path() / "jobs.sqlite3");
  other.exec("BEGIN IMMEDIATE");
  // Released from the loop a little later, while the submit step waits to write its attempt.
  asio::steady_timer release(rig.io, 300ms);
  bool released = false;
  release.async_wait([&](const boost::system::error_code&) {
    other.exec("COMMIT");
    released = true;
  });
  auto decision = rig.step();
  CHECK(released);
  REQUIRE(decision);
  CHECK(decision->row.state == JobState::submitted);
  rig.job.row = decision->row;
  CHECK(rig.run_to_end().row.state == JobState::succeeded);
}

TEST_CASE("job: cancelled at each step, the row stays resumable where it stood") {
  SUBCASE("while submitting") {
    JobRig rig;
    rig.create();
    rig.api.submits = {Hang{}};
    asio::cancellation_signal cancel;
    // Once the step waits for APSIS (a coroutine cancelled before it first runs is another matter).
    asio::steady_timer later(rig.io, 50ms);
    later.async_wait([&](const boost::system::error_code&) { cancel.emit(asio::cancellation_type::terminal); });
    CHECK_FALSE(rig.step(&cancel));
    const auto row = rig.row();
    CHECK(row.state == JobState::pending);
    CHECK(row.submit_attempts == 1);  // written before the POST: an export may exist
  }
  SUBCASE("while polling") {
    JobRig rig;
    rig.create();
    rig.api.submits = {std::string("https://api.example/exports/1")};
    rig.api.polls = {Hang{}};
    auto decision = rig.step();
    rig.job.row = decision->row;
    asio::cancellation_signal cancel;
    // Once the step waits for APSIS (a coroutine cancelled before it first runs is another matter).
    asio::steady_timer later(rig.io, 50ms);
    later.async_wait([&](const boost::system::error_code&) { cancel.emit(asio::cancellation_type::terminal); });
    CHECK_FALSE(rig.step(&cancel));
    const auto row = rig.row();
    CHECK(row.state == JobState::submitted);
    CHECK(row.poll_url == "https://api.example/exports/1");
  }
}

}  // namespace apsis::jobs
