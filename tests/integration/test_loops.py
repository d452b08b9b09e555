"""Issue 12, stops and hangs: the daemon's background loops outlive errors. A job table locked past
the busy timeout does not end a schedule (and /healthz says so while it is stuck), a stall does not
fire every missed slot at once, a SIGHUP onto a broken CA file or a FIFO leaves signals working,
non-regular files are refused as configuration, and the small CLI faults found beside them."""

import datetime
import json
import os
import re
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from harness import DAEMON, FakeServer, RunningDaemon, Workspace, wait_for


def utc_now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class LoopTest(unittest.TestCase):
    fake_args = ("--ready-after", "100ms", "--size", "2000")
    exports = {"tick": 'kind: duplicates\n    schedule: "every 1s"\n    output: "{export}/{job}.{ext}"'}
    top = ""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, *self.fake_args)
        self.ws = Workspace(self.fake, exports=self.exports, top_extra=self.top)
        self.daemons = []

    def tearDown(self):
        for daemon in self.daemons:
            if daemon.alive():
                daemon.stop(signal.SIGKILL)
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def start(self):
        daemon = RunningDaemon(self.ws)
        self.daemons.append(daemon)
        wait_for(lambda: "started:" in daemon.log(), what="the daemon to start")
        return daemon

    def hold_exclusive_lock(self, seconds, during=None):
        """BEGIN EXCLUSIVE on the job table for `seconds`; `during()` runs meanwhile. Returns the
        UTC times (ISO-8601) the lock was taken and released."""
        db = sqlite3.connect(self.ws.db, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")
            taken = utc_now_iso()
            deadline = time.monotonic() + seconds
            result = during(deadline) if during else None
            time.sleep(max(0.0, deadline - time.monotonic()))
            released = utc_now_iso()
            db.execute("ROLLBACK")
        finally:
            db.close()
        return taken, released, result


class AdminLoopTest(LoopTest):
    top = "admin_listen: 127.0.0.1:0\n"

    def start(self):
        daemon = super().start()
        port = re.search(r"admin endpoint on http://127\.0\.0\.1:(\d+)", daemon.log()).group(1)
        self.base = f"http://127.0.0.1:{port}"
        return daemon

    def healthz(self):
        # The event loop waits out SQLite's 10 s busy timeout on each write: answers may take that long.
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=40) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    # Item 5: "database is locked" at slot time ended the schedule loop silently, /healthz said ok.
    def test_a_lock_past_the_busy_timeout_does_not_end_the_schedule(self):
        daemon = self.start()
        wait_for(lambda: len(self.ws.rows("state = 'succeeded'")) >= 2, timeout=30, what="two published slots")
        answers = []

        def watch_health(deadline):
            while time.monotonic() < deadline - 2:
                answers.append(self.healthz())
                if answers[-1][0] == 503:
                    return
                time.sleep(0.5)

        taken, released, _ = self.hold_exclusive_lock(28, watch_health)
        self.assertTrue(daemon.alive())
        self.assertIn(503, [status for status, _ in answers], answers)
        stuck = [body for status, body in answers if status == 503][-1]
        self.assertEqual(stuck["status"], "failing")
        self.assertIn("tick", stuck["schedules_stuck"], stuck)
        self.assertRegex(daemon.log(), r"export=tick schedule: .*database is locked")

        # Slots resume once the lock is gone, and so does the health check.
        wait_for(lambda: self.ws.rows(f"state = 'succeeded' AND scheduled_for > '{released}'"), timeout=30,
                 what="a slot after the lock")
        wait_for(lambda: self.healthz()[0] == 200, timeout=20, what="/healthz to answer 200 again")
        # Item 6: the slots missed while stuck are passed over, not all started at once.
        during = self.ws.rows(f"scheduled_for > '{taken}' AND scheduled_for <= '{released}'")
        self.assertLessEqual(len(during), 2, [r["scheduled_for"] for r in during])
        self.assertIn("passed without a job", daemon.log())
        self.assertEqual(daemon.stop(), 0)


