"""`apsis-exportd status` against a real job table: next runs in each export's zone, last results of
real `once` runs, in-flight counts from rows written with sqlite3, exports the file no longer has,
and the errors of a bad file or an unreadable database."""

import datetime
import json
import os
import re
import sqlite3
import tempfile
import unittest
from zoneinfo import ZoneInfo

from harness import FakeServer, Workspace

UTC = datetime.timezone.utc
STOCKHOLM = ZoneInfo("Europe/Stockholm")
TOKYO = ZoneInfo("Asia/Tokyo")

EXPORTS = {
    "dupes": "kind: duplicates\n    schedule: \"30 6 * * *\"\n    timezone: Europe/Stockholm",
    "consents": "kind: consents\n    schedule: \"every 15m\"\n    timezone: Asia/Tokyo",
    "adhoc": "kind: duplicates",
}


def iso_utc(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def offset_text(local):
    offset = local.strftime("%z")
    return offset[:3] + ":" + offset[3:]


def next_daily(after, hour, minute, zone):
    """The first local hour:minute in `zone` strictly after `after` (a time that always exists there)."""
    local = after.astimezone(zone)
    for days in range(3):
        day = local.date() + datetime.timedelta(days=days)
        candidate = datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=zone)
        if candidate > local:
            return candidate
    raise AssertionError("unreachable")


