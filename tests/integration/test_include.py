"""include: drop-in files with the real daemon: exports from conf.d run, SIGHUP globs conf.d again and
applies a new drop-in, and a broken drop-in keeps the running configuration, logged at its own
file:line:col (as `check` reports it)."""

import os
import re
import signal
import tempfile
import unittest

from harness import FakeServer, RunningDaemon, Workspace, wait_for

EVERY_SECOND = '    account: main\n    kind: consents\n    schedule: "every 1s"\n'


class IncludeTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, "--ready-after", "200ms", "--size", "20000")
        self.ws = Workspace(self.fake, exports={"dupes": "kind: consents"}, top_extra="include: conf.d/*.yaml")
        self.conf_d = os.path.join(self.ws.dir, "conf.d")
        os.makedirs(self.conf_d)
        self.daemon = None

    def tearDown(self):
        if self.daemon and self.daemon.alive():
            self.daemon.stop(signal.SIGKILL)
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def drop_in(self, name, text):
        path = os.path.join(self.conf_d, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def succeeded(self, export):
        return self.ws.rows(f"export = '{export}' AND state = 'succeeded'")

    def test_sighup_reads_conf_d_again_and_a_broken_drop_in_keeps_the_running_configuration(self):
        self.drop_in("10-team.yaml", "exports:\n  team:\n" + EVERY_SECOND)
        checked = self.ws.run("check", "--config", self.ws.config)
        self.assertEqual(checked.returncode, 0, checked.stderr)
        self.assertIn("1 drop-in", checked.stdout)

        self.daemon = RunningDaemon(self.ws)
        wait_for(lambda: "started" in self.daemon.log(), what="start")
        wait_for(lambda: self.succeeded("team"), timeout=30, what="the drop-in's export")

        # A new drop-in appears: SIGHUP globs conf.d again.
        self.drop_in("20-late.yaml", "exports:\n  late:\n" + EVERY_SECOND)
        self.daemon.send(signal.SIGHUP)
        wait_for(lambda: self.succeeded("late"), timeout=30, what="the export added by a new drop-in")
        self.assertIn("configuration reloaded: 3 exports", self.daemon.log())

        # A broken drop-in: the reload is rejected at the drop-in's own place, the old configuration runs on.
        broken = self.drop_in("30-broken.yaml", "exports:\n  bad:\n    account: main\n    kind: duplicatez\n")
        checked = self.ws.run("check", "--config", self.ws.config)
        self.assertEqual(checked.returncode, 2)
        self.assertIn(f"{broken}:4:11: exports.bad.kind: unknown value 'duplicatez'", checked.stderr)
        self.daemon.send(signal.SIGHUP)
        wait_for(lambda: "reload rejected" in self.daemon.log(), what="the rejection")
        self.assertRegex(self.daemon.log(), re.escape(f"reload rejected: {broken}:4:11: ") + ".*duplicatez")
        self.assertIn("keeping the running configuration", self.daemon.log())
        self.assertTrue(self.daemon.alive())
        done = len(self.succeeded("late"))
        wait_for(lambda: len(self.succeeded("late")) > done, timeout=30, what="the kept configuration running on")
        self.assertEqual(self.daemon.stop(), 0)


if __name__ == "__main__":
    unittest.main()
