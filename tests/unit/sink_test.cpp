#include <doctest/doctest.h>

#include <fstream>

#include <boost/json.hpp>

#include <zlib.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <system_error>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include "sink/manifest.hpp"
#include "sink/download.hpp"
#include "sink/gzip_check.hpp"
#include "sink/staged_file.hpp"
#include "temp_dir.hpp"

using namespace apsis::sink;
namespace fs = std::filesystem;

namespace {

std::string gzip(const std::string& text) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, text.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::span<const char> bytes(const std::string& s) { return {s.data(), s.size()}; }

int entries(const fs::path& dir) {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a staged file appears under its final name only when published") {
  TempDir dir;
  const auto target = dir.path() / "a" / "b" / "export.csv";
  {
    StagedFile file(target);
    file.write(bytes("hello "));
    file.write(bytes("world"));
    CHECK_FALSE(fs::exists(target));
    CHECK(fs::exists(file.temp_path()));
    CHECK(file.temp_path().parent_path() == target.parent_path());
    CHECK(file.temp_path().filename().string().starts_with(kTempPrefix));
    file.publish();
    CHECK(file.bytes_written() == 11);
  }
  CHECK(read_file(target) == "hello world");
  CHECK(entries(target.parent_path()) == 1);  // no temporary file left
  CHECK((fs::status(target).permissions() & fs::perms::others_all) == fs::perms::none);
}

TEST_CASE("an abandoned staged file leaves nothing behind") {
  TempDir dir;
  const auto target = dir.path() / "export.csv";
  {
    StagedFile file(target);
    file.write(bytes("partial"));
  }
  CHECK_FALSE(fs::exists(target));
  CHECK(entries(dir.path()) == 0);
}

TEST_CASE("publishing never replaces another file: the first free alternative name is taken") {
  TempDir dir;
  const auto target = dir.path() / "export.csv";
  const std::vector<fs::path> alternatives{dir.path() / "export-job7.csv", dir.path() / "export-job7-2.csv"};
  write_file(target, "another job's");
  {
    StagedFile file(target);
    file.write(bytes("mine"));
    CHECK(file.publish(alternatives) == alternatives[0]);
    CHECK(file.final_path() == alternatives[0]);
  }
  CHECK(read_file(target) == "another job's");
  CHECK(read_file(alternatives[0]) == "mine");
  StagedFile second(target);
  second.write(bytes("again"));
  CHECK(second.publish(alternatives) == alternatives[1]);
  CHECK(read_file(alternatives[0]) == "mine");
  CHECK(entries(dir.path()) == 3);
}

TEST_CASE("a taken name holding the very same bytes counts as published; every name taken is EEXIST") {
  TempDir dir;
  const auto target = dir.path() / "export.csv";
  write_file(target, "same");
  {
    StagedFile file(target);
    file.write(bytes("same"));
    CHECK(file.publish({}, [](const fs::path& existing) { return read_file(existing) == "same"; }) == target);
  }
  CHECK(entries(dir.path()) == 1);  // the temporary file went
  StagedFile other(target);
  other.write(bytes("different"));
  try {
    other.publish({}, [](const fs::path&) { return false; });
    FAIL("published over a file");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::file_exists);
  }
  CHECK(read_file(target) == "same");
  CHECK(entries(dir.path()) == 1);
}

TEST_CASE("a temporary file's name says which process on which host writes it") {
  const TempOwner owner{"db-1.example.com", 4242, 987654};
  const auto name = temp_file_name(owner, "abcdefghij", "dupes-20260101T000000Z.csv.gz");
  CHECK(name.starts_with(kTempPrefix));
  CHECK(parse_temp_owner(name) == owner);
  CHECK(name.starts_with(std::string(kTempPrefix) + "dupes-20260101T000000Z.csv.gz-"));  // ls shows the target first
  CHECK(parse_temp_owner(temp_file_name(owner, "abcdefghij", "a-1@b-2-3.csv")) == owner);
  CHECK(temp_file_name(owner, "abcdefghij", std::string(400, 'x')).size() == 255);
  CHECK(parse_temp_owner(temp_file_name(owner, "abcdefghij", std::string(400, 'x'))) == owner);
  CHECK_FALSE(parse_temp_owner(std::string(kTempPrefix) + "export.csv-abc"));  // an older version's
  CHECK_FALSE(parse_temp_owner("export.csv"));
  CHECK(this_process().pid == ::getpid());
  CHECK(process_start_time(::getpid()) == this_process().start_time);
  CHECK_FALSE(process_start_time(4194305));  // above the largest pid_max
}

