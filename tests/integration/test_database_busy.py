"""Issue 13, item 5: SQLite off the critical path. Another process holds the job database's write
lock (BEGIN IMMEDIATE) for 15 s while several jobs poll and their files become ready: no job fails
("database is locked" is transient, retried at the store boundary), every job publishes once the
lock is gone, and /healthz keeps answering meanwhile (503 "database busy" is fine)."""

import json
import re
import sqlite3
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import FakeServer, RunningDaemon, Workspace, wait_for

JOBS = 4
LOCK_SECONDS = 15


class DatabaseBusyTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        # Files become ready 8 s after submit: after every job is submitted (one submit a second), inside the 15 s lock.
        self.fake = FakeServer(self._tmp.name, "--ready-after", "8s", "--size", "2000")
        self.ws = Workspace(self.fake, polling="initial_delay: 500ms\n  multiplier: 2\n  max_delay: 1s",
                            exports={"dupes": 'kind: duplicates\n    output: "{export}/{job}.{ext}"'},
                            top_extra="admin_listen: 127.0.0.1:0\n")
        self.daemon = RunningDaemon(self.ws)
        wait_for(lambda: "started:" in self.daemon.log(), what="the daemon to start")
        port = re.search(r"admin endpoint on http://127\.0\.0\.1:(\d+)", self.daemon.log()).group(1)
        self.base = f"http://127.0.0.1:{port}"

    def tearDown(self):
        if self.daemon.alive():
            self.daemon.stop()
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def healthz(self):
        """(status, body, seconds it took); the loop must answer within a few seconds."""
        started = time.monotonic()
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=5) as res:
                return res.status, json.loads(res.read()), time.monotonic() - started
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), time.monotonic() - started

    def test_a_15_s_write_lock_fails_no_job_and_healthz_keeps_answering(self):
        for _ in range(JOBS):
            result = self.ws.run("trigger", "--config", self.ws.config, "dupes")
            self.assertEqual(result.returncode, 0, result.stderr)
        wait_for(lambda: len(self.ws.rows("state = 'submitted'")) == JOBS, timeout=30, what="every job submitted")

        answers = []
        db = sqlite3.connect(self.ws.db, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            deadline = time.monotonic() + LOCK_SECONDS
            while time.monotonic() < deadline:
                answers.append(self.healthz())
                time.sleep(0.5)
            db.execute("ROLLBACK")
        finally:
            db.close()

        self.assertTrue(self.daemon.alive())
        self.assertGreater(len(answers), 10)
        for status, body, _ in answers:
            self.assertIn(status, (200, 503), body)
        # The files became ready during the lock, so jobs had rows to write and waited for the
        # database (the write-ahead rule) while the loop went on answering.
        busy = [body for status, body, _ in answers if status == 503]
        self.assertTrue(busy, "no job waited for the database: the test did not exercise the lock")
        self.assertIn("database busy since", busy[-1]["database"], busy[-1])
        self.assertLess(max(seconds for _, _, seconds in answers), 2.0, "the loop stalled on SQLite")

        wait_for(lambda: len(self.ws.rows("state = 'succeeded'")) == JOBS, timeout=60,
                 what=f"all {JOBS} jobs published after the lock: {[r['state'] for r in self.ws.rows()]}"
                      f" {[r['error'] for r in self.ws.rows()]}")
        self.assertEqual(self.ws.rows("state <> 'succeeded'"), [])
        self.assertEqual(len(self.ws.files()), JOBS)
        self.assertEqual(self.daemon.stop(), 0)


if __name__ == "__main__":
    unittest.main()
