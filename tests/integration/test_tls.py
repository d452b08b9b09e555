"""TLS: the chain and the host name are verified (ca_file or the system store); an unknown CA,
an expired certificate and a wrong host name are refused before any request is sent.

The server is `openssl s_server -www`: it completes the handshake and answers any request with a
status page, so a trusted connection gets as far as the token request (and fails there with a
non-TLS error), while a refused one fails in the handshake."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import DAEMON


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(shutil.which("openssl"), "openssl is not installed")
class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                "-days", "2", "-subj", "/CN=apsis-test-ca", cwd=d)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.pem",
                "-days", "2", "-subj", "/CN=other-ca", cwd=d)
        cls.make_cert("good", "IP:127.0.0.1,DNS:localhost", "-days", "2")
        cls.make_cert("wronghost", "DNS:api.example.com", "-days", "2")
        cls.make_expired_cert()

    @classmethod
    def make_cert(cls, name, san, *validity):
        d = cls.tmp.name
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", "/CN=apsis-test-server", cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-extfile", f"{name}.ext", *validity, cwd=d)

    @classmethod
    def make_expired_cert(cls):
        # `openssl ca` is the tool that takes explicit validity dates: 2000 to 2001, long expired.
        d = cls.tmp.name
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = local\n[local]\ndatabase = index.txt\nnew_certs_dir = .\n"
                    "serial = serial\ndefault_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n")
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(d, "expired.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "expired.key", "-out", "expired.csr",
                "-subj", "/CN=apsis-test-server", cwd=d)
        openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "expired.csr",
                "-out", "expired.pem", "-startdate", "20000101000000Z", "-enddate", "20010101000000Z",
                "-extfile", "expired.ext", "-notext", cwd=d)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_against(self, cert, ca_file, host="127.0.0.1"):
        d = self.tmp.name
        port = free_port()
        server = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", f"{cert}.pem",
                                   "-key", f"{cert}.key", "-www", "-quiet"], cwd=d,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            work = tempfile.mkdtemp(dir=d)
            config = os.path.join(work, "exportd.yaml")
            with open(config, "w") as f:
                f.write(f"state_db: ./jobs.sqlite3\noutput_dir: ./out\n"
                        f"retry: {{initial_delay: 10ms, max_delay: 10ms, max_attempts: 1}}\n"
                        f"accounts:\n  main:\n    base_url: https://{host}:{port}\n    client_id: id\n"
                        f"    client_secret: s\n    request_timeout: 3s\n    ca_file: {os.path.join(d, ca_file)}\n"
                        f"exports:\n  x: {{account: main, kind: duplicates}}\n")
            result = subprocess.run([DAEMON, "once", "--config", config, "x"], capture_output=True, text=True,
                                    timeout=60)
            return result.returncode, result.stderr
        finally:
            server.kill()
            server.wait()

    def test_a_certificate_from_the_configured_ca_is_trusted(self):
        code, err = self.run_against("good", "ca.pem")
        self.assertEqual(code, 1)
        self.assertNotIn("handshake", err)
        self.assertIn("token", err)

    def test_the_host_name_may_be_a_dns_name_in_the_certificate(self):
        code, err = self.run_against("good", "ca.pem", host="localhost")
        self.assertNotIn("handshake", err)

    def test_an_unknown_ca_is_refused(self):
        code, err = self.run_against("good", "other.pem")
        self.assertEqual(code, 1)
        self.assertIn("TLS handshake", err)
        self.assertIn("certificate verify failed", err)

    def test_a_wrong_host_name_is_refused(self):
        code, err = self.run_against("wronghost", "ca.pem")
        self.assertEqual(code, 1)
        self.assertIn("TLS handshake", err)

    def test_an_expired_certificate_is_refused(self):
        code, err = self.run_against("expired", "ca.pem")
        self.assertEqual(code, 1)
        self.assertIn("TLS handshake", err)


if __name__ == "__main__":
    unittest.main()
