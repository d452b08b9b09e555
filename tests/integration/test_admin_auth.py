"""The admin endpoint over a network: HTTPS with the operator's certificate and basic auth with bcrypt
hashes (admin_web), seen by a real TLS client. Right, wrong and missing passwords; plain HTTP on the
TLS port; a client that guesses too often is throttled, and counted on /metrics, while proven logins
still pass; a flood of wrong passwords from many addresses does not stop a job from polling to its
end; SIGHUP swaps the users."""

import base64
import http.client
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import unittest
import warnings

from harness import FakeServer, RunningDaemon, Workspace, wait_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Python 3.11 (Debian 12); libxcrypt underneath, as in the daemon


def bcrypt_hash(password, cost=10):
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** cost))


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


ALICE = basic("alice", "correct horse")
WRONG = basic("alice", "battery staple")
ADDRESSES = [f"127.0.0.{i}" for i in range(2, 42)]  # all of 127/8 is loopback on Linux


@unittest.skipUnless(shutil.which("openssl"), "openssl is not installed")
class AdminAuthTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, "--ready-after", "600ms", "--size", "5000")
        self.ws = Workspace(self.fake, exports={"dupes": "kind: duplicates"})
        self.make_certificate()
        self.cert = f"{self.ws.dir}/admin.pem"
        self.write_users({"alice": bcrypt_hash("correct horse")})
        self.daemon = RunningDaemon(self.ws)
        match = wait_for(lambda: re.search(r"admin endpoint on https://127\.0\.0\.1:(\d+)", self.daemon.log()),
                         what="the admin endpoint's address in the log")
        wait_for(lambda: "started:" in self.daemon.log(), what="the daemon to start")
        self.port = int(match.group(1))
        self.tls = ssl.create_default_context(cafile=self.cert)

    def tearDown(self):
        if self.daemon.alive():
            self.assertEqual(self.daemon.stop(), 0)
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def make_certificate(self):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", "admin.key", "-out", "admin.pem", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1"], cwd=self.ws.dir, check=True, capture_output=True)

    def write_users(self, users):
        with open(self.ws.config) as f:
            text = f.read().split("admin_listen:")[0]
        text += ("admin_listen: 127.0.0.1:0\n"
                 "admin_web:\n"
                 "  tls_server_config: {cert_file: admin.pem, key_file: admin.key}\n"
                 "  basic_auth_users:\n" + "".join(f"    {u}: '{h}'\n" for u, h in users.items()))
        with open(self.ws.config, "w") as f:
            f.write(text)

    def get(self, path, authorization=None, source="127.0.0.1"):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.tls, timeout=30,
                                           source_address=(source, 0))
        try:
            conn.request("GET", path, headers={"Authorization": authorization} if authorization else {})
            res = conn.getresponse()
            return res.status, res.getheader("WWW-Authenticate"), res.read().decode()
        finally:
            conn.close()

    def test_right_wrong_and_missing_passwords(self):
        status, _, body = self.get("/metrics", ALICE)
        self.assertEqual(status, 200)
        self.assertIn("apsis_submissions_total", body)
        status, challenge, body = self.get("/metrics", WRONG)
        self.assertEqual((status, challenge), (401, 'Basic realm="apsis-exportd", charset="UTF-8"'))
        self.assertNotIn("apsis_", body)
        for path in ("/metrics", "/healthz", "/jobs", "/nothing-here"):
            status, challenge, body = self.get(path)
            self.assertEqual(status, 401, path)
            self.assertEqual(challenge, 'Basic realm="apsis-exportd", charset="UTF-8"')
            self.assertNotIn("/metrics", body)  # not even the known paths
        self.assertEqual(self.get("/metrics", basic("mallory", "correct horse"))[0], 401)
        self.assertEqual(self.get("/healthz", ALICE)[0], 200)

    def test_plain_http_on_the_tls_port_gets_nothing(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            with self.assertRaises((http.client.HTTPException, OSError)):
                conn.request("GET", "/metrics", headers={"Authorization": ALICE})
                conn.getresponse().read()
        finally:
            conn.close()
        self.assertEqual(self.get("/metrics", ALICE)[0], 200)  # and the server serves on

    def test_a_guessing_address_is_throttled_and_proven_logins_still_pass(self):
        self.assertEqual(self.get("/metrics", ALICE)[0], 200)  # alice logged in before the attack
        guesser = "127.0.0.7"
        statuses = [self.get("/metrics", basic("alice", f"guess {i}"), source=guesser)[0] for i in range(12)]
        self.assertEqual(statuses[:10], [401] * 10)
        self.assertEqual(statuses[10:], [429, 429])
        self.assertEqual(self.daemon.log().count("10 wrong passwords from 127.0.0.7 within 60 s"), 1)
        # The operator sees the guessing on /metrics (alice's login from before is cached).
        body = self.get("/metrics", ALICE)[2]
        self.assertIn('apsis_admin_auth_total{result="wrong"} 10\n', body)
        self.assertIn('apsis_admin_auth_total{result="throttled"} 2\n', body)
        self.assertIn("apsis_admin_auth_throttled_addresses 1\n", body)
        # A new guess, even for another user, is not checked; alice's proven login still passes.
        self.assertEqual(self.get("/metrics", basic("bob", "x"), source=guesser)[0], 429)
        self.assertEqual(self.get("/metrics", ALICE, source=guesser)[0], 200)
        # Other addresses are checked as before.
        self.assertEqual(self.get("/metrics", WRONG, source="127.0.0.8")[0], 401)
        self.assertEqual(self.get("/metrics", ALICE, source="127.0.0.8")[0], 200)

    def test_a_job_polls_to_its_end_during_a_flood_of_wrong_passwords(self):
        stop = threading.Event()
        seen = set()
        errors = []

        def hammer(addresses):
            while not stop.is_set():
                for source in addresses:
                    if stop.is_set():
                        return
                    try:
                        seen.add(self.get("/metrics", basic("alice", f"wrong at {source}"), source=source)[0])
                    except Exception as e:  # noqa: BLE001 - reported below
                        errors.append(repr(e))
                        return

        threads = [threading.Thread(target=hammer, args=(ADDRESSES[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        try:
            result = self.ws.run("trigger", "--config", self.ws.config, "dupes")
            self.assertEqual(result.returncode, 0, result.stderr)
            wait_for(lambda: self.ws.rows("state = 'succeeded'"), timeout=60,
                     what="the triggered job to succeed during the flood")
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(errors, [])
        self.assertTrue(seen)
        self.assertLessEqual(seen, {401, 429, 503})
        self.assertEqual(self.get("/metrics", ALICE)[0], 200)

    def test_sighup_swaps_the_users_and_the_certificate(self):
        self.assertEqual(self.get("/metrics", ALICE)[0], 200)
        self.write_users({"bob": bcrypt_hash("hunter2", cost=4)})
        self.make_certificate()  # renewed: a new key and certificate in the same files
        self.daemon.send(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in self.daemon.log(), what="the reload")
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.get("/metrics", basic("bob", "hunter2"))  # the old certificate is gone
        self.tls = ssl.create_default_context(cafile=self.cert)
        self.assertEqual(self.get("/metrics", ALICE)[0], 401)  # cached login forgotten, user gone
        self.assertEqual(self.get("/metrics", basic("bob", "hunter2"))[0], 200)


if __name__ == "__main__":
    unittest.main()
