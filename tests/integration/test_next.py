"""`apsis-exportd next`: the real binary previews an export's slots across daylight-saving changes
from a chosen --from, without a server and without touching the job table."""

import datetime
import json
import os
import re
import types
import unittest
from zoneinfo import ZoneInfo

from harness import Workspace

UTC = datetime.timezone.utc
STOCKHOLM = ZoneInfo("Europe/Stockholm")

EXPORTS = {
    "nightly": "kind: duplicates\n    schedule: \"30 2 * * *\"\n    timezone: Europe/Stockholm",
    "hourly": "kind: duplicates\n    schedule: \"30 * * * *\"\n    timezone: Europe/Stockholm",
    "adhoc": "kind: duplicates",
}

# A slot line: "  Sun 2027-03-28 03:00:00 CEST +02:00   2027-03-28 01:00:00 UTC  (note)".
SLOT = re.compile(r"^  \w{3} (\S+ \S+) (\S+) +([+-]\d\d:\d\d)   (\S+ \S+) UTC(?:  \((.*)\))?$")


def slots_of(text, export):
    """The parsed slot lines of one export's block."""
    block = next(b for b in text.split("\n\n") if b.startswith(export + "  "))
    return [SLOT.match(line).groups() for line in block.splitlines()[1:]]


def utc(text):
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


class NextTest(unittest.TestCase):
    def setUp(self):
        # No server: `next` must not contact one, so the account points at a closed port.
        self.ws = Workspace(types.SimpleNamespace(base_url="http://127.0.0.1:9"), exports=EXPORTS)

    def tearDown(self):
        self.ws.cleanup()

    def next(self, *args):
        return self.ws.run("next", "--config", self.ws.config, *args)

    def assert_local_matches_zoneinfo(self, slots):
        """The local column, zone and offset agree with Python's zoneinfo reading of the UTC column."""
        for local, zone, offset, utc_text, _ in slots:
            expected = utc(utc_text).astimezone(STOCKHOLM)
            self.assertEqual(local, expected.strftime("%Y-%m-%d %H:%M:%S"))
            self.assertEqual(zone, expected.tzname())
            self.assertEqual(offset, expected.strftime("%z")[:3] + ":" + expected.strftime("%z")[3:])

    def test_spring_forward_moves_the_skipped_slot_to_the_end_of_the_gap(self):
        result = self.next("nightly", "--from", "2027-03-26T00:00:00Z")
        self.assertEqual(result.returncode, 0, result.stderr)
        slots = slots_of(result.stdout, "nightly")
        self.assertEqual([s[3] for s in slots], [
            "2027-03-26 01:30:00", "2027-03-27 01:30:00",
            "2027-03-28 01:00:00",  # 02:30 does not exist on the 28th: the gap ends at 03:00 CEST = 01:00 UTC
            "2027-03-29 00:30:00", "2027-03-30 00:30:00"])
        self.assert_local_matches_zoneinfo(slots)
        notes = [s[4] for s in slots]
        self.assertIsNone(notes[0])
        self.assertIsNone(notes[1])
        self.assertIn("DST starts 2027-03-28 02:00 → 03:00", notes[2])
        self.assertIn("offset +01:00 → +02:00", notes[2])
        self.assertIn("02:30 does not exist, runs at 03:00", notes[2])
        self.assertEqual(notes[3:], [None, None])
        self.assertNotIn("hourly", result.stdout, "EXPORT shows that export alone")
        self.assertFalse(os.path.exists(self.ws.db), "next must not open or create the job table")

    def test_fall_back_runs_the_repeated_time_once(self):
        result = self.next("nightly", "--from", "2027-10-30T00:00:00Z", "--count", "3")
        self.assertEqual(result.returncode, 0, result.stderr)
        slots = slots_of(result.stdout, "nightly")
        self.assertEqual([s[3] for s in slots],
                         ["2027-10-30 00:30:00", "2027-10-31 00:30:00", "2027-11-01 01:30:00"])
        self.assert_local_matches_zoneinfo(slots)
        self.assertIn("02:30 occurs twice, runs in CEST, not again in CET", slots[1][4])
        self.assertIn("offset +02:00 → +01:00", slots[2][4])

    def test_every_export_is_listed_and_one_without_schedule_says_so(self):
        result = self.next("--from", "2027-10-31T00:00:00Z", "--count", "3")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("adhoc  no schedule: runs only by trigger or once", result.stdout)
        hourly = slots_of(result.stdout, "hourly")
        self.assertEqual([s[0] for s in hourly],
                         ["2027-10-31 02:30:00", "2027-10-31 02:30:00", "2027-10-31 03:30:00"])
        self.assertIn("runs in CEST and again in CET", hourly[0][4])
        self.assertIn("02:30 again, now in CET", hourly[1][4])
        self.assertEqual(len(slots_of(result.stdout, "nightly")), 3)

    def test_json_parses_and_carries_the_marks(self):
        result = self.next("--json", "--from", "2027-03-27T00:00:00Z", "--count", "2")
        self.assertEqual(result.returncode, 0, result.stderr)
        document = json.loads(result.stdout)
        self.assertEqual(document["from"], "2027-03-27T00:00:00.000Z")
        exports = {e["name"]: e for e in document["exports"]}
        self.assertEqual(set(exports), {"nightly", "hourly", "adhoc"})
        self.assertEqual(exports["adhoc"]["slots"], [])
        self.assertIsNone(exports["adhoc"]["schedule"])
        moved = exports["nightly"]["slots"][1]
        self.assertEqual(moved["utc"], "2027-03-28T01:00:00.000Z")
        self.assertEqual(moved["local"], "2027-03-28T03:00:00+02:00")
        self.assertEqual((moved["offset"], moved["zone"], moved["dst"]), ("+02:00", "CEST", "gap_moved"))
        self.assertIn("02:30 does not exist", moved["dst_note"])
        self.assertIsNone(exports["nightly"]["slots"][0]["dst_note"])

    def test_unknown_export_is_a_configuration_error_naming_the_defined_ones(self):
        result = self.next("nighly")
        self.assertEqual(result.returncode, 2)
        self.assertIn("no export named 'nighly'", result.stderr)
        self.assertIn("adhoc, hourly, nightly", result.stderr)
        self.assertEqual(result.stdout, "")

    def test_bad_count_and_from_are_usage_errors(self):
        for args in (["--count", "0"], ["--count", "1001"], ["--count", "five"],
                     ["--from", "2027-03-26"], ["--from", "2027-03-26T00:00:00"]):
            with self.subTest(args=args):
                result = self.next(*args)
                self.assertEqual(result.returncode, 64, result.stderr)
                self.assertIn("apsis-exportd next: --", result.stderr)

    def test_from_with_an_offset_is_the_same_instant(self):
        with_offset = self.next("nightly", "--from", "2027-03-26T01:00:00+01:00")
        with_z = self.next("nightly", "--from", "2027-03-26T00:00:00Z")
        self.assertEqual(with_offset.stdout, with_z.stdout)


if __name__ == "__main__":
    unittest.main()
