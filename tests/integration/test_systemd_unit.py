"""The unit file passes `systemd-analyze verify` and rates below 2.0 in `systemd-analyze security`."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import DAEMON

UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../systemd/apsis-exportd.service")


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
class SystemdUnitTest(unittest.TestCase):
    def test_unit_verifies(self):
        with tempfile.TemporaryDirectory() as d:
            # verify checks that ExecStart's binary exists: point it at the one just built.
            with open(UNIT) as f:
                text = f.read().replace("/usr/local/bin/apsis-exportd", os.path.abspath(DAEMON))
            unit = os.path.join(d, "apsis-exportd.service")
            with open(unit, "w") as f:
                f.write(text)
            result = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertNotIn("apsis-exportd.service:", result.stderr, "no warnings about the unit")

    def test_security_exposure_below_2(self):
        result = subprocess.run(["systemd-analyze", "security", "--offline=true", UNIT],
                                capture_output=True, text=True)
        match = re.search(r"Overall exposure level for apsis-exportd.service: (\d+\.\d+)", result.stdout)
        self.assertIsNotNone(match, result.stdout + result.stderr)
        print(f"\nexposure: {match.group(1)}")
        self.assertLess(float(match.group(1)), 2.0)

    def test_unit_uses_notify_reload_credentials_and_state_directory(self):
        with open(UNIT) as f:
            text = f.read()
        for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=apsis-exportd",
                     "LoadCredential=apsis-secret:", "WatchdogSec="]:
            self.assertIn(line, text)


if __name__ == "__main__":
    unittest.main()
