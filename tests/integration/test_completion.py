"""completion/apsis-exportd, the bash completion: sourced in bash (with bash-completion's helpers when
the package is installed, and without them), its function run on a command line as bash would."""

import json
import os
import shlex
import subprocess
import tempfile
import unittest

from harness import DAEMON

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../.."))
SCRIPT = os.path.join(ROOT, "completion/apsis-exportd")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"

CONFIG = {
    "state_db": "./state/jobs.sqlite3",
    "output_dir": "./exports",
    "accounts": {"main": {"base_url": "http://127.0.0.1:18080", "client_id": "id", "client_secret": "secret"}},
    "exports": {
        name: {"account": "main", "kind": "duplicates", "schedule": "@daily",
               "request": {"segments": {"timezone": "UTC", "segment_discriminators": {"w": "usercreated.segments.w-1"},
                                        "filter": "w"}}}
        for name in ("alpha-daily", "alpha-hourly", "beta")
    },
}


def bash_words(words):
    """COMP_WORDS as bash splits them: '=' is in COMP_WORDBREAKS, so --config=FILE is three words."""
    out = []
    for word in words:
        if word.startswith("--") and "=" in word:
            name, value = word.split("=", 1)
            out += [name, "=", value]
        else:
            out.append(word)
    return out


def complete(words, helpers, cwd=None):
    """COMPREPLY for the command line `words`, the last word being completed (may be "")."""
    words = bash_words(words)
    line = " ".join(shlex.quote(w) if w else "" for w in words)
    script = []
    if helpers:
        script.append(f"source {shlex.quote(BASH_COMPLETION)}")
    script += [
        f"source {shlex.quote(SCRIPT)}",
        "COMP_WORDS=(" + " ".join(shlex.quote(w) for w in words) + ")",
        f"COMP_CWORD={len(words) - 1}",
        f"COMP_LINE={shlex.quote(line)}",
        "COMP_POINT=${#COMP_LINE}",
        "_apsis_exportd",
        "printf '%s\\n' \"${COMPREPLY[@]}\"",
    ]
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(script)], capture_output=True,
                            text=True, timeout=60, cwd=cwd)
    if result.returncode != 0:
        raise AssertionError(f"bash failed ({result.returncode}): {result.stderr}")
    return sorted(w for w in result.stdout.splitlines() if w)


class CompletionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.config = os.path.join(cls.dir.name, "exportd.yaml")
        with open(cls.config, "w") as f:
            json.dump(CONFIG, f)
        check = subprocess.run([DAEMON, "check", "--config", cls.config], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        cls.modes = [False] + ([True] if os.path.exists(BASH_COMPLETION) else [])

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def each_mode(self, words, expected, cwd=None):
        for helpers in self.modes:
            with self.subTest(words=words[1:], helpers=helpers):
                self.assertEqual(complete([DAEMON, *words], helpers, cwd), expected)

    def test_bash_completion_is_installed_for_ci(self):
        # .ci/install-deps installs it; without it only the fallback path is tested.
        self.assertTrue(os.path.exists(BASH_COMPLETION), "install Debian's bash-completion")

    def test_sourcing_registers_the_function_for_the_command(self):
        result = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                                 f"source {shlex.quote(SCRIPT)} && complete -p apsis-exportd"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.stdout.strip(), "complete -F _apsis_exportd apsis-exportd", result.stderr)

    def test_command_prefix(self):
        self.each_mode(["tr"], ["trigger"])
        self.each_mode(["ch"], ["check"])
        commands = complete([DAEMON, ""], False)
        self.assertTrue({"run", "check", "once", "trigger", "jobs", "status"} <= set(commands), commands)

    def test_options_of_a_command(self):
        self.each_mode(["once", "--c"], ["--config"])
        self.each_mode(["jobs", "--config", self.config, "--st"], ["--state"])
        self.each_mode(["check", "--l"], ["--list-exports"])

    def test_states_after_state(self):
        self.each_mode(["jobs", "--state", "s"], ["submitted", "succeeded"])

    def test_files_after_config(self):
        self.each_mode(["run", "--config", os.path.join(self.dir.name, "exp")], [self.config])

    def test_export_names_of_the_configuration_on_the_line(self):
        self.each_mode(["once", "--config", self.config, "al"], ["alpha-daily", "alpha-hourly"])
        self.each_mode(["trigger", f"--config={self.config}", ""], ["alpha-daily", "alpha-hourly", "beta"])
        self.each_mode(["jobs", "--config", self.config, "--export", "b"], ["beta"])

    def test_relative_config_and_missing_config(self):
        self.each_mode(["once", "--config", "exportd.yaml", "b"], ["beta"], cwd=self.dir.name)
        # No --config and no packaged file (or one without such exports): nothing, and no error.
        self.each_mode(["once", "--config", "/nonexistent.yaml", ""], [])

    def test_no_export_names_for_commands_without_export(self):
        self.each_mode(["status", "--config", self.config, "--j"], ["--json"])
        self.each_mode(["jobs", "--config", self.config, "--limit", ""], [])


if __name__ == "__main__":
    unittest.main()