TEST_CASE("a start removes only this host's temporary files whose process is gone") {
  TempDir dir;
  fs::create_directories(dir.path() / "x");
  const auto me = this_process();
  const auto temp = [&](const TempOwner& owner, const char* random) {
    const auto path = dir.path() / "x" / temp_file_name(owner, random, "export.csv");
    write_file(path, "partial");
    return path;
  };
  const auto running = temp(me, "running000");
  const auto reused_pid = temp(TempOwner{me.host, me.pid, me.start_time + 1}, "reusedpid0");
  const auto dead = temp(TempOwner{me.host, 4194305, 1}, "deadpid000");
  const auto other_host = temp(TempOwner{me.host + "-other", 4194305, 1}, "otherhost0");
  const auto old_format = dir.path() / "x" / (std::string(kTempPrefix) + "export.csv-abc");
  write_file(old_format, "partial");
  write_file(dir.path() / "x" / "export.csv", "complete");
  CHECK(remove_orphaned_temp_files(dir.path()) == 2);
  CHECK(fs::exists(running));
  CHECK_FALSE(fs::exists(reused_pid));
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(other_host));
  CHECK(fs::exists(old_format));  // no owner in its name: left until it is a day old
  fs::last_write_time(old_format, fs::file_time_type::clock::now() - std::chrono::hours(25));
  CHECK(remove_orphaned_temp_files(dir.path()) == 1);
  CHECK_FALSE(fs::exists(old_format));
  CHECK(fs::exists(dir.path() / "x" / "export.csv"));
  CHECK(remove_orphaned_temp_files(dir.path() / "missing") == 0);
}

TEST_CASE("a symbolic link below the output directory may not lead outside it") {
  TempDir dir;
  const auto root = dir.path() / "out";
  fs::create_directories(root / "real");
  fs::create_directories(dir.path() / "elsewhere");
  CHECK_NOTHROW(check_inside(root, root / "not" / "yet"));
  CHECK_NOTHROW(check_inside(dir.path() / "missing-root", dir.path() / "missing-root" / "a"));
  fs::create_directory_symlink(dir.path() / "elsewhere", root / "away");
  fs::create_directory_symlink(root / "real", root / "inside");
  fs::create_directory_symlink(dir.path() / "gone", root / "dangling");
  CHECK_THROWS_WITH(check_inside(root, root / "away"), doctest::Contains("outside output_dir"));
  CHECK_THROWS_WITH(check_inside(root, root / "away" / "deeper"), doctest::Contains("outside output_dir"));
  CHECK_THROWS_WITH(check_inside(root, root / "dangling" / "a"), doctest::Contains("output_dir"));
  CHECK_NOTHROW(check_inside(root, root / "inside" / "a"));
  CHECK_FALSE(fs::exists(dir.path() / "elsewhere" / "deeper"));
}

TEST_CASE("a staged file in a directory that cannot be created fails with the path") {
  TempDir dir;
  write_file(dir.path() / "file", "not a directory");
  CHECK_THROWS(StagedFile(dir.path() / "file" / "export.csv"));
}

TEST_CASE("gzip check accepts a whole stream fed in pieces") {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "profile-" + std::to_string(i) + ",someone@example.com\n";
  const auto compressed = gzip(text);
  GzipCheck check;
  for (std::size_t at = 0; at < compressed.size(); at += 777)
    REQUIRE(check.update(bytes(compressed.substr(at, 777))));
  CHECK(check.complete());
}

