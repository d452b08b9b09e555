// The journal's native protocol as journald would receive it, on a datagram socket of our own; the
// JOURNAL_STREAM check against real descriptors; the three shapes of a log entry.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "temp_dir.hpp"
#include "util/journal.hpp"
#include "util/log.hpp"

using namespace apsis;

namespace {

// A bound AF_UNIX datagram socket standing in for journald.
class FakeJournal {
 public:
  explicit FakeJournal(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  }
  ~FakeJournal() { ::close(fd_); }
  FakeJournal(const FakeJournal&) = delete;
  FakeJournal& operator=(const FakeJournal&) = delete;

  struct Received {
    std::string payload;    // the datagram's bytes
    std::optional<int> fd;  // a descriptor passed with SCM_RIGHTS
  };

  // One datagram, or nullopt when none is waiting.
  std::optional<Received> receive() const {
    std::string buffer(1 << 20, '\0');
    iovec part{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)]{};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    const auto received = ::recvmsg(fd_, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (received < 0) return std::nullopt;
    Received out{buffer.substr(0, static_cast<std::size_t>(received)), std::nullopt};
    for (auto* header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
      if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(header), sizeof(int));
        out.fd = fd;
      }
    }
    return out;
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_{-1};
};

std::uint64_t read_le64(std::string_view bytes) {
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  return value;
}

// journald's reading of an entry: NAME=value lines, or NAME\n + le64 length + bytes + \n.
std::map<std::string, std::string> parse_entry(std::string_view data) {
  std::map<std::string, std::string> fields;
  while (!data.empty()) {
    const auto end_of_line = data.find('\n');
    REQUIRE(end_of_line != std::string_view::npos);
    const auto line = data.substr(0, end_of_line);
    if (const auto equals = line.find('='); equals != std::string_view::npos) {
      fields[std::string(line.substr(0, equals))] = std::string(line.substr(equals + 1));
      data.remove_prefix(end_of_line + 1);
      continue;
    }
    data.remove_prefix(end_of_line + 1);
    REQUIRE(data.size() >= 8);
    const auto size = read_le64(data);
    data.remove_prefix(8);
    REQUIRE(data.size() >= size + 1);
    fields[std::string(line)] = std::string(data.substr(0, size));
    CHECK(data[size] == '\n');
    data.remove_prefix(size + 1);
  }
  return fields;
}

