// include: drop-in files (daemon/config/config_include.cpp): merging, order, and errors that name
// each file's own FILE:LINE:COL.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "config/config_loader.hpp"
#include "service/config_hash.hpp"
#include "sink/sha256.hpp"
#include "temp_dir.hpp"

using namespace apsis::config;
namespace fs = std::filesystem;

namespace {

// A main file "apsis.yaml" and its drop-ins in one temporary directory.
struct Files {
  TempDir dir;

  fs::path write(const fs::path& relative, const std::string& text) const {
    const auto file = dir.path() / relative;
    fs::create_directories(file.parent_path());
    write_file(file, text);
    return file;
  }
  fs::path main_file() const { return dir.path() / "apsis.yaml"; }
  LoadResult load(const std::string& main) const {
    write("apsis.yaml", main);
    return load_config_file(main_file());
  }
};

// A main file with one account, `main`, including `include`.
std::string main_with(std::string_view include, std::string_view rest = "") {
  return "state_db: state.db\n"
         "output_dir: out\n"
         "include: " + std::string(include) + "\n"
         "accounts:\n"
         "  main:\n"
         "    base_url: https://api.apsis.one\n"
         "    client_id: id\n"
         "    client_secret: secret\n" + std::string(rest);
}

std::string an_export(std::string_view name, std::string_view account = "main") {
  return "  " + std::string(name) + ":\n    account: " + std::string(account) + "\n    kind: consents\n";
}

std::string all_errors(const LoadResult& result) {
  std::string text;
  for (const auto& error : result.errors) text += error.to_string() + "\n";
  return text;
}

bool has_error(const LoadResult& result, const std::string& prefix, std::initializer_list<std::string_view> words) {
  for (const auto& error : result.errors) {
    const auto text = error.to_string();
    bool all = text.starts_with(prefix);
    for (auto word : words) all = all && text.find(word) != std::string::npos;
    if (all) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("include: drop-ins add accounts and exports, and exports may use any file's account") {
  Files files;
  files.write("conf.d/acme.yaml",
              "accounts:\n  acme:\n    base_url: https://api.apsis.one\n    client_id: a\n    client_secret_file: "
              "acme.secret\n"
              "exports:\n" + an_export("acme-consents", "acme"));
  files.write("conf.d/acme.secret", "from-the-drop-in-directory\n");
  files.write("conf.d/team.yaml", "exports:\n" + an_export("team-consents"));
  const auto result = files.load(main_with("conf.d/*.yaml", "exports:\n" + an_export("main-consents", "acme")));
  INFO(all_errors(result));
  REQUIRE(result.config);
  const auto& config = *result.config;
  CHECK(config.accounts.size() == 2);
  CHECK(config.exports.size() == 3);
  CHECK(config.exports.at("acme-consents").account == "acme");
  CHECK(config.exports.at("main-consents").account == "acme");
  // Relative paths in a drop-in resolve against its own directory.
  CHECK(config.accounts.at("acme").client_secret == "from-the-drop-in-directory");
  REQUIRE(config.drop_ins.size() == 2);
  CHECK(config.drop_ins[0] == files.dir.path() / "conf.d/acme.yaml");
  CHECK(config.drop_ins[1] == files.dir.path() / "conf.d/team.yaml");
}

TEST_CASE("include: files are read in byte order of their names, patterns in the order written") {
  Files files;
  files.write("conf.d/b.yaml", "exports:\n" + an_export("b"));
  files.write("conf.d/A.yaml", "exports:\n" + an_export("A"));
  files.write("conf.d/10-x.yaml", "exports:\n" + an_export("x"));
  files.write("extra/z.yaml", "exports:\n" + an_export("z"));
  const auto result = files.load(main_with("[extra/z.yaml, conf.d/*.yaml, conf.d/b.yaml]"));
  INFO(all_errors(result));
  REQUIRE(result.config);
  const auto& read = result.config->drop_ins;
  REQUIRE(read.size() == 4);  // b.yaml, matched twice, is read once
  CHECK(read[0].filename() == "z.yaml");
  CHECK(read[1].filename() == "10-x.yaml");
  CHECK(read[2].filename() == "A.yaml");
  CHECK(read[3].filename() == "b.yaml");
}

TEST_CASE("include: a glob matching nothing is fine, a missing literal file is an error") {
  Files files;
  SUBCASE("empty conf.d") {
    fs::create_directories(files.dir.path() / "conf.d");
    const auto result = files.load(main_with("conf.d/*.yaml"));
    INFO(all_errors(result));
    REQUIRE(result.config);
    CHECK(result.config->drop_ins.empty());
  }
  SUBCASE("no conf.d at all") {
    const auto result = files.load(main_with("conf.d/*.yaml"));
    CHECK(result.config);
  }
  SUBCASE("a literal path") {
    const auto result = files.load(main_with("conf.d/acme.yaml"));
    REQUIRE_FALSE(result.config);
    CHECK(all_errors(result) == files.main_file().string() +
                                    ":3:10: include: cannot read " + files.main_file().parent_path().string() +
                                    "/conf.d/acme.yaml: No such file or directory\n");
  }
}

TEST_CASE("include: the main file is never its own drop-in") {
  Files files;
  files.write("more.yaml", "exports:\n" + an_export("more"));
  const auto result = files.load(main_with("\"*.yaml\""));
  INFO(all_errors(result));
  REQUIRE(result.config);
  CHECK(result.config->drop_ins == std::vector{files.dir.path() / "more.yaml"});
}

TEST_CASE("include: a name defined in two files is an error at the second, naming both places") {
  Files files;
  const auto drop_in = files.write("conf.d/a.yaml", "exports:\n" + an_export("daily") +
                                                        "accounts:\n  main:\n    base_url: https://api.apsis.one\n"
                                                        "    client_id: id\n    client_secret: s\n");
  const auto result = files.load(main_with("conf.d/*.yaml", "exports:\n" + an_export("other") + an_export("daily")));
  REQUIRE_FALSE(result.config);
  const auto main = files.main_file().string();
  CHECK(has_error(result, drop_in.string() + ":2:3: ", {"duplicate export 'daily'", main + ":13:3"}));
  CHECK(has_error(result, drop_in.string() + ":6:3: ", {"duplicate account 'main'", main + ":5:3"}));
  CHECK(result.errors.size() == 2);
}

TEST_CASE("include: an error inside a drop-in carries the drop-in's path, line and column") {
  Files files;
  const auto drop_in = files.write("conf.d/a.yaml", "exports:\n  broken:\n    account: nobody\n    kind: consents\n");
  files.write("conf.d/b.yaml", "exports:\n  x: [\n");  // invalid YAML
  const auto result = files.load(main_with("conf.d/*.yaml", "history_days: 0\n"));
  REQUIRE_FALSE(result.config);
  INFO(all_errors(result));
  REQUIRE(result.errors.size() == 3);
  // The main file's errors first, then each drop-in's, each in its own order.
  CHECK(result.errors[0].file == files.main_file().string());
  CHECK(result.errors[0].line == 9);
  CHECK(result.errors[1].to_string().starts_with(drop_in.string() + ":3:14: exports.broken.account: "));
  CHECK(result.errors[2].file == (files.dir.path() / "conf.d/b.yaml").string());
  CHECK(result.errors[2].message.starts_with("invalid YAML"));
}

TEST_CASE("include: drop-ins are named as the main file was, relative when it was") {
  Files files;
  files.write("etc/conf.d/a.yaml", "exports: [1]\n");
  files.write("etc/apsis.yaml", main_with("conf.d/*.yaml"));
  const auto cwd = fs::current_path();
  fs::current_path(files.dir.path());
  const auto result = load_config_file("etc/apsis.yaml");
  fs::current_path(cwd);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].to_string() == "etc/conf.d/a.yaml:1:10: exports: expected a mapping, got a list");
}

TEST_CASE("include: a drop-in holds only accounts and exports, and includes nothing") {
  Files files;
  const auto drop_in = files.write("conf.d/a.yaml", "state_db: other.db\nexports: {}\ninclude: more/*.yaml\n");
  const auto result = files.load(main_with("conf.d/*.yaml"));
  REQUIRE_FALSE(result.config);
  const auto main = files.main_file().string();
  CHECK(has_error(result, drop_in.string() + ":1:1: state_db: a drop-in file holds only accounts: and exports:",
                  {"set state_db in the main file (" + main + ")"}));
  CHECK(has_error(result, drop_in.string() + ":3:1: include: only the main file (" + main + ") may include files",
                  {}));
  CHECK(result.errors.size() == 2);
}

TEST_CASE("include: the accounts may all live in drop-ins, but one must exist") {
  Files files;
  const std::string main = "state_db: s.db\noutput_dir: out\ninclude: conf.d/*.yaml\n";
  SUBCASE("in a drop-in") {
    files.write("conf.d/acme.yaml",
                "accounts:\n  acme:\n    base_url: https://api.apsis.one\n    client_id: a\n    client_secret: s\n");
    const auto result = files.load(main);
    INFO(all_errors(result));
    CHECK(result.config);
  }
  SUBCASE("nowhere") {
    const auto result = files.load(main);
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].message.starts_with("missing required key 'accounts' at the top level"));
    CHECK(result.errors[0].message.ends_with("here or in a file include: reads"));
  }
}

