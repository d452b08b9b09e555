"""The unit file passes `systemd-analyze verify`, rates below 2.0 in `systemd-analyze security`, and runs as
the Debian package's system user (packaging/sysusers.conf) on the packaged paths."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import DAEMON

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
UNIT = os.path.join(ROOT, "systemd/apsis-exportd.service")
SYSUSERS = os.path.join(ROOT, "packaging/sysusers.conf")


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
class SystemdUnitTest(unittest.TestCase):
    def test_unit_verifies(self):
        with tempfile.TemporaryDirectory() as d:
            # verify checks that ExecStart's binary exists: point it at the one just built.
            with open(UNIT) as f:
                text = f.read().replace("/usr/bin/apsis-exportd", os.path.abspath(DAEMON))
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

    def test_unit_uses_notify_reload_state_directory_and_the_package_user(self):
        with open(UNIT) as f:
            lines = f.read().splitlines()
        for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=apsis-exportd",
                     "WatchdogSec=60s", "User=apsis-exportd", "Group=apsis-exportd",
                     "ExecStart=/usr/bin/apsis-exportd run --config /etc/apsis-exportd/apsis-exportd.yaml"]:
            self.assertIn(line, lines)
        self.assertFalse([line for line in lines if line.startswith("DynamicUser=")],
                         "a dynamic user could not share the job table with `sudo -u apsis-exportd`")

    def test_the_package_creates_the_unit_user(self):
        with open(SYSUSERS) as f:
            entries = [line.split() for line in f if line.strip() and not line.startswith("#")]
        self.assertIn(["u", "apsis-exportd", "-"], [entry[:3] for entry in entries])


if __name__ == "__main__":
    unittest.main()
