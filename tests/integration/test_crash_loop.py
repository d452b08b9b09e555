"""Kill the daemon with SIGKILL at random moments, many times, then let it finish: every slot has
exactly one row, every succeeded job exactly one complete file matching its SHA-256, no temporary
file remains, and the fake saw no more submissions than there are jobs plus expiries."""

import os
import random
import signal
import tempfile
import time
import unittest

from harness import FakeServer, RunningDaemon, Workspace, sha256_file, wait_for

KILLS = int(os.environ.get("APSIS_CRASH_KILLS", "15"))


class CrashLoopTest(unittest.TestCase):
    def test_sigkill_at_random_points_loses_and_duplicates_nothing(self):
        seed = int(os.environ.get("APSIS_CRASH_SEED", time.time_ns() % 1_000_000))
        print(f"\ncrash loop seed {seed}, {KILLS} kills")
        rng = random.Random(seed)
        with tempfile.TemporaryDirectory() as tmp:
            # No rate limits at the fake: each restart begins with a fresh budget (it is per process)
            # while the fake still counts the killed process's requests, so dozens of restarts a
            # minute meet its limits (tokens 10/min, submits 1/s), and with schedules every 1-3 s a
            # 429 makes a slot give up. Limits are test_api_contract's subject, not this test's.
            fake = FakeServer(tmp, "--ready-after", "700ms", "--size", "3000000", "--no-limits")
            exports = {
                f"e{i}": f'kind: duplicates\n    schedule: "every {s}s"\n    output: "{{export}}/{{job}}.{{ext}}"'
                         + ("\n    compression: gzip" if i % 2 else "")
                for i, s in enumerate([1, 2, 3])}
            ws = Workspace(fake, exports=exports)
            try:
                for _ in range(KILLS):
                    daemon = RunningDaemon(ws)
                    time.sleep(rng.uniform(0.1, 1.5))
                    daemon.stop(signal.SIGKILL)
                # A last run, to the end: every job up to now finishes (later slots may start).
                final = RunningDaemon(ws)
                wait_for(lambda: "started" in final.log(), what="the last start")
                cutoff = ws.jobs()[0]["scheduled_for"] if ws.jobs() else ""
                wait_for(lambda: all(j["state"] in ("succeeded", "failed", "expired", "skipped")
                                     for j in ws.jobs() if j["scheduled_for"] <= cutoff),
                         timeout=90, what="every job of the crash loop to finish")
                self.assertEqual(final.stop(signal.SIGTERM), 0)
                self.check(ws, fake)
            finally:
                fake.stop()
                ws.cleanup()

    def check(self, ws, fake):
        jobs = ws.jobs()
        slots = [(j["export"], j["scheduled_for"]) for j in jobs]
        self.assertEqual(len(slots), len(set(slots)), "exactly one row per slot")
        states = {s: sum(1 for j in jobs if j["state"] == s) for s in {j["state"] for j in jobs}}
        print(f"jobs by state: {states}")
        self.assertEqual(states.get("failed", 0), 0, [j["error"] for j in jobs if j["state"] == "failed"])
        files = ws.files()
        self.assertEqual([f for f in files if ".apsis-part-" in f], [], "no temporary files remain")
        succeeded = [j for j in jobs if j["state"] == "succeeded"]
        self.assertGreater(len(succeeded), 0)
        self.assertEqual(len(files), len(succeeded), "one file per succeeded job, nothing else")
        for job in succeeded:
            self.assertEqual(os.path.getsize(job["output_path"]), job["bytes"])
            self.assertEqual(sha256_file(job["output_path"]), job["sha256"], job["output_path"])
        # Every POST is counted in its row before it is sent, so the fake can never have seen more.
        submissions = fake.stats()["submissions"]
        self.assertLessEqual(submissions, sum(j["submit_attempts"] for j in jobs))
        # Beyond one per job and expiry, a second POST happens only where a kill cut a POST in
        # flight: the daemon cannot know whether it arrived and prefers the file to no duplicate.
        submitted = [j for j in jobs if j["submit_attempts"] > 0]
        interrupted = sum(max(0, j["submit_attempts"] - 1 - j["resubmits"]) for j in jobs)
        budget = len(submitted) + sum(j["resubmits"] for j in jobs)
        print(f"submissions {submissions}, jobs+expiries {budget}, POSTs cut by a kill {interrupted}")
        self.assertLessEqual(submissions, budget + interrupted, "no duplicate submissions otherwise")


if __name__ == "__main__":
    unittest.main()
