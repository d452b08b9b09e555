"""Checks apsis-fake, the fake APSIS One server the other integration tests rely on.

Run from tests/integration:
    APSIS_FAKE=/path/to/apsis-fake python3 -m unittest -v test_fake_server
"""

import base64
import gzip
import http.client
import json
import os
import re
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.environ.get("APSIS_FAKE") or os.path.join(HERE, "../../build-fake/tests/fake/apsis-fake")

CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"
READY_AFTER = 0.3
DEFAULT_SIZE = 1048576
GATEWAY_DENY = {"message": "User is not authorized to access this resource with an explicit deny"}
CSV_TYPE = "text/csv;charset=UTF-8;header=present"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class FakeServerTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        port_file = os.path.join(self.tmp.name, "port")
        self.proc = subprocess.Popen(
            [FAKE, "--port", "0", "--port-file", port_file, "--quiet", "--ready-after", "300ms"],
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                self.fail(f"apsis-fake exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                self.fail("apsis-fake did not write its port file")
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read())
        self.base = f"http://127.0.0.1:{self.port}"

    def tearDown(self):
        self.proc.terminate()
        try:
            self.assertEqual(self.proc.wait(timeout=10), 0)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.tmp.cleanup()

    # --- helpers -------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, conn=None):
        """Returns (status, headers, body bytes). Raises IncompleteRead for cut bodies."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return res.status, res.headers, res.read()
        finally:
            if own:
                conn.close()

    def json_request(self, method, path, body=None, headers=None):
        status, hdrs, data = self.request(method, path, body, headers)
        return status, hdrs, json.loads(data) if data else None

    def faults(self, **settings):
        status, _, body = self.json_request("POST", "/_fake/faults", settings)
        self.assertEqual(status, 200, body)
        return body

    def stats(self):
        return self.json_request("GET", "/_fake/stats")[2]

    def token(self):
        status, _, body = self.json_request(
            "POST",
            "/oauth/token",
            {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        )
        self.assertEqual(status, 200, body)
        return body["access_token"]

    @staticmethod
    def auth(token, **extra):
        return {"Authorization": f"Bearer {token}", **extra}

    def submit(self, token, kind="duplicates", body=None):
        status, hdrs, reply = self.json_request(
            "POST", f"/audience/profiles/reports/{kind}", body if body is not None else {"segment": "all"},
            self.auth(token, **{"Content-Type": "application/json"}))
        return status, hdrs, reply

    def ready_export(self, token):
        status, _, reply = self.submit(token)
        self.assertEqual(status, 200, reply)
        time.sleep(READY_AFTER + 0.05)
        return urllib.parse.urlsplit(reply["poll_url"]).path

    def download(self, token, path, **headers):
        return self.request("GET", path, headers=self.auth(token, **headers))

    def assert_csv(self, data, size=DEFAULT_SIZE):
        self.assertEqual(len(data), size)
        self.assertTrue(data.startswith(b"profile_key,email,segment\n"))
        self.assertTrue(data.endswith(b"\n"))
        second = data.split(b"\n")[1].decode()
        self.assertRegex(second, r"^pk-[0-9a-f]{8}-0000000000,user0000000000\.[0-9a-f]{8}@example\.com,\w+$")

    # --- startup and tokens --------------------------------------------------

    def test_announces_listening_url(self):
        line = self.proc.stdout.readline().strip()
        self.assertEqual(line, f"apsis-fake listening on http://127.0.0.1:{self.port}")

    def test_token_issue_and_wrong_secret(self):
        status, _, body = self.json_request(
            "POST", "/oauth/token",
            {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        self.assertEqual(status, 200)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 3600)
        header, payload, signature = body["access_token"].split(".")
        self.assertNotIn("=", header + payload)
        self.assertEqual(b64url_json(header), {"alg": "none", "typ": "JWT"})
        claims = b64url_json(payload)
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        self.assertLessEqual(abs(claims["iat"] - time.time()), 5)
        self.assertEqual(signature, "c2ln")

        for bad in ({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "nope"},
                    {"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                    "{not json"):
            status, _, body = self.json_request("POST", "/oauth/token", bad)
            self.assertEqual((status, body), (401, {"message": "invalid_client"}))

    def test_token_429_sends_retry_after(self):
        self.faults(token_429=1, retry_after=7)
        status, hdrs, _ = self.json_request("POST", "/oauth/token", {})
        self.assertEqual(status, 429)
        self.assertEqual(hdrs["Retry-After"], "7")
        self.token()

    # --- auth ----------------------------------------------------------------

    def test_submit_without_token_is_gateway_403(self):
        status, _, body = self.json_request("POST", "/audience/profiles/reports/duplicates", {})
        self.assertEqual((status, body), (403, GATEWAY_DENY))
        status, _, body = self.submit("bogus")
        self.assertEqual((status, body), (403, GATEWAY_DENY))

    def test_auth_failure_status_401(self):
        self.faults(auth_failure_status=401)
        status, _, body = self.submit("bogus")
        self.assertEqual((status, body), (401, {"message": "Unauthorized"}))

    def test_expire_tokens_invalidates_old_token(self):
        old = self.token()
        self.assertEqual(self.submit(old)[0], 200)
        self.faults(expire_tokens=True)
        status, _, body = self.submit(old)
        self.assertEqual((status, body), (403, GATEWAY_DENY))
        self.assertEqual(self.submit(self.token())[0], 200)

    # --- submit, poll, download ---------------------------------------------

    def test_submit_rejects_non_object_body(self):
        status, _, body = self.submit(self.token(), body=[1, 2])
        self.assertEqual(status, 400)
        self.assertIn("object", body["message"])

    def test_submit_poll_then_download_csv(self):
        token = self.token()
        status, _, reply = self.submit(token, "consents")
        self.assertEqual(status, 200)
        self.assertRegex(reply["poll_url"], rf"^http://127\.0\.0\.1:{self.port}/exports/exp-\d+-[0-9a-f]+$")
        path = urllib.parse.urlsplit(reply["poll_url"]).path

        status, _, body = self.download(token, path)
        self.assertEqual((status, json.loads(body)), (404, {"message": "Not found"}))
        time.sleep(READY_AFTER + 0.05)

        status, hdrs, data = self.download(token, path)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], CSV_TYPE)
        self.assertEqual(hdrs["Content-Length"], str(DEFAULT_SIZE))
        self.assert_csv(data)
        self.assertEqual(self.download(token, path)[2], data, "downloads must be repeatable")

    def test_unknown_export_is_404(self):
        status, _, body = self.download(self.token(), "/exports/exp-999-deadbeef")
        self.assertEqual((status, json.loads(body)), (404, {"message": "Not found"}))

    def test_gzip_download_matches_plain(self):
        token = self.token()
        path = self.ready_export(token)
        plain = self.download(token, path)[2]
        status, hdrs, data = self.download(token, path, **{"Accept-Encoding": "gzip, deflate"})
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Encoding"], "gzip")
        self.assertEqual(hdrs["Transfer-Encoding"], "chunked")
        self.assertIsNone(hdrs["Content-Length"])
        self.assertLess(len(data), len(plain))
        self.assertEqual(gzip.decompress(data), plain)

    def test_xlsx_download(self):
        token = self.token()
        path = self.ready_export(token)
        status, hdrs, data = self.download(token, path, Accept=XLSX_TYPE)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], XLSX_TYPE)
        self.assertEqual(len(data), DEFAULT_SIZE)
        self.assertTrue(data.startswith(b"PK\x03\x04"))

    def test_chunked_setting_and_size(self):
        self.faults(chunked=True, size=300001)
        token = self.token()
        path = self.ready_export(token)
        status, hdrs, data = self.download(token, path)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Transfer-Encoding"], "chunked")
        self.assertIsNone(hdrs["Content-Length"])
        self.assert_csv(data, 300001)

    def test_gone_after_validity(self):
        self.faults(validity_ms=200)
        token = self.token()
        status, _, reply = self.submit(token)
        time.sleep(0.25)
        status, _, body = self.download(token, urllib.parse.urlsplit(reply["poll_url"]).path)
        self.assertEqual((status, json.loads(body)), (410, {"message": "Gone"}))

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        token = self.token()
        path = self.ready_export(token)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            for _ in range(3):
                status, _, data = self.request("GET", path, headers=self.auth(token), conn=conn)
                self.assertEqual(status, 200)
                self.assertEqual(len(data), DEFAULT_SIZE)
                status, _, _ = self.request("GET", "/_fake/stats", conn=conn)
                self.assertEqual(status, 200)
        finally:
            conn.close()

    # --- faults --------------------------------------------------------------

    def test_submit_413_fault_fires_once(self):
        token = self.token()
        self.faults(submit_413=1)
        status, _, body = self.submit(token)
        self.assertEqual((status, body), (413, {"message": "Payload Too Large"}))
        self.assertEqual(self.submit(token)[0], 200)

    def test_submit_location_fault(self):
        self.faults(submit_location=1)
        token = self.token()
        status, hdrs, data = self.request(
            "POST", "/audience/profiles/reports/duplicates", {}, self.auth(token))
        self.assertEqual((status, data), (201, b""))
        self.assertRegex(hdrs["Location"], r"^/exports/exp-")
        time.sleep(READY_AFTER + 0.05)
        self.assertEqual(self.download(token, hdrs["Location"])[0], 200)

    def test_submit_malformed_fault(self):
        self.faults(submit_malformed=1)
        status, _, data = self.request(
            "POST", "/audience/profiles/reports/duplicates", {}, self.auth(self.token()))
        self.assertEqual(status, 200)
        with self.assertRaises(json.JSONDecodeError):
            json.loads(data)

    def test_submit_foreign_poll_url(self):
        self.faults(submit_foreign_poll_url=1)
        token = self.token()
        status, _, reply = self.submit(token)
        self.assertEqual(status, 200)
        self.assertTrue(reply["poll_url"].startswith(f"http://localhost:{self.port}/exports/exp-"), reply)
        time.sleep(READY_AFTER + 0.05)
        self.assertEqual(self.download(token, urllib.parse.urlsplit(reply["poll_url"]).path)[0], 200)

    def test_poll_5xx_fault(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(poll_5xx=3)
        answers = {}
        for _ in range(3):
            status, _, body = self.download(token, path)
            answers[status] = json.loads(body)["message"]
        # A storm is a mix of the server errors a gateway gives.
        self.assertEqual(answers, {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"})
        self.assertEqual(self.download(token, path)[0], 200)

    def test_always_on_fault(self):
        token = self.token()
        self.assertEqual(self.faults(submit_5xx=-1)["submit_5xx"], -1)
        self.assertEqual({self.submit(token)[0] for _ in range(3)}, {500, 502, 503})
        self.faults(submit_5xx=0)
        self.assertEqual(self.submit(token)[0], 200)

    def test_download_cut_gives_short_body(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(download_cut=1)
        with self.assertRaises(http.client.IncompleteRead) as caught:
            self.download(token, path)
        self.assertLess(len(caught.exception.partial), DEFAULT_SIZE)
        self.assertGreater(len(caught.exception.partial), 0)
        self.assertEqual(len(self.download(token, path)[2]), DEFAULT_SIZE)

    def test_download_short_length(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(download_short_length=1)
        with self.assertRaises(http.client.IncompleteRead) as caught:
            self.download(token, path)
        self.assertEqual(len(caught.exception.partial), DEFAULT_SIZE)
        self.assertEqual(caught.exception.expected, 1000)

    def test_download_cut_chunked(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(download_cut_chunked=1)
        with self.assertRaises(http.client.IncompleteRead):
            self.download(token, path)

    def test_download_corrupt_gzip(self):
        token = self.token()
        path = self.ready_export(token)
        plain = self.download(token, path)[2]
        self.faults(download_corrupt_gzip=1)
        status, hdrs, data = self.download(token, path, **{"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Encoding"], "gzip")
        # The deflate data is intact; only the trailer's CRC32 lies.
        self.assertEqual(zlib.decompress(data[10:-8], -15), plain)
        with self.assertRaises((OSError, zlib.error)):
            gzip.decompress(data)

    def test_unknown_fault_is_rejected(self):
        status, _, body = self.json_request("POST", "/_fake/faults", {"submit_5xx": 1, "bogus_fault": 1})
        self.assertEqual(status, 400)
        self.assertIn("bogus_fault", body["message"])
        self.assertEqual(self.faults()["submit_5xx"], 0, "a rejected request changes nothing")

    # --- stats and reset -----------------------------------------------------

    def test_stats_count_requests(self):
        token = self.token()
        self.submit(token, "consents", {"filter": "x"})
        status, _, reply = self.submit(token, "duplicates", {"segment": "all"})
        path = urllib.parse.urlsplit(reply["poll_url"]).path
        export_id = path.rsplit("/", 1)[1]
        self.download(token, path)  # 404, still preparing
        time.sleep(READY_AFTER + 0.05)
        self.download(token, path, **{"Accept-Encoding": "gzip"})

        stats = self.stats()
        self.assertEqual(stats["token_requests"], 1)
        self.assertEqual(stats["submit_requests"], 2)
        self.assertEqual(stats["submissions"], 2)
        self.assertEqual(stats["polls"], 2)
        self.assertEqual(stats["downloads_started"], 1)
        self.assertEqual(stats["downloads_completed"], 1)
        self.assertEqual(stats["exports"][export_id],
                         {"kind": "duplicates", "body": {"segment": "all"}, "polls": 2, "downloads": 1})
        self.assertEqual(len(stats["exports"]), 2)
        last = stats["requests"][-1]
        self.assertEqual(last["method"], "GET")
        self.assertEqual(last["target"], path)
        self.assertEqual(last["status"], 200)
        self.assertEqual(last["authorization"], f"Bearer {token}")
        self.assertEqual(last["accept_encoding"], "gzip")
        self.assertFalse(any(r["target"].startswith("/_fake/") for r in stats["requests"]))

    def test_reset_clears_everything(self):
        token = self.token()
        self.submit(token)
        self.faults(submit_5xx=3, size=10)
        status, _, _ = self.json_request("POST", "/_fake/reset", {})
        self.assertEqual(status, 200)
        stats = self.stats()
        self.assertEqual((stats["token_requests"], stats["exports"], stats["requests"]), (0, {}, []))
        self.assertEqual((stats["faults"]["submit_5xx"], stats["faults"]["size"]), (0, DEFAULT_SIZE))
        self.assertEqual(self.submit(token)[0], 403, "tokens are forgotten too")


if __name__ == "__main__":
    unittest.main()