def next_interval(after, period):
    """Interval slots are multiples of the period since the Unix epoch."""
    seconds = int(period.total_seconds())
    return datetime.datetime.fromtimestamp((int(after.timestamp()) // seconds + 1) * seconds, UTC)


def blocks(text):
    """The export blocks of the terminal output, by export name."""
    found = {}
    for block in text.split("\n\n")[1:]:
        heading = block.splitlines()[0]
        found[heading[2:].split("  ")[0]] = block
    return found


class StatusTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, "--ready-after", "100ms")
        self.ws = Workspace(self.fake, exports=EXPORTS)

    def tearDown(self):
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def run_status(self, *args):
        before = datetime.datetime.now(UTC)
        result = self.ws.run("status", "--config", self.ws.config, *args)
        after = datetime.datetime.now(UTC)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout, before, after

    def status(self):
        text, before, after = self.run_status()
        for line in text.splitlines():
            self.assertLessEqual(len(line), 80, line)
        self.assertNotIn("\033", text, "no colour when stdout is not a terminal")
        return text, before, after

    def status_json(self):
        text, before, after = self.run_status("--json")
        return json.loads(text), before, after

    def insert(self, export, state, scheduled_for, finished_at=None, error=None):
        with sqlite3.connect(self.ws.db) as db:
            db.execute("INSERT INTO jobs (export, scheduled_for, state, definition, created_at, finished_at, error)"
                       " VALUES (?, ?, ?, '{}', ?, ?, ?)",
                       (export, scheduled_for, state, iso_utc(datetime.datetime.now(UTC)), finished_at, error))
        db.close()

    def test_without_a_database_every_export_is_listed_with_no_jobs_yet(self):
        text, _, _ = self.status()
        self.assertIn("(no job table yet)", text)
        found = blocks(text)
        self.assertEqual(list(found), ["adhoc", "consents", "dupes"], "sorted by name")
        for name, block in found.items():
            self.assertIn("no jobs yet", block, name)
            self.assertIn("in flight  none", block, name)
        self.assertIn("none (trigger/once only)", found["adhoc"])
        self.assertNotIn("next run", found["adhoc"])
        self.assertIn("30 6 * * *  (Europe/Stockholm)", found["dupes"])
        self.assertIn("duplicates, account main", found["dupes"].splitlines()[0])
        self.assertFalse(os.path.exists(self.ws.db), "status never creates the database")

        report, _, _ = self.status_json()
        for export in report["exports"]:
            self.assertIsNone(export["last_result"])
            self.assertEqual(export["in_flight"], {"pending": 0, "submitted": 0, "downloading": 0})
        self.assertEqual(report["unknown_exports"], [])

    def test_next_run_is_shown_in_the_export_zone(self):
        text, before, after = self.status()
        found = blocks(text)
        expected = {next_daily(before, 6, 30, STOCKHOLM), next_daily(after, 6, 30, STOCKHOLM)}
        shown = [f"{slot.strftime('%a %Y-%m-%d %H:%M:%S %Z')} ({offset_text(slot)}), in " for slot in expected]
        self.assertTrue(any(s in found["dupes"] for s in shown), (shown, found["dupes"]))
        every = {next_interval(before, datetime.timedelta(minutes=15)).astimezone(TOKYO),
                 next_interval(after, datetime.timedelta(minutes=15)).astimezone(TOKYO)}
        shown = [f"{slot.strftime('%a %Y-%m-%d %H:%M:%S')} JST (+09:00), in " for slot in every]
        self.assertTrue(any(s in found["consents"] for s in shown), (shown, found["consents"]))

        report, before, after = self.status_json()
        generated = datetime.datetime.fromisoformat(report["generated_at"].replace("Z", "+00:00"))
        self.assertTrue(before - datetime.timedelta(seconds=1) <= generated <= after)
        self.assertEqual(report["config"], self.ws.config)
        self.assertEqual(report["state_db"], self.ws.db)
        exports = {e["name"]: e for e in report["exports"]}
        self.assertEqual(list(exports), ["adhoc", "consents", "dupes"])
        dupes = exports["dupes"]
        self.assertEqual((dupes["kind"], dupes["account"], dupes["schedule"], dupes["timezone"]),
                         ("duplicates", "main", "30 6 * * *", "Europe/Stockholm"))
        slots = {next_daily(before, 6, 30, STOCKHOLM), next_daily(after, 6, 30, STOCKHOLM)}
        self.assertIn(dupes["next_run"], {iso_utc(s) for s in slots})
        local = datetime.datetime.fromisoformat(dupes["next_run_local"])
        self.assertIn(local, slots)
        self.assertEqual(local.utcoffset(), local.astimezone(STOCKHOLM).utcoffset(), "the zone's own offset")
        self.assertEqual(exports["consents"]["kind"], "consents")
        self.assertTrue(exports["consents"]["next_run_local"].endswith("+09:00"))
        adhoc = exports["adhoc"]
        self.assertEqual((adhoc["schedule"], adhoc["timezone"], adhoc["next_run"], adhoc["next_run_local"]),
                         (None, "UTC", None, None))

    def test_last_results_in_flight_counts_and_exports_gone_from_the_file(self):
        self.assertEqual(self.ws.once("dupes").returncode, 0)
        self.fake.faults(submit_400=1)
        self.assertEqual(self.ws.once("consents").returncode, 1)
        jobs = {job["export"]: job for job in self.ws.jobs()}
        succeeded, failed = jobs["dupes"], jobs["consents"]
        # A slot skipped while the failed job ran is newer, but what the export last did is the failure.
        now = iso_utc(datetime.datetime.now(UTC))
        self.insert("consents", "skipped", "2026-01-01T00:15:00.000Z", finished_at=now,
                    error="the export's previous job was still running (overlap: skip)")
        for i, state in enumerate(["pending", "pending", "submitted", "downloading"]):
            self.insert("adhoc", state, f"2026-01-01T00:0{i}:00.000Z")
        three_days_ago = datetime.datetime.now(UTC) - datetime.timedelta(days=3, minutes=1)
        self.insert("retired", "failed", "2025-12-01T00:00:00.000Z", finished_at=iso_utc(three_days_ago),
                    error="gone")
        self.insert("retired", "pending", "2025-12-02T00:00:00.000Z")

        text, _, _ = self.status()
        found = blocks(text)
        self.assertTrue(found["dupes"].startswith("  dupes"), "no warning marker after a success")
        self.assertRegex(found["dupes"], r"last run   succeeded \w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T, "
                                         rf"\d+s ago, job {succeeded['id']}\n")
        self.assertIn(f"{os.path.basename(succeeded['output_path'])}, 1.0 MiB", found["dupes"])
        self.assertTrue(found["consents"].startswith("! consents"), "a failed export is marked")
        self.assertRegex(found["consents"], rf"last run   failed \w{{3}} .* JST, \d+s ago, job {failed['id']}\n")
        self.assertIn("(API says: Invalid filter expression", " ".join(found["consents"].split()))
        self.assertIn("in flight  2 pending, 1 submitted, 1 downloading", found["adhoc"])
        self.assertIn("none finished yet", found["adhoc"])
        tail = text.split("no longer in the configuration:\n")[1]
        self.assertEqual(tail, "! retired  2 jobs (1 in flight), last failed 3d ago\n")

        report, _, _ = self.status_json()
        exports = {e["name"]: e for e in report["exports"]}
        last = exports["dupes"]["last_result"]
        self.assertEqual(last["job_id"], succeeded["id"])
        self.assertEqual(last["state"], "succeeded")
        self.assertEqual((last["scheduled_for"], last["finished_at"]),
                         (succeeded["scheduled_for"], succeeded["finished_at"]))
        self.assertEqual((last["output_path"], last["bytes"], last["error"]),
                         (succeeded["output_path"], 1048576, None))
        self.assertTrue(0 <= last["age_seconds"] < 60, last)
        last = exports["consents"]["last_result"]
        self.assertEqual((last["job_id"], last["state"], last["output_path"], last["bytes"]),
                         (failed["id"], "failed", None, None))
        self.assertIn("Invalid filter expression", last["error"])
        self.assertEqual(exports["consents"]["counts"],
                         {"pending": 0, "submitted": 0, "downloading": 0, "succeeded": 0, "failed": 1,
                          "expired": 0, "skipped": 1})
        self.assertEqual(exports["adhoc"]["in_flight"], {"pending": 2, "submitted": 1, "downloading": 1})
        self.assertIsNone(exports["adhoc"]["last_result"])
        [retired] = report["unknown_exports"]
        self.assertEqual(retired["name"], "retired")
        self.assertEqual(retired["in_flight"], {"pending": 1, "submitted": 0, "downloading": 0})
        self.assertEqual((retired["last_result"]["state"], retired["last_result"]["error"]), ("failed", "gone"))
        self.assertNotIn("kind", retired)

    def test_long_values_are_fitted_to_80_columns(self):
        self.assertEqual(self.ws.once("dupes").returncode, 0)
        self.insert("adhoc", "failed", "2026-01-01T00:00:00.000Z", finished_at=iso_utc(datetime.datetime.now(UTC)),
                    error="403 Forbidden:\n" + "x" * 300 + "\033[2J")
        text, _, _ = self.status()  # asserts every line fits and no escape sequence gets through
        lines = blocks(text)["adhoc"].splitlines()
        error = lines[lines.index(next(l for l in lines if l.startswith("  last run"))) + 1:-1]
        self.assertEqual(error, [" " * 13 + "403 Forbidden:", " " * 13 + "x" * 67, " " * 13 + "x" * 64 + "..."])

    def test_bad_config_is_reported_like_check(self):
        with open(self.ws.config, "a") as f:
            f.write("    colour: blue\n")
        result = self.ws.run("status", "--config", self.ws.config)
        self.assertEqual(result.returncode, 2)
        self.assertRegex(result.stderr, re.escape(self.ws.config) + r":\d+:\d+: .*colour")
        self.assertEqual(result.stdout, "")

    def test_a_newer_database_is_refused(self):
        self.assertEqual(self.ws.once("dupes").returncode, 0)
        with sqlite3.connect(self.ws.db) as db:
            db.execute("PRAGMA user_version = 99")
        db.close()
        result = self.ws.run("status", "--config", self.ws.config)
        self.assertEqual(result.returncode, 1)
        self.assertIn("schema version 99", result.stderr)
        self.assertEqual(result.stdout, "")

    def test_a_file_that_is_no_database_is_refused(self):
        os.makedirs(os.path.dirname(self.ws.db))
        with open(self.ws.db, "wb") as f:
            f.write(b"not a database, just text" * 100)
        result = self.ws.run("status", "--config", self.ws.config, "--json")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"cannot read the job table: {self.ws.db}: ", result.stderr)
        self.assertEqual(result.stdout, "")

    def test_usage_errors(self):
        self.assertEqual(self.ws.run("status", "--config", self.ws.config, "dupes").returncode, 64)
        self.assertEqual(self.ws.run("status").returncode, 64)


if __name__ == "__main__":
    unittest.main()
