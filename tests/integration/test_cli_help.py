"""--help and --version in the GNU shape, on the binary and on every command it lists: help and version
go to stdout with exit 0; usage errors go to stderr with exit 64 and point at the command's --help."""

import os
import re
import subprocess
import unittest

from harness import DAEMON

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../.."))


def run(*args):
    return subprocess.run([DAEMON, *args], capture_output=True, text=True, timeout=30)


def listed_commands():
    listing = run("--help").stdout.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in listing.splitlines()]


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(apsis-exportd VERSION (\S+)", f.read()).group(1)


class HelpTest(unittest.TestCase):
    def test_program_help(self):
        for flag in ("--help", "-h"):
            result = run(flag)
            self.assertEqual(result.returncode, 0)
            self.assertEqual(result.stderr, "")
            self.assertTrue(result.stdout.startswith("Usage: apsis-exportd COMMAND [OPTION]...\n"), result.stdout)
            self.assertIn("Full documentation: man apsis-exportd", result.stdout)
        self.assertEqual(listed_commands()[:6], ["run", "check", "once", "trigger", "jobs", "status"])

    def test_every_command_has_help(self):
        for command in listed_commands():
            for flag in ("--help", "-h"):
                with self.subTest(command=command, flag=flag):
                    # --help wins wherever it stands, before the command's own checks (no --config here).
                    result = run(command, flag)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertEqual(result.stderr, "")
                    lines = result.stdout.splitlines()
                    self.assertTrue(lines[0].startswith(f"Usage: apsis-exportd {command} "), lines[0])
                    self.assertRegex(lines[1], r"^[A-Z].*\.$", "a one-sentence description")
                    self.assertIn("\nOptions:\n", result.stdout)
                    self.assertRegex(result.stdout, r"\n  --config FILE +\S")
                    self.assertRegex(result.stdout, r"\n  -h, --help +display this help and exit\n")
                    self.assertIn("Full documentation: man apsis-exportd", result.stdout)
        self.assertEqual(run("jobs", "--config", "nowhere.yaml", "--help").returncode, 0)

    def test_command_help_names_only_options_the_command_takes(self):
        for command in listed_commands():
            help_text = run(command, "--help").stdout
            options = re.findall(r"(?m)^  (--[a-z-]+)", help_text)
            for option in options:
                if option == "--config":
                    continue
                with self.subTest(command=command, option=option):
                    # Accepted by the parser: a missing --config is then the complaint, not the option.
                    result = run(command, option, "x") if option != "--json" else run(command, option)
                    self.assertNotIn("unknown option", result.stderr)


class VersionTest(unittest.TestCase):
    def test_version(self):
        expected = f"apsis-exportd {project_version()}"
        for args in (["--version"], ["-V"], ["status", "--version"], ["once", "-V"]):
            with self.subTest(args=args):
                result = run(*args)
                self.assertEqual(result.returncode, 0)
                self.assertEqual(result.stderr, "")
                lines = result.stdout.splitlines()
                self.assertEqual(lines[0], expected)
                self.assertTrue(lines[1].startswith("Copyright"), lines)


class UsageErrorTest(unittest.TestCase):
    def assert_usage_error(self, result, command):
        self.assertEqual(result.returncode, 64, result.stderr)
        self.assertEqual(result.stdout, "")
        where = f"apsis-exportd {command}" if command else "apsis-exportd"
        self.assertTrue(result.stderr.startswith(where + ": "), result.stderr)
        self.assertTrue(result.stderr.endswith(f"Try '{where} --help' for more information.\n"), result.stderr)

    def test_program_usage_errors(self):
        self.assert_usage_error(run(), "")
        self.assert_usage_error(run("frobnicate"), "")
        self.assert_usage_error(run("--frobnicate"), "")

    def test_command_usage_errors(self):
        self.assert_usage_error(run("once"), "once")
        self.assert_usage_error(run("once", "--config", "x.yaml"), "once")
        self.assert_usage_error(run("jobs", "--config", "x.yaml", "--frob"), "jobs")
        self.assert_usage_error(run("check", "--config"), "check")
        self.assert_usage_error(run("status", "--config", "x.yaml", "extra"), "status")


if __name__ == "__main__":
    unittest.main()
