"""`apsis-exportd run`: schedules publish files, kill -9 at any point and a restart yield exactly
one file per slot with no second submission, SIGHUP reloads (or keeps the old config), SIGTERM
leaves resumable rows, triggers and systemd notifications work."""

import datetime
import os
import re
import signal
import socket
import tempfile
import time
import unittest

from harness import FakeServer, RunningDaemon, Workspace, sha256_file, wait_for


class DaemonTest(unittest.TestCase):
    fake_args = ("--ready-after", "300ms", "--size", "200000")
    exports = None

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, *self.fake_args)
        self.ws = Workspace(self.fake, exports=self.exports)
        self.daemons = []

    def tearDown(self):
        for daemon in self.daemons:
            if daemon.alive():
                daemon.stop(signal.SIGKILL)
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def start(self, env=None):
        daemon = RunningDaemon(self.ws, env)
        self.daemons.append(daemon)
        return daemon

    def jobs(self, **filters):
        jobs = self.ws.jobs()
        return [j for j in jobs if all(j[k] == v for k, v in filters.items())]

    def assert_one_complete_file_per_succeeded_slot(self):
        jobs = self.ws.jobs()
        slots = [(j["export"], j["scheduled_for"]) for j in jobs]
        self.assertEqual(len(slots), len(set(slots)), "one row per slot")
        succeeded = [j for j in jobs if j["state"] == "succeeded"]
        files = self.ws.files()
        self.assertEqual([f for f in files if ".apsis-part-" in f], [], "no temporary files")
        self.assertEqual(len(files), len(succeeded), (files, succeeded))
        for job in succeeded:
            self.assertEqual(sha256_file(job["output_path"]), job["sha256"])
        return succeeded


class ScheduleTest(DaemonTest):
    exports = {
        "every2": 'kind: duplicates\n    schedule: "every 2s"\n    output: "{export}/{job}.{ext}"',
        "every3": 'kind: consents\n    schedule: "every 3s"\n    format: xlsx\n    output: "{export}/{job}.{ext}"',
        "zipped": 'kind: duplicates\n    schedule: "every 2s"\n    compression: gzip\n    output: "{export}/{job}.{ext}"',
    }

    def test_several_exports_on_second_schedules_all_publish(self):
        daemon = self.start()
        wait_for(lambda: all(len(self.jobs(export=e, state="succeeded")) >= 2 for e in self.exports),
                 timeout=40, what="two published files per export")
        self.assertEqual(daemon.stop(), 0)
        succeeded = self.assert_one_complete_file_per_succeeded_slot()
        self.assertGreaterEqual(len(succeeded), 6)
        log = daemon.log()
        self.assertIn("export=every2 job=", log)
        self.assertEqual(self.fake.stats()["token_requests"], 1, "one token shared by every job")

    def test_a_slot_that_comes_while_the_previous_job_runs_is_skipped(self):
        self.fake.faults(ready_after_ms=3500)
        daemon = self.start()
        wait_for(lambda: self.jobs(export="every2", state="skipped"), timeout=20, what="a skipped slot")
        daemon.stop()
        skipped = self.jobs(export="every2", state="skipped")[0]
        self.assertIn("overlap: skip", skipped["error"])
        self.assertEqual(skipped["submit_attempts"], 0)


class CatchupTest(DaemonTest):
    exports = {
        "latest": 'kind: duplicates\n    schedule: "every 2s"\n    output: "{export}/{job}.{ext}"',
        "none": 'kind: duplicates\n    schedule: "every 2s"\n    catchup: none\n    output: "{export}/{job}.{ext}"',
    }

    def test_the_newest_missed_slot_runs_once_after_downtime(self):
        daemon = self.start()
        wait_for(lambda: self.jobs(export="latest", state="succeeded") and self.jobs(export="none", state="succeeded"),
                 timeout=20, what="a first run of each export")
        daemon.stop()
        stopped_at = utc_now_iso()
        time.sleep(5)  # two or three slots pass while the daemon is down
        restarted = self.start()
        wait_for(lambda: "started" in restarted.log(), what="start")
        restarted.stop()
        log = restarted.log()
        self.assertEqual(log.count("export=latest catching up the missed slot"), 1, log)
        self.assertNotIn("export=none catching up", log)
        # The slot caught up is the newest one before the restart; a slow start (sanitizers) may let
        # one more pass, so the window ends at the slot the daemon names, not at a clock read here.
        caught_up = re.search(r"export=latest catching up the missed slot (\S+)", log)[1]
        self.assertGreater(caught_up, stopped_at)

        def slots_in_downtime(export):
            return [j["scheduled_for"] for j in self.jobs(export=export) if stopped_at < j["scheduled_for"] <= caught_up]
        self.assertEqual(slots_in_downtime("latest"), [caught_up], "only the newest missed slot")
        self.assertEqual(slots_in_downtime("none"), [])


