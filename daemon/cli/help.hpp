// --help and --version in the GNU shape. Each command keeps its help text beside its code (a CommandHelp
// in its own *_command.cpp); this prints them.
#pragma once

#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace apsis::cli {

struct OptionHelp {
  std::string_view option;  // "--state STATE"
  std::string_view text;    // one line
};

struct CommandHelp {
  std::string_view name;      // "jobs"
  std::string_view synopsis;  // what follows the command name on the Usage line
  std::string_view summary;   // one line for `apsis-exportd --help`
  std::string_view details;   // a few lines after the summary, may be empty
  std::span<const OptionHelp> options;
};

// `apsis-exportd --help`: usage, every command with its summary, the global options.
void print_program_help(std::FILE* out, std::span<const CommandHelp* const> commands);
// `apsis-exportd COMMAND --help`.
void print_command_help(std::FILE* out, const CommandHelp& help);
// `--version`: "apsis-exportd X.Y.Z" and a copyright line.
void print_version(std::FILE* out);
// The line GNU programs end a usage error with.
std::string try_help_line(std::string_view command);

// Whether the arguments ask for help or the version: GNU getopt reads --help anywhere on the line.
bool asks_for_help(const std::vector<std::string>& args);
bool asks_for_version(const std::vector<std::string>& args);

}  // namespace apsis::cli
