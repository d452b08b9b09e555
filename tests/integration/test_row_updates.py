"""Issue 13, item 4: rows are written by narrow updates, so two writers of one row keep both results.
Retention (keep:) of a newer job marks an older job's file removed while the older job's on_success
hook still runs; the hook's result then lands in the row without writing file_removed_at back to
NULL (the old whole-row save from the job's in-memory copy did exactly that)."""

import os
import tempfile
import unittest

from harness import FakeServer, RunningDaemon, Workspace, wait_for

# The hook outlives the next job's publish: it waits for a file the test creates once the newer
# job's retention has run.
HOOK = ("kind: duplicates\n    keep: {count: 1}\n    output: \"{export}/{job}.{ext}\"\n"
        "    on_success: [/bin/sh, -c, 'while [ ! -e \"$APSIS_OUTPUT_DIR/../release-$APSIS_JOB_ID\" ]; do sleep 0.1; done;"
        " echo loaded $APSIS_JOB_ID']\n    on_success_timeout: 60s")


class RowUpdatesTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, "--ready-after", "100ms", "--size", "2000")
        self.ws = Workspace(self.fake, exports={"dupes": HOOK})
        self.daemon = RunningDaemon(self.ws)
        wait_for(lambda: "started:" in self.daemon.log(), what="the daemon to start")

    def tearDown(self):
        if self.daemon.alive():
            self.daemon.stop()
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def trigger(self):
        result = self.ws.run("trigger", "--config", self.ws.config, "dupes")
        self.assertEqual(result.returncode, 0, result.stderr)

    def release(self, job_id):
        open(os.path.join(self.ws.dir, f"release-{job_id}"), "w").close()

    def test_retention_and_a_running_hook_on_one_row_keep_both_results(self):
        self.trigger()
        wait_for(lambda: self.ws.rows("hook_result LIKE 'started %'"), timeout=30, what="the first job's hook")
        old = self.ws.rows()[0]
        self.assertEqual(old["state"], "succeeded")
        self.trigger()
        wait_for(lambda: self.ws.rows(f"id = {old['id']} AND file_removed_at IS NOT NULL"), timeout=30,
                 what="the second job's retention to remove the first job's file")
        self.assertFalse(os.path.exists(old["output_path"]))
        new = self.ws.rows(f"id > {old['id']}")[0]
        # The first job's hook ends now, after retention wrote its row.
        self.release(old["id"])
        wait_for(lambda: self.ws.rows(f"id = {old['id']} AND hook_result LIKE 'exit %'"), timeout=30,
                 what="the first job's hook result")
        self.release(new["id"])
        wait_for(lambda: self.ws.rows(f"id = {new['id']} AND hook_result LIKE 'exit %'"), timeout=30,
                 what="the second job's hook result")

        row = self.ws.rows(f"id = {old['id']}")[0]
        self.assertRegex(row["hook_result"], r"^exit 0")
        self.assertIsNotNone(row["file_removed_at"], "the hook's write undid retention's")
        self.assertEqual(row["state"], "succeeded")
        newest = self.ws.rows(f"id = {new['id']}")[0]
        self.assertEqual(newest["state"], "succeeded")
        self.assertIsNone(newest["file_removed_at"])
        self.assertTrue(os.path.exists(newest["output_path"]))
        self.assertEqual(self.daemon.stop(), 0)


if __name__ == "__main__":
    unittest.main()