TEST_CASE("include: expects a glob or a list of globs") {
  Files files;
  const auto result = files.load(main_with("{a: b}"));
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].to_string().ends_with(":3:10: include: expected a glob such as conf.d/*.yaml, or a list "
                                               "of them"));
}

TEST_CASE("include: an unreadable conf.d is an error, not an empty one") {
  if (::geteuid() == 0) return;  // root reads it anyway
  Files files;
  const auto dir = files.dir.path() / "conf.d";
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0);
  const auto result = files.load(main_with("conf.d/*.yaml"));
  ::chmod(dir.c_str(), 0700);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].message == "include: cannot match conf.d/*.yaml: " + dir.string() + ": Permission denied");
}

TEST_CASE("include: the configuration hash instances compare covers the drop-ins") {
  Files files;
  files.write("conf.d/a.yaml", "exports:\n" + an_export("a"));
  const auto main = main_with("conf.d/*.yaml");
  auto hash = [&] {
    const auto result = files.load(main);
    REQUIRE(result.config);
    return apsis::service::config_hash(*result.config);
  };
  const auto before = hash();
  CHECK(before == hash());
  files.write("conf.d/a.yaml", "exports:\n" + an_export("b"));
  const auto changed = hash();
  CHECK(changed != before);
  files.write("conf.d/b.yaml", "");
  CHECK(hash() != changed);  // an empty drop-in too: its name is part of the configuration
  fs::remove(files.dir.path() / "conf.d/a.yaml");
  fs::remove(files.dir.path() / "conf.d/b.yaml");
  apsis::sink::Sha256 file_only;
  file_only.update(main);
  CHECK(hash() == file_only.hex_digest());  // without drop-ins, the file's own hash as before
}

