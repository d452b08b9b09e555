"""The man pages document what the binary does: apsis-exportd.yaml(5) defines every key the loader
accepts, apsis-exportd(8) every command `apsis-exportd --help` lists, and the build makes them pages
that render.

The keys come from the loader itself, not from a list kept here: each section of a configuration gets
an unknown key, and `check` answers with "(expected one of: ...)". So a key added to the loader (and a
section: admin_web, once the loader knows it) must be documented before this passes.
"""

import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import DAEMON

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../.."))
MAN_SOURCES = os.path.join(ROOT, "man")
BUILT_MAN = os.path.join(os.path.dirname(os.path.abspath(DAEMON)), "man")
PROBE = "zz_not_a_key"

# A configuration `check` accepts offline. Written as JSON, which is YAML too.
BASE = {
    "state_db": "./state/jobs.sqlite3",
    "output_dir": "./exports",
    "accounts": {"main": {"base_url": "http://127.0.0.1:18080", "client_id": "id", "client_secret": "secret"}},
    "exports": {
        "dupes": {
            "account": "main",
            "kind": "duplicates",
            "request": {"segments": {"timezone": "UTC", "segment_discriminators": {"w": "usercreated.segments.w-1"},
                                     "filter": "w"}},
        },
    },
}

# Where to put the unknown key, and the heading of apsis-exportd.yaml(5) that documents the section.
SECTIONS = [
    ((), "top level"),
    (("accounts", "main"), "accounts.NAME"),
    (("accounts", "main", "paths"), "accounts.NAME.paths"),
    (("accounts", "main", "budget"), "accounts.NAME.budget"),
    (("polling",), "polling"),
    (("retry",), "retry"),
    (("exports", "dupes"), "exports.NAME"),
    (("exports", "dupes", "polling"), "polling"),
    (("exports", "dupes", "keep"), "exports.NAME.keep"),
    (("admin_web",), "admin_web"),
    (("admin_web", "tls_server_config"), "admin_web.tls_server_config"),
]

# The request bodies' documented keys are not a fixed list (undocumented keys pass through to APSIS
# One), so the loader names them only in its typo check: read from request_check.cpp as
# test_schema.py reads the loader's arrays.
REQUEST_ARRAYS = ["kDuplicatesKeys", "kConsentsKeys", "kSegmentsKeys", "kSegmentExportKeys", "kEventsKeys",
                  "kAttributeKeys", "kChannelKeys"]


def with_probe(path):
    doc = json.loads(json.dumps(BASE))
    node = doc
    for part in path:
        node = node.setdefault(part, {})
    node[PROBE] = 1
    return doc


def check(doc):
    with tempfile.TemporaryDirectory() as d:
        config = os.path.join(d, "exportd.yaml")
        with open(config, "w") as f:
            json.dump(doc, f)
        return subprocess.run([DAEMON, "check", "--config", config], capture_output=True, text=True, timeout=60)


def loader_keys(path):
    """The keys the loader accepts at `path`, or None when it does not know the section at all."""
    stderr = check(with_probe(path)).stderr
    for line in stderr.splitlines():
        match = re.search(rf"unknown key '{PROBE}' .*\(expected one of: (.*)\)", line)
        if match:
            return set(re.split(r", | or ", match.group(1)))
    if any(f"unknown key '{name}'" in stderr for name in path):
        return None  # e.g. admin_web before the loader reads it
    raise AssertionError(f"check did not name the keys at {'.'.join(path) or 'the top level'}:\n{stderr}")


def source_array(name):
    for source in glob.glob(os.path.join(ROOT, "daemon/config/*.cpp")):
        with open(source) as f:
            match = re.search(re.escape(name) + r"\s*\{([^}]*)\}", f.read())
        if match:
            return set(re.findall(r'"([^"]+)"', match.group(1)))
    raise AssertionError(f"{name} not found in daemon/config/*.cpp: update this test")