class StallTest(LoopTest):
    # Item 6: a 6 s lock (inside the busy timeout) made every slot missed meanwhile fire in one instant.
    def test_a_stall_starts_the_newest_missed_slot_only(self):
        daemon = self.start()
        wait_for(lambda: len(self.ws.rows("state = 'succeeded'")) >= 2, timeout=30, what="two published slots")
        taken, released, _ = self.hold_exclusive_lock(6)
        wait_for(lambda: self.ws.rows(f"scheduled_for > '{released}'"), timeout=30, what="a slot after the stall")
        time.sleep(1.5)
        during = self.ws.rows(f"scheduled_for > '{taken}' AND scheduled_for <= '{released}'")
        self.assertLessEqual(len(during), 2, [r["scheduled_for"] for r in during])
        self.assertTrue(daemon.alive())
        self.assertEqual(daemon.stop(), 0)


class ReloadTest(LoopTest):
    exports = {"dupes": "kind: duplicates"}

    def rewrite(self, old, new):
        with open(self.ws.config) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(self.ws.config, "w") as f:
            f.write(text.replace(old, new, 1))

    # Item 7: a readable non-PEM ca_file threw inside the reload; SIGTERM was ignored afterwards.
    def test_a_reload_with_a_non_pem_ca_file_keeps_the_old_config_and_sigterm_works(self):
        daemon = self.start()
        self.rewrite("    client_secret_file: ./secret\n", "    client_secret_file: ./secret\n    ca_file: ./secret\n")
        daemon.send(signal.SIGHUP)
        wait_for(lambda: "keeping the running configuration" in daemon.log(), what="the rejected reload")
        self.assertRegex(daemon.log(), r"reload rejected: .*exportd\.yaml:\d+:\d+: accounts\.main\.ca_file: .*PEM")
        check = self.ws.run("check", "--config", self.ws.config)
        self.assertEqual(check.returncode, 2)
        self.assertRegex(check.stderr, r"exportd\.yaml:\d+:\d+: accounts\.main\.ca_file: .*PEM")
        # Still serving with the old configuration: a trigger (written with the good file, not
        # reloaded) is picked up and published.
        self.rewrite("    ca_file: ./secret\n", "")
        self.assertEqual(self.ws.run("trigger", "--config", self.ws.config, "dupes").returncode, 0)
        wait_for(lambda: self.ws.rows("state = 'succeeded'"), timeout=30, what="the triggered job")
        self.assertEqual(daemon.stop(signal.SIGTERM, timeout=10), 0)

    # Item 9: a SIGHUP while the configuration path names a FIFO blocked the event loop in open().
    def test_a_reload_onto_a_fifo_is_refused_and_sigterm_works(self):
        daemon = self.start()
        os.rename(self.ws.config, self.ws.config + ".real")
        os.mkfifo(self.ws.config)
        daemon.send(signal.SIGHUP)
        wait_for(lambda: "keeping the running configuration" in daemon.log(), timeout=10, what="the rejected reload")
        self.assertIn("not a regular file", daemon.log())
        self.assertEqual(daemon.stop(signal.SIGTERM, timeout=10), 0)


class RegularFileTest(LoopTest):
    exports = {"dupes": "kind: duplicates"}

    def command(self, *args):
        proc = subprocess.run([DAEMON, *args], capture_output=True, text=True, timeout=10)
        return proc.returncode, proc.stderr

    # Item 9: check and run blocked forever on a FIFO as --config or client_secret_file.
    def test_a_fifo_as_the_configuration_is_refused(self):
        fifo = os.path.join(self.ws.dir, "fifo.yaml")
        os.mkfifo(fifo)
        for command in ("check", "run", "status"):
            code, err = self.command(command, "--config", fifo)
            self.assertEqual(code, 2, (command, err))
            self.assertIn("not a regular file", err)
            self.assertIn("FIFO", err)

    def test_a_fifo_as_client_secret_file_is_refused_at_its_position(self):
        os.remove(os.path.join(self.ws.dir, "secret"))
        os.mkfifo(os.path.join(self.ws.dir, "secret"))
        for command in ("check", "run"):
            code, err = self.command(command, "--config", self.ws.config)
            self.assertEqual(code, 2, (command, err))
            self.assertRegex(err, r"exportd\.yaml:\d+:\d+: accounts\.main\.client_secret_file: .*not a regular file")


