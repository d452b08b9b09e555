"""Fault matrix: network, API, disk and database faults each end in the expected state, with a
clear error, and never with a partial file."""

import os
import socket
import sqlite3
import tempfile
import unittest

from test_once import OnceTest
from harness import DAEMON, FakeServer, Workspace


class NetworkFaultTest(OnceTest):
    def test_a_storm_of_5xx_on_polls_then_recovery(self):
        self.fake.faults(poll_5xx=8)
        job = self.assert_succeeded(self.ws.once())
        self.assertGreaterEqual(job["polls"], 9)

    def test_429_without_retry_after_backs_off_and_recovers(self):
        self.fake.faults(submit_429=2, poll_429=2, retry_after=0)
        job = self.assert_succeeded(self.ws.once())
        self.assertEqual(job["submit_attempts"], 3)

    def test_token_endpoint_down_then_back(self):
        self.fake.faults(token_5xx=3)
        self.assert_succeeded(self.ws.once())
        self.assertEqual(self.fake.stats()["token_requests"], 4)

    def test_token_endpoint_down_for_good_fails_with_the_reason(self):
        self.fake.faults(token_5xx=-1)
        self.assertEqual(self.ws.once().returncode, 1)
        job = self.only_job()
        self.assertEqual(job["state"], "failed")
        self.assertIn("cannot get an API token", job["error"])
        self.assertRegex(job["error"], r"\b50[023]\b")

    def test_connections_reset_before_the_headers_are_polled_again(self):
        self.fake.faults(poll_reset=3)
        result = self.ws.once()
        job = self.assert_succeeded(result)
        self.assertIn("Connection reset by peer", result.stderr)
        resets = [r for r in self.fake.stats()["requests"] if r["target"].startswith("/exports/") and r["status"] == 0]
        self.assertEqual(len(resets), 3)
        self.assertGreaterEqual(self.fake.stats()["polls"], 4)
        self.assertEqual(len(self.ws.files()), 1)
        self.assertGreaterEqual(job["polls"], 2)

    def test_a_slow_body_is_waited_for(self):
        self.fake.faults(download_slow=1)
        self.assert_succeeded(self.ws.once())


class ConnectionRefusedTest(unittest.TestCase):
    def test_connection_refused_fails_with_the_reason_after_retries(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again when the block ends: nobody listens there

        class Closed:
            base_url = f"http://127.0.0.1:{port}"
        ws = Workspace(Closed())
        try:
            result = ws.once()
            self.assertEqual(result.returncode, 1)
            job = ws.jobs()[0]
            self.assertEqual(job["state"], "failed")
            self.assertIn("Connection refused", job["error"])
            self.assertEqual(ws.files(), [])
        finally:
            ws.cleanup()


class DiskFaultTest(OnceTest):
    exports = {"blocked": "kind: duplicates", "fine": "kind: duplicates"}

    def test_an_unwritable_output_place_fails_that_export_only(self):
        os.makedirs(self.ws.output_dir)
        with open(os.path.join(self.ws.output_dir, "blocked"), "w") as f:
            f.write("a file where the export's directory should be")
        self.assertEqual(self.ws.once("blocked").returncode, 1)
        job = self.ws.jobs("--export", "blocked")[0]
        self.assertEqual(job["state"], "failed")
        self.assertIn("blocked", job["error"])
        self.assertEqual(self.ws.files(), ["blocked"], "nothing partial was written")
        self.assertEqual(self.ws.once("fine").returncode, 0)

    def test_a_long_held_reader_does_not_stall_the_daemon(self):
        self.assertEqual(self.ws.once("fine").returncode, 0)
        reader = sqlite3.connect(self.ws.db)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM jobs").fetchone()  # holds a read snapshot from here on
        try:
            self.assertEqual(self.ws.once("fine").returncode, 0)
        finally:
            reader.close()
        self.assertEqual(len(self.ws.jobs("--state", "succeeded")), 2)


class DatabaseFaultTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self.tmp.name, "--ready-after", "100ms")
        self.ws = Workspace(self.fake)
        os.makedirs(os.path.dirname(self.ws.db))

    def tearDown(self):
        self.fake.stop()
        self.ws.cleanup()
        self.tmp.cleanup()

    def test_a_corrupt_database_is_refused_and_left_untouched(self):
        garbage = os.urandom(8192)
        with open(self.ws.db, "wb") as f:
            f.write(garbage)
        result = self.ws.once()
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("database", result.stderr)
        with open(self.ws.db, "rb") as f:
            self.assertEqual(f.read(), garbage)
        self.assertEqual(self.fake.stats()["submissions"], 0)

    def test_a_newer_schema_is_refused_and_left_untouched(self):
        db = sqlite3.connect(self.ws.db)
        db.execute("CREATE TABLE jobs (id INTEGER)")
        db.execute("PRAGMA user_version = 42")
        db.commit()
        db.close()
        result = self.ws.once()
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("newer than this apsis-exportd", result.stderr)
        db = sqlite3.connect(self.ws.db)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 42)


if __name__ == "__main__":
    unittest.main()