def scd_sections(page):
    """{heading: [keys defined under it]} of an scdoc page: a definition is a line `*key*` followed by
    a tab-indented paragraph; headings are `#` and `##` lines."""
    with open(os.path.join(MAN_SOURCES, page)) as f:
        lines = f.read().splitlines()
    sections, heading = {}, None
    for i, line in enumerate(lines):
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            sections.setdefault(heading, [])
            continue
        match = re.fullmatch(r"\*([A-Za-z0-9_.-]+)\*(?: .*)?", line)
        if match and heading and i + 1 < len(lines) and lines[i + 1].startswith("\t"):
            sections[heading].append(match.group(1))
    return sections


class ConfigPageTest(unittest.TestCase):
    def setUp(self):
        self.sections = scd_sections("apsis-exportd.yaml.5.scd")

    def test_base_configuration_is_valid(self):
        result = check(BASE)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_every_loader_key_is_defined_in_its_section(self):
        known = 0
        for path, heading in SECTIONS:
            with self.subTest(".".join(path) or "top level"):
                keys = loader_keys(path)
                if keys is None:
                    continue
                known += 1
                self.assertIn(heading, self.sections, "apsis-exportd.yaml(5) lacks the section")
                self.assertEqual(keys - set(self.sections[heading]), set(),
                                 f"keys the loader accepts but '## {heading}' does not define")
        self.assertGreaterEqual(known, 9)

    def test_every_documented_request_key_is_defined(self):
        defined = set()
        for heading, keys in self.sections.items():
            if heading.startswith("request"):
                defined.update(keys)
        for array in REQUEST_ARRAYS:
            with self.subTest(array):
                self.assertEqual(source_array(array) - defined, set())


class CommandPageTest(unittest.TestCase):
    def test_every_command_of_help_is_in_the_page(self):
        result = subprocess.run([DAEMON, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0)
        listing = result.stdout.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
        commands = [line.split()[0] for line in listing.splitlines()]
        self.assertIn("run", commands)
        with open(os.path.join(MAN_SOURCES, "apsis-exportd.8.scd")) as f:
            page = f.read()
        described = page.split("\n# COMMANDS\n", 1)[1].split("\n# ", 1)[0]
        synopsis = page.split("\n# SYNOPSIS\n", 1)[1].split("\n# ", 1)[0]
        for command in commands:
            with self.subTest(command):
                self.assertRegex(described, rf"(?m)^\*{command}\*( .*)?\n\t")
                self.assertIn(f"*apsis-exportd* *{command}*", synopsis)

    def test_every_exit_code_is_in_the_page(self):
        with open(os.path.join(ROOT, "daemon/cli/commands.hpp")) as f:
            codes = set(re.findall(r"inline constexpr int kExit\w+ = (\d+);", f.read()))
        self.assertTrue(codes)
        with open(os.path.join(MAN_SOURCES, "apsis-exportd.8.scd")) as f:
            status = f.read().split("\n# EXIT STATUS\n", 1)[1].split("\n# ", 1)[0]
        self.assertEqual(codes - set(re.findall(r"(?m)^\*(\d+)\*$", status)), set())


class BuiltPagesTest(unittest.TestCase):
    def test_pages_are_built_compressed_and_render(self):
        for page, title in (("apsis-exportd.8", "apsis-exportd(8)"), ("apsis-exportd.yaml.5", "apsis-exportd.yaml(5)")):
            with self.subTest(page):
                path = os.path.join(BUILT_MAN, page + ".gz")
                with gzip.open(path, "rt") as f:
                    roff = f.read()
                self.assertIn(".SH NAME", roff)
                with open(path, "rb") as f:
                    self.assertEqual(f.read(8)[4:8], b"\0\0\0\0", "gzip -n: no time stamp")
                if shutil.which("man"):
                    text = subprocess.run(["man", "-l", path], capture_output=True, text=True, timeout=30,
                                          env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"}).stdout
                    self.assertIn(title, text)
                    self.assertIn("SEE ALSO", text)


if __name__ == "__main__":
    unittest.main()
