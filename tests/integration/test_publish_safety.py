"""Publishing never loses a file: jobs in the same second never replace each other's file, a starting
`run` removes only the temporary files of processes that are gone, retention never deletes a path a
newer row owns, a symlinked directory never leads a file out of output_dir, and a hook that leaves a
background child behind is judged by its own exit (issue 12, items 1, 2 and 4 and two smaller ones)."""

import os
import signal
import subprocess
import tempfile
import unittest

from harness import FakeServer, RunningDaemon, Workspace, sha256_file, wait_for

DUPES = "kind: duplicates"


class PublishTest(unittest.TestCase):
    exports = {"dupes": DUPES}
    fake_args = ()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self.tmp.name, *self.fake_args)
        self.ws = Workspace(self.fake, exports=self.exports)

    def tearDown(self):
        self.fake.stop()
        self.ws.cleanup()
        self.tmp.cleanup()

    def start_once(self, export="dupes", config=None):
        from harness import DAEMON
        return subprocess.Popen([DAEMON, "once", "--config", config or self.ws.config, export],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def assert_distinct_complete_files(self, jobs):
        """Each succeeded row points at its own file, whose bytes and SHA-256 are the row's."""
        paths = [j["output_path"] for j in jobs]
        self.assertEqual(len(set(paths)), len(paths), paths)
        for job in jobs:
            self.assertEqual(job["state"], "succeeded", job["error"])
            self.assertEqual(sha256_file(job["output_path"]), job["sha256"], job["output_path"])
            self.assertEqual(os.path.getsize(job["output_path"]), job["bytes"])


class SameSecondTest(PublishTest):
    def test_five_onces_started_together_publish_five_files(self):
        # Started in one millisecond, they each get a slot of their own (the next free millisecond),
        # and all five slots name one file under the default template.
        procs = [self.start_once() for _ in range(5)]
        results = [p.communicate(timeout=120) for p in procs]
        for proc, (_, err) in zip(procs, results):
            self.assertEqual(proc.returncode, 0, err)
        jobs = self.ws.jobs()
        self.assertEqual(len(jobs), 5)
        self.assertEqual(len(self.ws.files()), 5, self.ws.files())
        self.assertEqual(len({j["sha256"] for j in jobs}), 5)
        self.assert_distinct_complete_files(jobs)
        # The default template stays: one of them has the plain name, the others say which job they are.
        plain = [j for j in jobs if "-job" not in os.path.basename(j["output_path"])]
        self.assertGreaterEqual(len(plain), 1)
        for job in jobs:
            if job not in plain:
                self.assertTrue(job["output_path"].endswith(f"-job{job['id']}.csv"), job["output_path"])
        logs = "".join(err for _, err in results)
        self.assertIn("already exists", logs)

    def test_triggers_in_a_row_publish_one_file_each(self):
        daemon = RunningDaemon(self.ws)
        try:
            wait_for(lambda: "started" in daemon.log(), what="the daemon to start")
            for _ in range(3):
                result = self.ws.run("trigger", "--config", self.ws.config, "dupes")
                self.assertEqual(result.returncode, 0, result.stderr)
            wait_for(lambda: len([j for j in self.ws.jobs() if j["state"] == "succeeded"]) == 3,
                     timeout=60, what="three triggered jobs to succeed")
        finally:
            self.assertEqual(daemon.stop(), 0)
        jobs = self.ws.jobs()
        self.assertEqual(len(self.ws.files()), 3, self.ws.files())
        self.assert_distinct_complete_files(jobs)


class OneTemplateTwoExportsTest(PublishTest):
    # Two templates, written differently, that give one path for one slot: check warns, and neither
    # export's file may replace or delete the other's.
    exports = {"a": DUPES + '\n    keep: {count: 1}\n    output: "shared/{scheduled}.{ext}"',
               "b": DUPES + '\n    output: "shared/{scheduled:%Y%m%dT%H%M%SZ}.{ext}"'}

    def test_check_warns_about_a_template_without_export_and_passes(self):
        result = self.ws.run("check", "--config", self.ws.config)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stderr, r"exportd\.yaml:\d+:\d+: warning: exports\.a\.output: .*\{export\}")

    def test_retention_of_one_export_never_deletes_the_others_newer_file(self):
        procs = [self.start_once("a"), self.start_once("b")]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(self.ws.once("a").returncode, 0)  # keep: {count: 1} removes a's first file
        jobs = self.ws.rows()
        b = [j for j in jobs if j["export"] == "b"][0]
        self.assertIsNone(b["file_removed_at"])
        self.assertTrue(os.path.isfile(b["output_path"]))
        self.assertEqual(sha256_file(b["output_path"]), b["sha256"])