TEST_CASE("include: two files' exports may not share a template without {export}") {
  Files files;
  const auto drop_in = files.write("conf.d/a.yaml", "exports:\n" + an_export("b") +
                                                        "    output: \"flat/{job}-x.{ext}\"\n" + an_export("c") +
                                                        "    output: \"flat/{scheduled}.{ext}\"\n");
  const auto result = files.load(main_with("conf.d/*.yaml", "exports:\n" + an_export("a") +
                                                                "    output: \"flat/{scheduled}.{ext}\"\n"));
  REQUIRE_FALSE(result.config);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].to_string() ==
        drop_in.string() + ":9:13: exports.c.output: the same template as exports.a.output (" +
            files.main_file().string() + ":13:13): the two exports would write the same files; add {export}");
}

TEST_CASE("include: the main file's directory may hold glob characters: only the pattern is a glob") {
  Files files;
  files.write("we[ir]d*/conf.d/a.yaml", "exports:\n" + an_export("a"));
  files.write("we[ir]d*/apsis.yaml", main_with("conf.d/*.yaml"));
  const auto result = load_config_file(files.dir.path() / "we[ir]d*/apsis.yaml");
  INFO(all_errors(result));
  REQUIRE(result.config);
  CHECK(result.config->exports.contains("a"));
}