TEST_CASE("gzip check rejects a cut stream, a bad trailer and trailing junk") {
  const auto compressed = gzip(std::string(100000, 'a') + "tail");
  SUBCASE("cut") {
    GzipCheck check;
    check.update(bytes(compressed.substr(0, compressed.size() - 5)));
    CHECK_FALSE(check.complete());
  }
  SUBCASE("CRC mismatch") {
    auto broken = compressed;
    broken[broken.size() - 8] ^= 0x55;
    GzipCheck check;
    check.update(bytes(broken));
    CHECK_FALSE(check.complete());
    CHECK(check.error().find("corrupt") != std::string::npos);
  }
  SUBCASE("junk after the trailer") {
    GzipCheck check;
    check.update(bytes(compressed + "junk"));
    CHECK_FALSE(check.complete());
  }
  SUBCASE("not gzip at all") {
    GzipCheck check;
    CHECK_FALSE(check.update(bytes(std::string("profile_key,email\n"))));
  }
}

TEST_CASE("gzip check accepts several members, each checked (RFC 1952 2.2)") {
  const std::string first(70000, 'a');
  const std::string second = "profile_key,email\nx,y@example.com\n";
  const auto compressed = gzip(first) + gzip(second);
  SUBCASE("in one piece") {
    GzipCheck check;
    CHECK(check.update(bytes(compressed)));
    CHECK(check.complete());
    CHECK(check.uncompressed_bytes() == first.size() + second.size());
  }
  SUBCASE("in pieces that split the boundary between members") {
    GzipCheck check;
    for (std::size_t at = 0; at < compressed.size(); at += 13) REQUIRE(check.update(bytes(compressed.substr(at, 13))));
    CHECK(check.complete());
  }
  SUBCASE("a cut second member") {
    GzipCheck check;
    check.update(bytes(compressed.substr(0, compressed.size() - 3)));
    CHECK_FALSE(check.complete());
  }
  SUBCASE("a bad CRC in the second member") {
    auto broken = compressed;
    broken[broken.size() - 8] ^= 0x55;
    GzipCheck check;
    check.update(bytes(broken));
    CHECK_FALSE(check.complete());
    CHECK(check.error().find("corrupt") != std::string::npos);
  }
}

TEST_CASE("gzip check counts what a valid stream holds, nothing for an empty file") {
  GzipCheck empty;
  CHECK(empty.update(bytes(gzip(""))));
  CHECK(empty.complete());
  CHECK(empty.uncompressed_bytes() == 0);
  GzipCheck full;
  CHECK(full.update(bytes(gzip(std::string(300000, 'z')))));
  CHECK(full.uncompressed_bytes() == 300000);
}

// Runs a coroutine to its end on a fresh event loop; rethrows what it threw.
template <typename T>
T run_on_loop(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
  auto future = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
  io.run();
  io.restart();
  return future.get();
}