class IdenticalTemplatesTest(PublishTest):
    exports = {"a": DUPES + '\n    output: "shared/{scheduled}.{ext}"',
               "b": DUPES + '\n    output: "shared/{scheduled}.{ext}"'}

    def test_check_refuses_two_exports_with_one_template(self):
        result = self.ws.run("check", "--config", self.ws.config)
        self.assertEqual(result.returncode, 2, result.stderr)
        with open(self.ws.config) as f:
            lines = f.read().splitlines()
        line = next(i for i, text in enumerate(lines, 1) if text.strip().startswith("output:")
                    and i > next(n for n, t in enumerate(lines, 1) if t.startswith("  b:")))
        self.assertRegex(result.stderr, rf"exportd\.yaml:{line}:\d+: exports\.b\.output: .*exports\.a")


class TempFilesOfOthersTest(PublishTest):
    def test_a_starting_run_leaves_a_running_onces_temporary_file_alone(self):
        self.fake.faults(download_slow=1)  # 20 bytes at 100 ms each: two seconds in `downloading`
        once = self.start_once()
        wait_for(lambda: [f for f in self.ws.files() if ".apsis-part-" in f], what="the download to start")
        # Another daemon, its own state database, the same output directory.
        other = os.path.join(self.ws.dir, "other.yaml")
        with open(self.ws.config) as f:
            text = f.read().replace("./state/jobs.sqlite3", "./state/other.sqlite3")
        with open(other, "w") as f:
            f.write(text)
        proc = subprocess.Popen([__import__("harness").DAEMON, "run", "--config", other],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            out, err = once.communicate(timeout=60)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, run_err = proc.communicate(timeout=15)
        self.assertEqual(once.returncode, 0, err + run_err)
        self.assertEqual(self.ws.jobs()[0]["state"], "succeeded")
        self.assertTrue(os.path.isfile(out.strip()))
        self.assertNotIn("temporary file(s) left by an earlier crash", run_err)


class SymlinkTest(PublishTest):
    def test_a_symlinked_directory_pointing_outside_is_refused(self):
        outside = os.path.join(self.ws.dir, "outside")
        os.makedirs(outside)
        os.makedirs(self.ws.output_dir)
        os.symlink(outside, os.path.join(self.ws.output_dir, "dupes"))
        result = self.ws.once()
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(os.listdir(outside), [])
        job = self.ws.jobs()[0]
        self.assertEqual(job["state"], "failed")
        self.assertIn("outside output_dir", job["error"])

    def test_a_symlinked_directory_pointing_inside_is_followed(self):
        inside = os.path.join(self.ws.output_dir, "real")
        os.makedirs(inside)
        os.symlink(inside, os.path.join(self.ws.output_dir, "dupes"))
        result = self.ws.once()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(os.listdir(inside)), 2)  # the file and its manifest


class DetachedHookChildTest(PublishTest):
    exports = {"dupes": DUPES + "\n    on_success: [/bin/sh, -c, 'sleep 61.5 & echo loaded']"
                               "\n    on_success_timeout: 3s"}

    def test_a_hook_that_leaves_a_background_child_is_judged_by_its_own_exit(self):
        result = self.ws.once()
        self.assertEqual(result.returncode, 0, result.stderr)
        job = self.ws.rows()[0]
        self.assertRegex(job["hook_result"], r"^exit 0 after")
        self.assertNotIn("timeout", job["hook_result"])
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        self.assertNotIn("sleep 61.5", ps)  # the group it left behind was killed


if __name__ == "__main__":
    unittest.main()
