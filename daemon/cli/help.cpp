#include "cli/help.hpp"

#include <algorithm>
#include <cctype>

#include "apsis_version.hpp"

namespace apsis::cli {
namespace {

constexpr std::string_view kProgram = "apsis-exportd";
constexpr OptionHelp kStandardOptions[] = {{"-h, --help", "display this help and exit"},
                                           {"-V, --version", "output version information and exit"}};

void print_options(std::FILE* out, std::span<const OptionHelp> options) {
  std::size_t width = 0;
  for (const auto& o : options) width = std::max(width, o.option.size());
  for (const auto& o : kStandardOptions) width = std::max(width, o.option.size());
  const auto line = [&](const OptionHelp& o) {
    std::fprintf(out, "  %-*.*s  %.*s\n", static_cast<int>(width), static_cast<int>(o.option.size()), o.option.data(),
                 static_cast<int>(o.text.size()), o.text.data());
  };
  std::fputs("\nOptions:\n", out);
  for (const auto& o : options) line(o);
  for (const auto& o : kStandardOptions) line(o);
}

void print_footer(std::FILE* out) {
  std::fputs(
      "\nExit status: 0 ok, 1 job failed, 2 invalid configuration, 3 job expired, 64 usage error,\n"
      "69 no instance holds the account (once on PostgreSQL), 75 another service owns the state\n"
      "database (run), 130 interrupted.\n"
      "\nFull documentation: man apsis-exportd; the configuration file: man apsis-exportd.yaml\n",
      out);
}

bool contains_any(const std::vector<std::string>& args, std::string_view a, std::string_view b) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& arg) { return arg == a || arg == b; });
}

}  // namespace

void print_program_help(std::FILE* out, std::span<const CommandHelp* const> commands) {
  std::fprintf(out,
               "Usage: %.*s COMMAND [OPTION]...\n"
               "Run scheduled APSIS One profile exports and deliver the files to disk.\n"
               "\nCommands:\n",
               static_cast<int>(kProgram.size()), kProgram.data());
  std::size_t width = 0;
  for (const auto* c : commands) width = std::max(width, c->name.size());
  for (const auto* c : commands)
    std::fprintf(out, "  %-*.*s  %.*s\n", static_cast<int>(width), static_cast<int>(c->name.size()), c->name.data(),
                 static_cast<int>(c->summary.size()), c->summary.data());
  print_options(out, {});
  std::fprintf(out, "\nRun '%.*s COMMAND --help' for the options of a command.\n", static_cast<int>(kProgram.size()),
               kProgram.data());
  print_footer(out);
}

void print_command_help(std::FILE* out, const CommandHelp& help) {
  std::fprintf(out, "Usage: %.*s %.*s %.*s\n", static_cast<int>(kProgram.size()), kProgram.data(),
               static_cast<int>(help.name.size()), help.name.data(), static_cast<int>(help.synopsis.size()),
               help.synopsis.data());
  // The summary is a phrase in the command list and a sentence here.
  std::string sentence(help.summary);
  if (!sentence.empty()) sentence[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(sentence[0])));
  std::fprintf(out, "%s.\n", sentence.c_str());
  if (!help.details.empty()) std::fprintf(out, "\n%.*s\n", static_cast<int>(help.details.size()), help.details.data());
  print_options(out, help.options);
  print_footer(out);
}

void print_version(std::FILE* out) {
  std::fprintf(out, "%.*s %s\n", static_cast<int>(kProgram.size()), kProgram.data(), kVersion);
  std::fputs("Copyright (C) apsis-exportd maintainers. All rights reserved: no license has been granted.\n", out);
}

std::string try_help_line(std::string_view command) {
  std::string line = "Try '" + std::string(kProgram);
  if (!command.empty()) line += " " + std::string(command);
  return line + " --help' for more information.";
}

bool asks_for_help(const std::vector<std::string>& args) { return contains_any(args, "--help", "-h"); }
bool asks_for_version(const std::vector<std::string>& args) { return contains_any(args, "--version", "-V"); }

}  // namespace apsis::cli