class CliTest(LoopTest):
    exports = {"dupes": "kind: duplicates"}

    def test_jobs_with_a_limit_that_is_not_a_number_is_a_usage_error(self):
        for value in ("abc", "5x", "99999999999999999999", ""):
            result = self.ws.run("jobs", "--config", self.ws.config, "--limit", value)
            self.assertEqual(result.returncode, 64, (value, result.stderr))
            self.assertIn("--limit", result.stderr)
            self.assertNotIn("stoi", result.stderr)
        self.assertEqual(self.ws.run("jobs", "--config", self.ws.config, "--limit", "3").returncode, 0)


class OnceKilledTest(LoopTest):
    """Issue 12: a `once` killed with -9 left its row `downloading` until some later `run`. Now the next
    `once` of that export resumes it (no second export at APSIS One), a starting `run` takes it over,
    and neither touches the job of a `once` that is still running."""
    exports = {"dupes": "kind: duplicates"}

    def start_once(self):
        return subprocess.Popen([DAEMON, "once", "--config", self.ws.config, "dupes"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def kill_once_mid_download(self):
        self.fake.faults(download_slow=1)  # two seconds in `downloading`
        once = self.start_once()
        wait_for(lambda: self.ws.rows("state = 'downloading'"), what="the download to start")
        once.kill()
        once.communicate(timeout=10)
        self.assertEqual([r["state"] for r in self.ws.rows()], ["downloading"])

    def test_the_next_once_resumes_the_job_of_a_once_killed_with_9(self):
        self.kill_once_mid_download()
        result = self.ws.once()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("resuming job 1", result.stderr)
        rows = self.ws.rows()
        self.assertEqual([(r["id"], r["state"]) for r in rows], [(1, "succeeded")])
        self.assertEqual(rows[0]["download_attempts"], 2)
        self.assertEqual(self.fake.stats()["submissions"], 1, "no second export at APSIS One")
        self.assertEqual(result.stdout.strip(), rows[0]["output_path"])
        # Done: a third `once` is a new job.
        self.assertEqual(self.ws.once().returncode, 0)
        self.assertEqual([r["state"] for r in self.ws.rows()], ["succeeded", "succeeded"])

    def test_a_starting_run_takes_over_the_job_of_a_once_killed_with_9(self):
        self.kill_once_mid_download()
        daemon = self.start()
        wait_for(lambda: self.ws.rows("state = 'succeeded'"), timeout=30, what="the job to finish")
        self.assertIn("taken over from a `once`", daemon.log())
        self.assertEqual(daemon.stop(), 0)
        self.assertEqual(self.fake.stats()["submissions"], 1)

    def test_a_starting_run_leaves_a_running_once_alone(self):
        self.fake.faults(ready_after_ms=4000)
        once = self.start_once()
        wait_for(lambda: self.ws.rows("state = 'submitted'"), what="the once to submit")
        daemon = self.start()
        out, err = once.communicate(timeout=60)
        self.assertEqual(once.returncode, 0, err)
        self.assertIn("left to the `once` running it", daemon.log())
        self.assertNotIn("picked up", daemon.log())
        self.assertEqual(daemon.stop(), 0)
        rows = self.ws.rows()
        self.assertEqual([r["state"] for r in rows], ["succeeded"])
        self.assertEqual(rows[0]["download_attempts"], 1)
        self.assertEqual(len([f for f in self.ws.files() if ".apsis-part-" not in f]), 1)


if __name__ == "__main__":
    unittest.main()
