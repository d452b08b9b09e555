"""Disk trouble on the output side: a full filesystem, a read-only one, and a careless umask.
Each must end the affected job with the operating system's reason, leave nothing partial behind,
and never hand a file or directory to other users of the machine.

The filesystems are small tmpfs mounts below the output directory, so these tests need root (they
skip themselves otherwise)."""

import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import DAEMON, FakeServer, RunningDaemon, Workspace, sha256_file, wait_for

BIG = 3_000_000       # three times the 1 MiB tmpfs
SMALL = 200_000       # fits easily once the failed download's space is given back


class DiskTest(unittest.TestCase):
    fake_args = ("--ready-after", "100ms")
    exports = None

    def setUp(self):
        # Cleanups run last-in first-out, so whatever is registered later (mounts, daemons) is undone
        # before the workspace directory holding it is removed, even when a test fails midway.
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.fake = FakeServer(tmp.name, *self.fake_args)
        self.addCleanup(self.fake.stop)
        self.ws = Workspace(self.fake, exports=self.exports)
        self.addCleanup(self.ws.cleanup)

    def mount_tmpfs(self, relative, options):
        path = os.path.join(self.ws.output_dir, relative)
        os.makedirs(path)
        if shutil.which("mount") is None:
            self.skipTest("no mount command")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path],
                                capture_output=True, text=True)
        if result.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        self.addCleanup(self.unmount, path)
        return path

    @staticmethod
    def unmount(path):
        # A lazy unmount still detaches the mount if a stray daemon holds a file open in it.
        if subprocess.run(["umount", path], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", path], capture_output=True)

    def start_daemon(self):
        daemon = RunningDaemon(self.ws)
        self.addCleanup(lambda: daemon.alive() and daemon.stop(signal.SIGKILL))
        return daemon

    def job_of(self, export):
        jobs = self.ws.jobs("--export", export)
        self.assertEqual(len(jobs), 1, jobs)
        return jobs[0]

    def assert_published(self, job, size):
        self.assertEqual(job["state"], "succeeded", job)
        self.assertEqual(os.path.getsize(job["output_path"]), size)
        self.assertEqual(job["bytes"], size)
        self.assertEqual(sha256_file(job["output_path"]), job["sha256"])


class DiskFullTest(DiskTest):
    exports = {
        "big": 'kind: duplicates\n    output: "small/{export}-{job}.{ext}"',
        "fine": 'kind: duplicates\n    output: "roomy/{export}-{job}.{ext}"',
    }

    def setUp(self):
        super().setUp()
        self.small = self.mount_tmpfs("small", "size=1m,mode=0755")

    def assert_failed_for_lack_of_space(self, job):
        self.assertEqual(job["state"], "failed", job)
        self.assertIsNone(job["output_path"])
        self.assertIn("No space left on device", job["error"])
        # The step and the file, so an operator knows which filesystem to look at.
        self.assertIn("cannot write", job["error"])
        self.assertIn(os.path.join(self.small, ".apsis-part-big-"), job["error"])

    def assert_small_fs_empty_and_free(self):
        self.assertEqual(os.listdir(self.small), [], "no final file and no temporary file")
        # A deleted-but-still-open temporary file would hide from listdir yet keep the space.
        fs = os.statvfs(self.small)
        self.assertEqual(fs.f_bfree, fs.f_blocks, "the partial download's space is given back")

    def test_a_full_disk_fails_that_export_with_enospc_and_leaves_nothing(self):
        self.fake.faults(size=BIG)
        result = self.ws.once("big")
        self.assertEqual(result.returncode, 1, result.stderr)
        job = self.job_of("big")
        self.assert_failed_for_lack_of_space(job)
        self.assertEqual(job["download_attempts"], 1, "a full disk is not healed by downloading again")
        self.assertIn("No space left on device", result.stderr)
        self.assert_small_fs_empty_and_free()

        self.assertEqual(self.ws.once("fine").returncode, 0)
        self.assert_published(self.job_of("fine"), BIG)

        # The same export fits once it is small enough: nothing of the failed attempt is in the way.
        self.fake.faults(size=SMALL)
        self.assertEqual(self.ws.once("big").returncode, 0)
        self.assert_published(self.ws.jobs("--export", "big", "--state", "succeeded")[0], SMALL)

    def test_the_running_daemon_survives_a_full_disk_and_the_other_export_is_unharmed(self):
        self.fake.faults(size=BIG)
        daemon = self.start_daemon()
        for export in ("big", "fine"):  # both at once: the full disk must not disturb the neighbour
            self.assertEqual(self.ws.run("trigger", "--config", self.ws.config, export).returncode, 0)
        wait_for(lambda: all(j["finished_at"] for j in self.ws.jobs()) and len(self.ws.jobs()) == 2,
                 timeout=20, interval=0.2, what="both jobs to finish")
        self.assert_failed_for_lack_of_space(self.job_of("big"))
        self.assert_published(self.job_of("fine"), BIG)
        self.assert_small_fs_empty_and_free()
        self.assertIn("No space left on device", daemon.log())

        self.fake.faults(size=SMALL)
        self.assertEqual(self.ws.run("trigger", "--config", self.ws.config, "big").returncode, 0)
        succeeded = wait_for(lambda: self.ws.jobs("--export", "big", "--state", "succeeded"),
                             timeout=20, interval=0.2, what="the smaller export to publish")
        self.assert_published(succeeded[0], SMALL)
        self.assertTrue(daemon.alive())
        self.assertEqual(daemon.stop(), 0)


class ReadOnlyOutputTest(DiskTest):
    # test_faults.py covers a file standing where a directory belongs (ENOTDIR); this is the other
    # everyday case, a filesystem mounted read-only (EROFS), both directly in it and below it.
    exports = {
        "flat": 'kind: duplicates\n    output: "ro/{export}-{job}.{ext}"',
        "nested": 'kind: duplicates\n    output: "ro/{export}/{export}-{job}.{ext}"',
        "fine": 'kind: duplicates\n    output: "roomy/{export}-{job}.{ext}"',
    }

    def test_a_read_only_filesystem_fails_with_erofs_and_names_the_place(self):
        ro = self.mount_tmpfs("ro", "ro,size=64k,mode=0755")
        for export in ("flat", "nested"):
            with self.subTest(export=export):
                result = self.ws.once(export)
                self.assertEqual(result.returncode, 1, result.stderr)
                job = self.job_of(export)
                self.assertEqual(job["state"], "failed", job)
                self.assertIn("Read-only file system", job["error"])
                self.assertIn(ro, job["error"])
                self.assertIsNone(job["output_path"])
        self.assertEqual(os.listdir(ro), [])
        self.assertEqual(self.ws.once("fine").returncode, 0)
        self.assert_published(self.job_of("fine"), 1048576)


class FileModeTest(DiskTest):
    fake_args = ("--ready-after", "1500ms")  # long enough to look at the -wal and -shm files
    exports = {"dupes": 'kind: duplicates\n    output: "{export}/{scheduled:%Y/%m}/{export}-{job}.{ext}"'}

    def test_nothing_the_daemon_creates_is_open_to_other_users_even_with_umask_0(self):
        state_dir = os.path.dirname(self.ws.db)
        self.assertFalse(os.path.exists(state_dir))
        self.assertFalse(os.path.exists(self.ws.output_dir))
        daemon = subprocess.Popen([DAEMON, "once", "--config", self.ws.config, "dupes"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=lambda: os.umask(0))
        self.addCleanup(lambda: daemon.poll() is None and daemon.kill())
        # SQLite removes -wal and -shm when the last connection closes: look while the job polls.
        wait_for(lambda: os.path.exists(self.ws.db + "-wal") and os.path.exists(self.ws.db + "-shm"),
                 timeout=10, what="the WAL files")
        modes = {p: os.stat(p).st_mode for p in (self.ws.db + "-wal", self.ws.db + "-shm")}
        out, err = daemon.communicate(timeout=30)
        self.assertEqual(daemon.returncode, 0, err)
        published = out.strip()
        self.assertTrue(os.path.isfile(published))

        for top in (state_dir, self.ws.output_dir):  # both made by the daemon, with all they hold
            modes[top] = os.stat(top).st_mode
            for root, dirs, files in os.walk(top):
                for name in dirs + files:
                    modes[os.path.join(root, name)] = os.stat(os.path.join(root, name)).st_mode
        self.assertIn(self.ws.db, modes)
        self.assertIn(published, modes)
        for directory in (self.ws.output_dir, os.path.dirname(published)):
            self.assertIn(directory, modes)
        open_to_world = {os.path.relpath(p, self.ws.dir): oct(m & 0o7777)
                         for p, m in sorted(modes.items()) if m & 0o007}
        self.assertEqual(open_to_world, {}, "created by the daemon with access for other users")


if __name__ == "__main__":
    unittest.main()