void check_download(boost::asio::thread_pool* pool) {
  TempDir dir;
  boost::asio::io_context io;
  std::string text;
  for (int i = 0; i < 50000; ++i) text += "row " + std::to_string(i) + "\n";
  {
    Download download(io.get_executor(), dir.path() / "a.csv", false, pool);
    const auto published = run_on_loop(io, [&]() -> boost::asio::awaitable<Published> {
      for (std::size_t at = 0; at < text.size(); at += 4096) {
        const auto piece = text.substr(at, 4096);
        const auto written = co_await download.write(bytes(piece));
        REQUIRE(written.has_value());
      }
      auto result = co_await download.publish();
      REQUIRE(result.has_value());
      co_return *result;
    }());
    CHECK(published.bytes == text.size());
    CHECK(read_file(dir.path() / "a.csv") == text);
    Sha256 expected;
    expected.update(bytes(text));
    CHECK(published.sha256 == expected.hex_digest());
  }
  {
    Download download(io.get_executor(), dir.path() / "b.csv", false, pool);
    const auto published = run_on_loop(io, [&]() -> boost::asio::awaitable<Published> {
      const auto written = co_await download.write(bytes("abc"));
      REQUIRE(written.has_value());
      auto result = co_await download.publish();
      REQUIRE(result.has_value());
      co_return *result;
    }());
    CHECK(published.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  }
  const auto compressed = gzip("hello");
  {
    Download download(io.get_executor(), dir.path() / "c.csv.gz", true, pool);
    const auto failure = run_on_loop(io, [&]() -> boost::asio::awaitable<SinkFailure> {
      const auto cut = compressed.substr(0, compressed.size() - 3);
      const auto written = co_await download.write(bytes(cut));
      REQUIRE(written.has_value());
      auto result = co_await download.publish();
      REQUIRE(result.has_error());
      co_return result.error();
    }());
    CHECK(failure.kind == SinkFailure::Kind::unverified);  // fetched again, not a disk failure
    CHECK(failure.message.find("gzip") != std::string::npos);
  }
  {
    // Abandoned right after handing a piece over: the piece may still be in flight.
    Download download(io.get_executor(), dir.path() / "d.csv", false, pool);
    run_on_loop(io, [&]() -> boost::asio::awaitable<int> {
      const auto big = std::string(1 << 20, 'x');
      const auto written = co_await download.write(bytes(big));
      co_return written.has_value() ? 0 : 1;
    }());
  }
  if (pool) pool->wait();  // the piece lands; its completion is queued on the loop
  io.run();
  CHECK(entries(dir.path()) == 2);  // a.csv and b.csv; nothing of c or d, no temporary files
}

TEST_CASE("a download that cannot take its name fails as io, with the operation, path and errno") {
  TempDir dir;
  boost::asio::io_context io;
  const auto taken = dir.path() / "taken.csv";
  std::ofstream(taken) << "another job's file";
  Download download(io.get_executor(), taken, false, nullptr);
  const auto failure = run_on_loop(io, [&]() -> boost::asio::awaitable<SinkFailure> {
    const std::string text = "id\n1\n";
    const auto written = co_await download.write(bytes(text));
    REQUIRE(written.has_value());
    auto result = co_await download.publish();
    REQUIRE(result.has_error());
    co_return result.error();
  }());
  CHECK(failure.kind == SinkFailure::Kind::io);
  CHECK(failure.code == std::errc::file_exists);
  CHECK(failure.path == taken);
  CHECK(failure.operation.find("every name is taken") != std::string::npos);
  // The message is what the row and log said before: "<operation> <path>: <strerror>".
  CHECK(failure.message == failure.operation + " " + taken.string() + ": " + failure.code.message());
  CHECK(read_file(taken) == "another job's file");
  CHECK(entries(dir.path()) == 1);
}

TEST_CASE("a download publishes with its size and SHA-256, or not at all (inline)") { check_download(nullptr); }

TEST_CASE("a download publishes with its size and SHA-256, or not at all (worker thread)") {
  boost::asio::thread_pool worker(1);
  check_download(&worker);
}

TEST_CASE("a manifest names the instance and host that wrote it") {
  apsis::sink::Manifest manifest;
  manifest.export_name = "dupes";
  manifest.file = "/out/dupes.csv";
  manifest.instance = "1a2b3c";
  manifest.host = "worker-2";
  const auto parsed = boost::json::parse(apsis::sink::to_json(manifest));
  CHECK(parsed.at("written_by").at("instance").as_string() == "1a2b3c");
  CHECK(parsed.at("written_by").at("host").as_string() == "worker-2");
}

TEST_CASE("a job's manifest published again (another instance took the job over) keeps the one in place") {
  TempDir dir;
  apsis::sink::Manifest first;
  first.export_name = "dupes";
  first.job_id = 31;
  first.file = dir.path() / "dupes.csv";
  first.sha256 = "abc";
  first.instance = "instance-a";
  const auto written = apsis::sink::write_manifest(first);
  auto again = first;
  again.instance = "instance-b";
  again.polls = 9;
  CHECK(apsis::sink::write_manifest(again) == written);
  auto other_job = first;
  other_job.job_id = 32;
  CHECK_THROWS_AS(apsis::sink::write_manifest(other_job), std::system_error);
  auto other_bytes = first;
  other_bytes.sha256 = "def";
  CHECK_THROWS_AS(apsis::sink::write_manifest(other_bytes), std::system_error);
}