std::string read_all(int fd) {
  std::string out;
  char buffer[65536];
  REQUIRE(::lseek(fd, 0, SEEK_SET) == 0);
  for (;;) {
    const auto n = ::read(fd, buffer, sizeof(buffer));
    REQUIRE(n >= 0);
    if (n == 0) return out;
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

std::string journal_stream_of(int fd) {
  struct stat status {};
  REQUIRE(::fstat(fd, &status) == 0);
  return std::to_string(status.st_dev) + ":" + std::to_string(status.st_ino);
}

// A Logger's text output, read back.
struct CapturedLines {
  char buffer[1 << 16]{};
  FILE* file{::fmemopen(buffer, sizeof(buffer), "w")};
  ~CapturedLines() { std::fclose(file); }
  std::string text() const {
    std::fflush(file);
    return buffer;
  }
};

const TimePoint t0 = *parse_iso8601("2026-11-29T06:30:00.250Z");

}  // namespace

TEST_CASE("a journal entry arrives as one datagram with its fields; a value with a newline in the binary form") {
  TempDir dir;
  FakeJournal journal(dir.path() / "socket");
  const JournalSender sender(journal.path());
  const auto entry = encode_journal_entry(
      {{"MESSAGE", "failed: APSIS One answered 503\nthree times"}, {"PRIORITY", "3"}, {"EXPORT", "daily-duplicates"}});
  CHECK(entry.find("MESSAGE\n") == 0);  // binary form: NAME, newline, length
  CHECK(read_le64(std::string_view(entry).substr(8)) ==
        std::string("failed: APSIS One answered 503\nthree times").size());

  REQUIRE_FALSE(sender.send(entry));
  const auto received = journal.receive();
  REQUIRE(received);
  CHECK_FALSE(received->fd);
  const auto fields = parse_entry(received->payload);
  CHECK(fields.at("MESSAGE") == "failed: APSIS One answered 503\nthree times");
  CHECK(fields.at("PRIORITY") == "3");
  CHECK(fields.at("EXPORT") == "daily-duplicates");
  CHECK_FALSE(journal.receive());
}

TEST_CASE("an entry larger than a datagram may be arrives as a sealed memfd in an empty datagram") {
  TempDir dir;
  FakeJournal journal(dir.path() / "socket");
  const JournalSender sender(journal.path());
  const std::string big(300 * 1024, 'x');
  REQUIRE_FALSE(sender.send(encode_journal_entry({{"MESSAGE", big}, {"JOB_ID", "7"}})));

  const auto received = journal.receive();
  REQUIRE(received);
  CHECK(received->payload.empty());
  REQUIRE(received->fd);
  const int memfd = *received->fd;
  const int seals = ::fcntl(memfd, F_GET_SEALS);
  CHECK((seals & F_SEAL_WRITE) != 0);
  CHECK((seals & F_SEAL_SHRINK) != 0);
  CHECK((seals & F_SEAL_GROW) != 0);
  const auto fields = parse_entry(read_all(memfd));
  ::close(memfd);
  CHECK(fields.at("MESSAGE") == big);
  CHECK(fields.at("JOB_ID") == "7");
}

TEST_CASE("sending to a socket nobody listens on says why, and a path too long for sockaddr_un is refused up front") {
  TempDir dir;
  const JournalSender sender(dir.path() / "no-journal-here");
  const auto error = sender.send(encode_journal_entry({{"MESSAGE", "lost?"}}));
  CHECK(error == std::errc::no_such_file_or_directory);
  CHECK_THROWS_AS(JournalSender(std::filesystem::path(std::string(200, 'a'))), std::invalid_argument);
}

TEST_CASE("JOURNAL_STREAM counts only when it names stderr's own device and inode") {
  TempDir dir;
  write_file(dir.path() / "journal-stream", "");
  write_file(dir.path() / "elsewhere", "");
  const int stream = ::open((dir.path() / "journal-stream").c_str(), O_WRONLY | O_CLOEXEC);
  const int elsewhere = ::open((dir.path() / "elsewhere").c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(stream >= 0);
  REQUIRE(elsewhere >= 0);
  const auto value = journal_stream_of(stream);

  CHECK(is_journal_stream(value, stream));
  // A child that inherited the variable but writes to a file of its own.
  CHECK_FALSE(is_journal_stream(value, elsewhere));
  CHECK_FALSE(is_journal_stream("", stream));
  CHECK_FALSE(is_journal_stream(value.substr(0, value.find(':')), stream));
  CHECK_FALSE(is_journal_stream(value + "x", stream));
  CHECK_FALSE(is_journal_stream(":" + value, stream));
  ::close(stream);
  ::close(elsewhere);
  CHECK_FALSE(is_journal_stream(value, stream));  // closed: nothing to compare
}

TEST_CASE("text lines keep export= and job= before the message and add account= and http_status= after it") {
  CHECK(text_line("submitted", {}) == "submitted");
  CHECK(text_line("submitted", {.export_name = "daily", .job_id = 7}) == "export=daily job=7 submitted");
  CHECK(text_line("failed: 503", {.export_name = "daily", .job_id = 7, .account = "main", .http_status = 503}) ==
        "export=daily job=7 failed: 503 [account=main http_status=503]");
  CHECK(text_line("schedule stopped", {.export_name = "daily", .account = "main"}) ==
        "export=daily schedule stopped [account=main]");
}

TEST_CASE("a JSON line has time, level and message, and only the fields that are known") {
  CHECK(json_line(t0, Level::warning, "say \"hi\"\n\tback\\slash\x01", {}) ==
        R"({"time":"2026-11-29T06:30:00.250Z","level":"warning","message":"say \"hi\"\n\tback\\slash\u0001"})");
  CHECK(
      json_line(t0, Level::info, "ok", {.export_name = "daily", .job_id = 7, .account = "main", .http_status = 200}) ==
      R"({"time":"2026-11-29T06:30:00.250Z","level":"info","message":"ok","export":"daily","job_id":7,"account":"main","http_status":200})");
}

TEST_CASE("journal fields: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and the known structured fields") {
  const auto fields = journal_fields(Level::error, "failed", {.export_name = "daily", .job_id = 7, .http_status = 400});
  const JournalFields expected{{"MESSAGE", "failed"}, {"PRIORITY", "3"}, {"SYSLOG_IDENTIFIER", "apsis-exportd"},
                               {"EXPORT", "daily"},   {"JOB_ID", "7"},   {"HTTP_STATUS", "400"}};
  CHECK(fields == expected);
}

TEST_CASE("a Logger with a journal sends entries there and writes nothing on stderr") {
  TempDir dir;
  FakeJournal journal(dir.path() / "socket");
  CapturedLines lines;
  const Logger log(lines.file, {.priority_prefix = true}, JournalSender(journal.path()));
  log.log(Level::notice, "published", {.export_name = "daily", .job_id = 7, .account = "main"});
  log.log(Level::debug, "below the threshold");

  const auto received = journal.receive();
  REQUIRE(received);
  const auto fields = parse_entry(received->payload);
  CHECK(fields.at("MESSAGE") == "published");
  CHECK(fields.at("PRIORITY") == "5");
  CHECK(fields.at("SYSLOG_IDENTIFIER") == "apsis-exportd");
  CHECK(fields.at("EXPORT") == "daily");
  CHECK(fields.at("JOB_ID") == "7");
  CHECK(fields.at("ACCOUNT") == "main");
  CHECK_FALSE(fields.contains("HTTP_STATUS"));
  CHECK_FALSE(journal.receive());
  CHECK(lines.text().empty());
}

TEST_CASE("an entry the journal does not take becomes a stderr line, and the failure is said once") {
  TempDir dir;
  CapturedLines lines;
  const Logger log(lines.file, {.priority_prefix = true}, JournalSender(dir.path() / "gone"));
  log.log(Level::error, "failed", {.export_name = "daily", .job_id = 7, .http_status = 503});
  log.log(Level::info, "second");
  const auto text = lines.text();
  CHECK(text.find("<3>export=daily job=7 failed [http_status=503]\n") != std::string::npos);
  CHECK(text.find("<6>second\n") != std::string::npos);
  const auto note = text.find("journal socket " + (dir.path() / "gone").string());
  CHECK(note != std::string::npos);
  CHECK(text.find("journal socket", note + 1) == std::string::npos);
}

TEST_CASE("a JSON Logger writes one object per line, at the injected time") {
  CapturedLines lines;
  const Logger log(lines.file, {.format = LogFormat::json, .now = [] { return t0; }});
  log.log(Level::info, "submitted", {.export_name = "daily", .job_id = 7});
  CHECK(lines.text() ==
        "{\"time\":\"2026-11-29T06:30:00.250Z\",\"level\":\"info\",\"message\":\"submitted\",\"export\":\"daily\","
        "\"job_id\":7}\n");
}