def utc_now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class CrashTest(DaemonTest):
    exports = {"dupes": "kind: duplicates"}

    def trigger(self):
        result = self.ws.run("trigger", "--config", self.ws.config, "dupes")
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_kill_9_mid_poll_then_restart_finishes_without_a_second_submit(self):
        self.fake.faults(ready_after_ms=4000)
        daemon = self.start()
        self.trigger()
        wait_for(lambda: self.fake.stats()["polls"] >= 1, what="polling")
        daemon.stop(signal.SIGKILL)
        self.assertEqual(self.jobs()[0]["state"], "submitted")
        restarted = self.start()
        wait_for(lambda: self.jobs(state="succeeded"), timeout=30, what="the resumed job to finish")
        restarted.stop()
        self.assertEqual(self.fake.stats()["submissions"], 1)
        self.assertEqual(len(self.assert_one_complete_file_per_succeeded_slot()), 1)
        self.assertIn("picked up in state submitted", restarted.log())

    def test_kill_9_mid_download_then_restart_downloads_again(self):
        self.fake.faults(download_slow=1)  # 20 bytes at 100 ms each: two seconds in `downloading`
        daemon = self.start()
        self.trigger()
        wait_for(lambda: self.jobs(state="downloading"), what="the download to start")
        time.sleep(0.5)
        daemon.stop(signal.SIGKILL)
        part_files = [f for f in self.ws.files() if ".apsis-part-" in f]
        self.assertEqual(len(part_files), 1, "the cut download left its temporary file")
        restarted = self.start()
        wait_for(lambda: self.jobs(state="succeeded"), timeout=30, what="the download to finish")
        restarted.stop()
        job = self.jobs()[0]
        self.assertEqual(job["download_attempts"], 2)
        self.assertEqual(self.fake.stats()["submissions"], 1)
        self.assertEqual(len(self.assert_one_complete_file_per_succeeded_slot()), 1)
        self.assertIn("temporary file(s) left by an earlier crash", restarted.log())

    def test_sigterm_leaves_resumable_rows_and_exits_0(self):
        self.fake.faults(ready_after_ms=60000)
        daemon = self.start()
        self.trigger()
        wait_for(lambda: self.fake.stats()["polls"] >= 1, what="polling")
        started = time.monotonic()
        self.assertEqual(daemon.stop(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - started, 5)
        job = self.jobs()[0]
        self.assertEqual(job["state"], "submitted")
        self.assertIsNone(job["finished_at"])
        self.assertIn("left resumable", daemon.log())
        self.fake.faults(ready_after_ms=0)
        restarted = self.start()
        wait_for(lambda: self.jobs(state="succeeded"), timeout=30, what="the resumed job")
        restarted.stop()
        self.assertEqual(self.fake.stats()["submissions"], 1)

    def test_a_trigger_while_stopped_runs_at_the_next_start(self):
        self.trigger()
        self.assertEqual(self.jobs()[0]["state"], "pending")
        daemon = self.start()
        wait_for(lambda: self.jobs(state="succeeded"), timeout=30, what="the triggered job")
        daemon.stop()


class TriggerRaceTest(DaemonTest):
    exports = {"busy": 'kind: duplicates\n    schedule: "every 1s"\n    overlap: allow\n    output: "{export}/{job}.{ext}"'}

    def test_triggers_are_picked_up_while_the_schedule_adds_jobs(self):
        daemon = self.start()
        wait_for(lambda: "started" in daemon.log(), what="start")
        triggered = []
        for _ in range(5):
            result = self.ws.run("trigger", "--config", self.ws.config, "busy")
            self.assertEqual(result.returncode, 0, result.stderr)
            triggered.append(int(result.stdout.split()[1]))  # "job N queued for export busy"
            time.sleep(0.3)
        wait_for(lambda: all(j["state"] == "succeeded" for j in self.ws.jobs() if j["id"] in triggered),
                 timeout=30, what="every triggered job")
        self.assertEqual(daemon.stop(), 0)


class ReloadTest(DaemonTest):
    exports = {"dupes": "kind: duplicates"}

    def test_sighup_with_a_broken_file_keeps_running_and_a_good_file_applies(self):
        daemon = self.start()
        wait_for(lambda: "started" in daemon.log(), what="start")
        with open(self.ws.config) as f:
            good = f.read()
        with open(self.ws.config, "w") as f:
            f.write(good.replace("kind: duplicates", "kind: duplicatez"))
        daemon.send(signal.SIGHUP)
        wait_for(lambda: "reload rejected" in daemon.log(), what="the rejection")
        self.assertTrue(daemon.alive())
        self.assertRegex(daemon.log(), r"reload rejected: .*exportd.yaml:\d+:\d+: .*duplicatez")
        # Still serving: a trigger is picked up.
        self.ws.run("trigger", "--config", self.ws.config, "dupes")
        with open(self.ws.config, "w") as f:
            f.write(good + '  fresh:\n    account: main\n    kind: consents\n    schedule: "every 1s"\n')
        daemon.send(signal.SIGHUP)
        wait_for(lambda: self.jobs(export="fresh", state="succeeded"), timeout=30, what="the added export")
        self.assertEqual(daemon.stop(), 0)
        self.assertIn("configuration reloaded", daemon.log())


class AccountRemovedTest(DaemonTest):
    """A reload that drops an account ends its waiting jobs failed, saying why: they must not wait
    for a budget that no longer exists (the row would sit unfinished until the next restart)."""
    fake_args = ("--ready-after", "10m")
    exports = {"dupes": "kind: duplicates"}

    def test_jobs_of_a_removed_account_fail_with_the_reason(self):
        with open(self.ws.config) as f:
            base = f.read()
        account = base[base.index("  main:\n"):base.index("polling:")]
        with_side = (base.replace("polling:", account.replace("  main:", "  side:") + "polling:", 1)
                     + "  sidejob:\n    account: side\n    kind: consents\n")
        with open(self.ws.config, "w") as f:
            f.write(with_side)
        daemon = self.start()
        wait_for(lambda: "started" in daemon.log(), what="start")
        self.assertEqual(self.ws.run("trigger", "--config", self.ws.config, "sidejob").returncode, 0)
        wait_for(lambda: self.jobs(export="sidejob", state="submitted"), timeout=30, what="the job polling")
        with open(self.ws.config, "w") as f:
            f.write(base)
        daemon.send(signal.SIGHUP)
        wait_for(lambda: self.jobs(export="sidejob", state="failed"), timeout=30, what="the orphaned job failed")
        job = self.jobs(export="sidejob")[0]
        self.assertEqual(job["error"], "account 'side' is no longer in the configuration")
        self.assertTrue(daemon.alive())
        self.assertEqual(daemon.stop(), 0)


class NotifyTest(DaemonTest):
    exports = {"dupes": "kind: duplicates"}

    def test_ready_and_status_reach_the_notify_socket(self):
        path = os.path.join(self._tmp.name, "notify.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(path)
        listener.settimeout(10)
        daemon = self.start(env={"NOTIFY_SOCKET": path})
        messages = []
        while not any("STATUS=" in m for m in messages):
            messages.append(listener.recv(4096).decode())
        daemon.stop()
        listener.close()
        self.assertIn("READY=1", "\n".join(messages))
        status = next(m for m in messages if m.startswith("STATUS="))
        self.assertIn("jobs polling", status)


if __name__ == "__main__":
    unittest.main()
