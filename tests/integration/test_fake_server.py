"""Checks apsis-fake, the fake APSIS One server the other integration tests rely on.

Its defaults follow the documented contract (docs/apsis-api.md); faults are opt-in.

Run from tests/integration:
    APSIS_FAKE=/path/to/apsis-fake python3 -m unittest -v test_fake_server
"""

import base64
import gzip
import http.client
import socket
import json
import os
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
TOO_MANY = {"message": "Too Many Requests"}
CSV_TYPE = "text/csv;charset=UTF-8;header=present"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCUMENTED_LIMITS = {
    "submits": {"count": 1, "window_ms": 1000},
    "event_submits": {"count": 1, "window_ms": 60000},
    "polls": {"count": 60, "window_ms": 60000},
    "tokens": {"count": 10, "window_ms": 60000},
}
# A valid body for each kind (docs/apsis-api.md, "The asynchronous exports").
KINDS = {
    "duplicates": ("/audience/profiles/reports/duplicates", {"segment": "all"}),
    "consents": ("/audience/profiles/reports/consents", {"section_discriminator": "com.apsis1.sections.a"}),
    "segments": ("/audience/profiles/reports/segments", {"segment_discriminator": "usercreated.segments.a-1"}),
    "events": ("/audience/profiles/exports", {"attributes": ["email"], "events": ["open"],
                                              "start_at": "2024-01-01T00:00:00Z"}),
}


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def url_path(url):
    return urllib.parse.urlsplit(url).path


class FakeCase(unittest.TestCase):
    """Starts apsis-fake with `fake_args` for each test and offers HTTP helpers."""

    fake_args = ("--ready-after", "300ms", "--no-limits")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        port_file = os.path.join(self.tmp.name, "port")
        self.proc = subprocess.Popen(
            [FAKE, "--port", "0", "--port-file", port_file, "--quiet", *self.fake_args],
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

    def account(self, client_id=CLIENT_ID):
        return self.stats()["accounts"][client_id]

    def token_request(self, client_id=CLIENT_ID, secret=CLIENT_SECRET):
        return self.json_request(
            "POST", "/oauth/token",
            {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})

    def token(self, client_id=CLIENT_ID, secret=CLIENT_SECRET):
        status, _, body = self.token_request(client_id, secret)
        self.assertEqual(status, 200, body)
        return body["access_token"]

    @staticmethod
    def auth(token, **extra):
        return {"Authorization": f"Bearer {token}", **extra}

    def submit(self, token, kind="duplicates", body=None):
        path, default_body = KINDS[kind]
        return self.json_request("POST", path, body if body is not None else default_body,
                                 self.auth(token, **{"Content-Type": "application/json"}))

    def submitted(self, token, kind="duplicates", body=None):
        """Submits and returns the answer, which must be the documented one."""
        status, _, reply = self.submit(token, kind, body)
        self.assertEqual(status, 201, reply)
        return reply

    def ready_export(self, token, kind="duplicates"):
        reply = self.submitted(token, kind)
        time.sleep(READY_AFTER + 0.05)
        return url_path(reply["file_download_url"])

    def poll(self, token, path, **headers):
        return self.request("GET", path, headers=self.auth(token, **headers))

    def poll_status(self, token, path):
        return self.poll(token, path)[0]

    def assert_csv(self, data, size=DEFAULT_SIZE):
        self.assertEqual(len(data), size)
        self.assertTrue(data.startswith(b"profile_key,email,segment\n"))
        self.assertTrue(data.endswith(b"\n"))
        second = data.split(b"\n")[1].decode()
        self.assertRegex(second, r"^pk-[0-9a-f]{8}-0000000000,user0000000000\.[0-9a-f]{8}@example\.com,\w+$")

    def assert_throttled(self, answer):
        status, hdrs, body = answer
        self.assertEqual((status, body), (429, TOO_MANY))
        self.assertIsNone(hdrs["Retry-After"], "no Retry-After is documented")


class FakeServerTest(FakeCase):
    """The documented contract without rate limits, and the faults."""

    # --- startup and tokens --------------------------------------------------

    def test_announces_listening_url(self):
        line = self.proc.stdout.readline().strip()
        self.assertEqual(line, f"apsis-fake listening on http://127.0.0.1:{self.port}")

    def test_token_issue_and_wrong_secret(self):
        status, _, body = self.token_request()
        self.assertEqual(status, 200)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 3600)
        header, payload, signature = body["access_token"].split(".")
        self.assertNotIn("=", header + payload)
        self.assertEqual(b64url_json(header), {"alg": "none", "typ": "JWT"})
        claims = b64url_json(payload)
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        self.assertEqual(claims["sub"], CLIENT_ID)
        self.assertLessEqual(abs(claims["iat"] - time.time()), 5)
        self.assertEqual(signature, "c2ln")

        for bad in ({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "nope"},
                    {"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                    "{not json"):
            status, _, body = self.json_request("POST", "/oauth/token", bad)
            self.assertEqual((status, body), (401, {"message": "invalid_client"}))

    def test_token_429_fault_has_retry_after_only_when_asked(self):
        self.faults(token_429=1)
        self.assert_throttled(self.json_request("POST", "/oauth/token", {}))
        self.faults(token_429=1, retry_after=7)
        status, hdrs, _ = self.json_request("POST", "/oauth/token", {})
        self.assertEqual((status, hdrs["Retry-After"]), (429, "7"))
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
        self.assertEqual(self.submit(old)[0], 201)
        self.faults(expire_tokens=True)
        status, _, body = self.submit(old)
        self.assertEqual((status, body), (403, GATEWAY_DENY))
        self.assertEqual(self.submit(self.token())[0], 201)

    # --- submit answers ------------------------------------------------------

    def test_submit_answer_carries_only_file_download_url(self):
        status, hdrs, reply = self.submit(self.token(), "consents")
        self.assertEqual(status, 201)
        self.assertEqual(list(reply), ["file_download_url"])
        self.assertRegex(reply["file_download_url"], rf"^http://127\.0\.0\.1:{self.port}/exports/exp-\d+-[0-9a-f]+$")
        self.assertIsNone(hdrs["Location"])

    def test_submit_status_is_configurable(self):
        token = self.token()
        self.faults(submit_status=202)
        status, _, reply = self.submit(token)
        self.assertEqual(status, 202)
        self.assertIn("file_download_url", reply)
        status, _, body = self.json_request("POST", "/_fake/faults", {"submit_status": 302})
        self.assertEqual(status, 400, body)

    def test_v2_setting_adds_file_download_url_v2(self):
        token = self.token()
        self.faults(v2=True)
        reply = self.submitted(token)
        export_id = url_path(reply["file_download_url"]).rsplit("/", 1)[1]
        self.assertEqual(reply["file_download_url_v2"], f"{self.base}/v2/exports/{export_id}")
        self.faults(v2=False)
        self.assertEqual(list(self.submitted(token)), ["file_download_url"])

    # --- the four kinds and their documented checks ---------------------------

    def test_four_kinds_are_accepted(self):
        token = self.token()
        ids = {}
        for kind in KINDS:
            reply = self.submitted(token, kind)
            ids[kind] = url_path(reply["file_download_url"]).rsplit("/", 1)[1]
        exports = self.stats()["exports"]
        for kind, export_id in ids.items():
            self.assertEqual(exports[export_id]["kind"], kind)
            self.assertEqual(exports[export_id]["body"], KINDS[kind][1])

    def assert_rejected(self, answer, status=400):
        got, _, body = answer
        self.assertEqual(got, status, body)
        self.assertEqual(set(body), {"title", "status", "detail"})
        self.assertEqual(body["status"], status)
        return body

    def test_non_object_body_is_400(self):
        body = self.assert_rejected(self.submit(self.token(), body=[1, 2]))
        self.assertEqual(body["title"], "Bad Request")
        self.assertIn("object", body["detail"])

    def test_segments_need_exactly_one_of_discriminator_and_definition(self):
        token = self.token()
        self.assert_rejected(self.submit(token, "segments", {}))
        self.assert_rejected(self.submit(token, "segments", {"segment_discriminator": "s",
                                                             "segment_definition": "a = 1"}))
        self.submitted(token, "segments", {"segment_definition": "a = 1"})
        self.submitted(token, "segments", {"segment_discriminator": "s"})

    def test_events_need_attributes_or_tags_and_start_at_for_events(self):
        token = self.token()
        for body in ({}, {"attributes": [], "tags": []}, {"events": ["open"], "start_at": "2024-01-01"}):
            detail = self.assert_rejected(self.submit(token, "events", body))["detail"]
            self.assertIn("attributes", detail)
        detail = self.assert_rejected(self.submit(token, "events", {"tags": ["vip"], "events": ["open"]}))["detail"]
        self.assertIn("start_at", detail)
        self.submitted(token, "events", {"tags": ["vip"]})
        self.submitted(token, "events", {"attributes": ["email"], "events": ["open"], "start_at": "2024-01-01",
                                         "end_at": "2024-01-08"})
        self.assertEqual(self.stats()["submissions"], 2, "rejected requests create no export")

    def test_body_over_100_kB_is_413(self):
        token = self.token()
        padding = "x" * (100_000 - len(json.dumps({"segment": "all", "pad": ""})))
        self.submitted(token, body={"segment": "all", "pad": padding})
        body = self.assert_rejected(self.submit(token, body={"segment": "all", "pad": padding + "x"}), 413)
        self.assertEqual(body["title"], "Request Entity Too Large")

    # --- poll and download ----------------------------------------------------

    def test_submit_poll_then_download_csv(self):
        token = self.token()
        path = url_path(self.submitted(token, "consents")["file_download_url"])
        status, _, body = self.poll(token, path)
        self.assertEqual((status, json.loads(body)), (404, {"message": "Not found"}))
        time.sleep(READY_AFTER + 0.05)

        status, hdrs, data = self.poll(token, path)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], CSV_TYPE)
        self.assertEqual(hdrs["Content-Length"], str(DEFAULT_SIZE))
        self.assert_csv(data)
        self.assertEqual(self.poll(token, path)[2], data, "downloads must be repeatable")

    def test_unknown_export_is_404(self):
        status, _, body = self.poll(self.token(), "/exports/exp-999-deadbeef")
        self.assertEqual((status, json.loads(body)), (404, {"message": "Not found"}))

    def test_gzip_download_matches_plain(self):
        token = self.token()
        path = self.ready_export(token)
        plain = self.poll(token, path)[2]
        status, hdrs, data = self.poll(token, path, **{"Accept-Encoding": "gzip, deflate"})
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Encoding"], "gzip")
        self.assertEqual(hdrs["Transfer-Encoding"], "chunked")
        self.assertIsNone(hdrs["Content-Length"])
        self.assertLess(len(data), len(plain))
        self.assertEqual(gzip.decompress(data), plain)

    def test_xlsx_download(self):
        token = self.token()
        path = self.ready_export(token)
        status, hdrs, data = self.poll(token, path, Accept=XLSX_TYPE)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], XLSX_TYPE)
        self.assertEqual(len(data), DEFAULT_SIZE)
        self.assertTrue(data.startswith(b"PK\x03\x04"))

    def test_event_export_file_is_a_json_array_of_profiles(self):
        self.faults(size=200_000)
        token = self.token()
        path = self.ready_export(token, "events")
        status, hdrs, data = self.poll(token, path, Accept=XLSX_TYPE)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], "application/json")
        self.assertEqual(hdrs["Content-Length"], str(len(data)))
        profiles = json.loads(data)
        self.assertIsInstance(profiles, list)
        self.assertTrue(all(isinstance(p, dict) and p["profile_key"].startswith("pk-") for p in profiles))
        self.assertEqual(len({p["profile_key"] for p in profiles}), len(profiles))
        self.assertLessEqual(len(data), 200_000)
        self.assertGreater(len(data), 200_000 - 2 * len(json.dumps(profiles[0])))
        self.assertEqual(self.poll(token, path)[2], data, "downloads must be byte-identical")
        zipped = self.poll(token, path, **{"Accept-Encoding": "gzip"})[2]
        self.assertEqual(gzip.decompress(zipped), data)

    def test_chunked_setting_and_size(self):
        self.faults(chunked=True, size=300001)
        token = self.token()
        path = self.ready_export(token)
        status, hdrs, data = self.poll(token, path)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Transfer-Encoding"], "chunked")
        self.assertIsNone(hdrs["Content-Length"])
        self.assert_csv(data, 300001)

    def test_gone_after_validity(self):
        self.faults(validity_ms=200)
        token = self.token()
        path = url_path(self.submitted(token)["file_download_url"])
        time.sleep(0.25)
        status, _, body = self.poll(token, path)
        self.assertEqual((status, json.loads(body)), (410, {"message": "Gone"}))

    def test_failed_export_answers_503_forever(self):
        token = self.token()
        self.faults(fail_exports=1)
        failed = url_path(self.submitted(token)["file_download_url"])
        fine = url_path(self.submitted(token)["file_download_url"])
        self.assertEqual(self.poll_status(token, failed), 404, "in progress until ready_after")
        time.sleep(READY_AFTER + 0.05)
        for _ in range(5):
            status, _, body = self.poll(token, failed)
            self.assertEqual((status, json.loads(body)), (503, {"message": "Service Unavailable"}))
        self.assertEqual(self.poll_status(token, fine), 200)
        self.faults(validity_ms=1)
        self.assertEqual(self.poll_status(token, failed), 503, "a failed export never turns into 410")
        exports = self.stats()["exports"]
        self.assertEqual(exports[failed.rsplit("/", 1)[1]]["state"], "failed")
        self.assertEqual(exports[fine.rsplit("/", 1)[1]]["state"], "gone")
        self.assertEqual(self.stats()["faults"]["fail_exports"], 0)

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
        self.assertEqual((status, body["status"], body["title"]), (413, 413, "Request Entity Too Large"))
        self.assertEqual(self.submit(token)[0], 201)

    def test_submit_400_fault_has_the_documented_body(self):
        self.faults(submit_400=1)
        status, _, body = self.submit(self.token())
        self.assertEqual((status, body["status"], body["title"]), (400, 400, "Bad Request"))
        self.assertIn("detail", body)

    def test_submit_location_only_fault_creates_the_export(self):
        self.faults(submit_location_only=1)
        token = self.token()
        status, hdrs, body = self.submit(token)
        self.assertEqual(status, 201)
        self.assertRegex(hdrs["Location"], r"^/exports/exp-")
        self.assertNotIn("file_download_url", body)
        self.assertEqual(body["id"], hdrs["Location"].rsplit("/", 1)[1])
        time.sleep(READY_AFTER + 0.05)
        self.assertEqual(self.poll_status(token, hdrs["Location"]), 200)

    def test_submit_no_download_url_fault_creates_the_export(self):
        self.faults(submit_no_download_url=1)
        token = self.token()
        status, hdrs, body = self.submit(token)
        self.assertEqual((status, body["status"]), (201, "queued"))
        self.assertEqual(set(body), {"id", "status"})
        self.assertIsNone(hdrs["Location"])
        stats = self.stats()
        self.assertEqual(stats["submissions"], 1)
        self.assertIn(body["id"], stats["exports"])

    def test_submit_malformed_fault(self):
        self.faults(submit_malformed=1)
        status, _, data = self.request(
            "POST", "/audience/profiles/reports/duplicates", {}, self.auth(self.token()))
        self.assertEqual(status, 200)
        with self.assertRaises(json.JSONDecodeError):
            json.loads(data)
        self.assertEqual(self.stats()["exports"], {})

    def test_submit_foreign_download_url_fault(self):
        self.faults(submit_foreign_download_url=1)
        token = self.token()
        reply = self.submitted(token)
        self.assertTrue(reply["file_download_url"].startswith(f"http://localhost:{self.port}/exports/exp-"), reply)
        time.sleep(READY_AFTER + 0.05)
        self.assertEqual(self.poll_status(token, url_path(reply["file_download_url"])), 200)

    def test_old_fault_names_are_rejected(self):
        for old in ("submit_no_poll_url", "submit_location", "submit_foreign_poll_url"):
            status, _, body = self.json_request("POST", "/_fake/faults", {old: 1})
            self.assertEqual(status, 400, old)
            self.assertIn(old, body["message"])

    def test_poll_5xx_fault(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(poll_5xx=3)
        answers = {}
        for _ in range(3):
            status, _, body = self.poll(token, path)
            answers[status] = json.loads(body)["message"]
        # A storm is a mix of the server errors a gateway gives.
        self.assertEqual(answers, {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"})
        self.assertEqual(self.poll_status(token, path), 200)

    def test_poll_503_fault_is_a_lone_gateway_503(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(poll_503=2)
        for _ in range(2):
            status, _, body = self.poll(token, path)
            self.assertEqual((status, json.loads(body)), (503, {"message": "Service Unavailable"}))
        self.assertEqual(self.poll_status(token, path), 200)
        self.assertEqual(self.stats()["exports"][path.rsplit("/", 1)[1]]["state"], "ready")

    def test_poll_429_fault_is_forced_without_limits(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(poll_429=1, submit_429=1)
        status, hdrs, body = self.poll(token, path)
        self.assert_throttled((status, hdrs, json.loads(body)))
        self.assert_throttled(self.submit(token))
        self.assertEqual(self.poll_status(token, path), 200)

    def test_always_on_fault(self):
        token = self.token()
        self.assertEqual(self.faults(submit_5xx=-1)["submit_5xx"], -1)
        self.assertEqual({self.submit(token)[0] for _ in range(3)}, {500, 502, 503})
        self.faults(submit_5xx=0)
        self.assertEqual(self.submit(token)[0], 201)

    def test_download_cut_gives_short_body(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(download_cut=1)
        with self.assertRaises(http.client.IncompleteRead) as caught:
            self.poll(token, path)
        self.assertLess(len(caught.exception.partial), DEFAULT_SIZE)
        self.assertGreater(len(caught.exception.partial), 0)
        self.assertEqual(len(self.poll(token, path)[2]), DEFAULT_SIZE)

    def test_download_short_length(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(download_short_length=1)
        with self.assertRaises(http.client.IncompleteRead) as caught:
            self.poll(token, path)
        self.assertEqual(len(caught.exception.partial), DEFAULT_SIZE)
        self.assertEqual(caught.exception.expected, 1000)

    def test_download_cut_chunked(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(download_cut_chunked=1)
        with self.assertRaises(http.client.IncompleteRead):
            self.poll(token, path)

    def test_download_corrupt_gzip(self):
        token = self.token()
        path = self.ready_export(token)
        plain = self.poll(token, path)[2]
        self.faults(download_corrupt_gzip=1)
        status, hdrs, data = self.poll(token, path, **{"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Encoding"], "gzip")
        # The deflate data is intact; only the trailer's CRC32 lies.
        self.assertEqual(zlib.decompress(data[10:-8], -15), plain)
        with self.assertRaises((OSError, zlib.error)):
            gzip.decompress(data)

    def test_download_unframed_ends_the_body_by_closing(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(download_unframed=1)
        status, hdrs, data = self.poll(token, path)
        self.assertEqual(status, 200)
        self.assertIsNone(hdrs["Content-Length"])
        self.assertIsNone(hdrs["Transfer-Encoding"])
        self.assertEqual(hdrs["Connection"], "close")
        self.assert_csv(data)

    def test_download_unframed_and_cut_looks_complete(self):
        # Without framing, a client cannot tell the cut from the end: http.client reads it as whole.
        token = self.token()
        path = self.ready_export(token)
        self.faults(download_unframed=1, download_cut=1)
        status, _, data = self.poll(token, path)
        self.assertEqual(status, 200)
        self.assertEqual(len(data), DEFAULT_SIZE // 2)

    def test_download_empty(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(download_empty=2)
        status, hdrs, data = self.poll(token, path)
        self.assertEqual((status, hdrs["Content-Length"], data), (200, "0", b""))
        status, hdrs, data = self.poll(token, path, **{"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(gzip.decompress(data), b"", "a valid gzip stream of nothing")

    def test_download_error_json_is_a_200_that_is_no_file(self):
        token = self.token()
        path = self.ready_export(token)
        self.faults(download_error_json=1)
        status, hdrs, data = self.poll(token, path)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], "application/json")
        self.assertIn("error", json.loads(data))

    def test_download_multi_member_gzip(self):
        token = self.token()
        path = self.ready_export(token)
        plain = self.poll(token, path)[2]
        self.faults(download_multi_member_gzip=1)
        status, _, data = self.poll(token, path, **{"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(gzip.decompress(data), plain)
        first = zlib.decompressobj(16 + zlib.MAX_WBITS)
        first.decompress(data)
        self.assertTrue(first.eof)
        self.assertTrue(first.unused_data.startswith(b"\x1f\x8b"), "a second member follows the first")

    def test_interim_100_comes_before_the_answer(self):
        self.faults(interim_100=1)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 "), answer[:80])

    def test_submit_reset_creates_the_export_and_loses_the_answer(self):
        token = self.token()
        self.faults(submit_reset=1)
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected)):
            self.submit(token)
        self.assertEqual(self.stats()["submissions"], 1)

    def test_unknown_fault_is_rejected(self):
        status, _, body = self.json_request("POST", "/_fake/faults", {"submit_5xx": 1, "bogus_fault": 1})
        self.assertEqual(status, 400)
        self.assertIn("bogus_fault", body["message"])
        self.assertEqual(self.faults()["submit_5xx"], 0, "a rejected request changes nothing")

    # --- stats and reset -----------------------------------------------------

    def test_stats_count_requests(self):
        token = self.token()
        self.submit(token, "consents")
        path = url_path(self.submitted(token, "duplicates")["file_download_url"])
        export_id = path.rsplit("/", 1)[1]
        self.poll(token, path)  # 404, still preparing
        time.sleep(READY_AFTER + 0.05)
        self.poll(token, path, **{"Accept-Encoding": "gzip"})

        stats = self.stats()
        self.assertEqual(stats["token_requests"], 1)
        self.assertEqual(stats["submit_requests"], 2)
        self.assertEqual(stats["submissions"], 2)
        self.assertEqual(stats["polls"], 2)
        self.assertEqual(stats["downloads_started"], 1)
        self.assertEqual(stats["downloads_completed"], 1)
        self.assertEqual(stats["exports"][export_id],
                         {"account": CLIENT_ID, "kind": "duplicates", "body": {"segment": "all"},
                          "state": "ready", "polls": 2, "downloads": 1})
        self.assertEqual(len(stats["exports"]), 2)
        account = stats["accounts"][CLIENT_ID]
        self.assertEqual(account["requests"], {"submits": 2, "event_submits": 0, "polls": 2, "tokens": 1})
        self.assertEqual(account["throttled"], {"submits": 0, "event_submits": 0, "polls": 0, "tokens": 0})
        self.assertEqual(account["limits"], {kind: None for kind in DOCUMENTED_LIMITS}, "--no-limits")
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
        self.faults(submit_5xx=3, size=10, v2=True, limits="documented")
        status, _, _ = self.json_request("POST", "/_fake/reset", {})
        self.assertEqual(status, 200)
        stats = self.stats()
        self.assertEqual((stats["token_requests"], stats["exports"], stats["requests"]), (0, {}, []))
        self.assertEqual((stats["faults"]["submit_5xx"], stats["faults"]["size"]), (0, DEFAULT_SIZE))
        self.assertEqual((stats["faults"]["v2"], stats["faults"]["limits"]["polls"]), (False, None))
        self.assertEqual(stats["accounts"][CLIENT_ID]["requests"]["tokens"], 0)
        self.assertEqual(self.submit(token)[0], 403, "tokens are forgotten too")


class V2Test(FakeCase):
    """--v2: both download URLs, and the poll table of docs/apsis-api.md row by row."""

    fake_args = ("--ready-after", "300ms", "--no-limits", "--v2")

    def test_submit_carries_both_urls(self):
        reply = self.submitted(self.token(), "segments")
        self.assertEqual(set(reply), {"file_download_url", "file_download_url_v2"})
        export_id = url_path(reply["file_download_url"]).rsplit("/", 1)[1]
        self.assertEqual(reply["file_download_url"], f"{self.base}/exports/{export_id}")
        self.assertEqual(reply["file_download_url_v2"], f"{self.base}/v2/exports/{export_id}")

    def test_submit_v1_only_fault(self):
        token = self.token()
        self.faults(submit_v1_only=2)
        self.assertEqual(list(self.submitted(token)), ["file_download_url"])
        self.assertEqual(list(self.submitted(token)), ["file_download_url"])
        self.assertIn("file_download_url_v2", self.submitted(token))

    def check_poll_table(self, field, table):
        token = self.token()
        ok = self.submitted(token)[field]
        self.faults(fail_exports=1)
        failed = self.submitted(token)[field]
        unknown = ok.rsplit("/", 1)[0] + "/exp-999-deadbeef"
        statuses = lambda: {name: self.poll_status(token, url_path(url))
                            for name, url in (("ok", ok), ("failed", failed), ("unknown", unknown))}

        self.assertEqual(statuses(), {"ok": table["in progress"], "failed": table["in progress"],
                                      "unknown": table["unknown id"]})
        time.sleep(READY_AFTER + 0.05)
        status, hdrs, data = self.poll(token, url_path(ok))
        self.assertEqual((status, hdrs["Content-Type"]), (table["ready"], CSV_TYPE))
        self.assert_csv(data)
        self.assertEqual(statuses(), {"ok": table["ready"], "failed": table["failed"],
                                      "unknown": table["unknown id"]})
        self.faults(validity_ms=1)
        self.assertEqual(statuses(), {"ok": table["gone"], "failed": table["failed"],
                                      "unknown": table["unknown id"]})

    def test_poll_table_of_file_download_url(self):
        self.check_poll_table("file_download_url",
                              {"in progress": 404, "unknown id": 404, "ready": 200, "gone": 410, "failed": 503})

    def test_poll_table_of_file_download_url_v2(self):
        self.check_poll_table("file_download_url_v2",
                              {"in progress": 202, "unknown id": 404, "ready": 200, "gone": 410, "failed": 503})

    def test_v2_in_progress_body_and_one_export_behind_both_urls(self):
        token = self.token()
        reply = self.submitted(token)
        status, _, body = self.poll(token, url_path(reply["file_download_url_v2"]))
        self.assertEqual((status, json.loads(body)), (202, {"message": "Accepted"}))
        time.sleep(READY_AFTER + 0.05)
        self.assertEqual(self.poll(token, url_path(reply["file_download_url_v2"]))[2],
                         self.poll(token, url_path(reply["file_download_url"]))[2])
        stats = self.stats()
        self.assertEqual(len(stats["exports"]), 1)
        self.assertEqual(next(iter(stats["exports"].values()))["polls"], 3)


class DocumentedLimitsTest(FakeCase):
    """The documented per-account limits are enforced without any option."""

    fake_args = ("--ready-after", "300ms")

    def test_limits_are_the_documented_ones(self):
        self.assertEqual(self.account()["limits"], DOCUMENTED_LIMITS)
        self.assertEqual(self.stats()["faults"]["limits"], DOCUMENTED_LIMITS)

    def test_one_export_request_per_second(self):
        token = self.token()
        first = time.monotonic()
        self.submitted(token)
        self.assert_throttled(self.submit(token, "consents"))
        time.sleep(max(0.0, first + 1.05 - time.monotonic()))
        self.submitted(token, "consents")
        self.assertEqual(self.account()["throttled"]["submits"], 1)

    def test_event_exports_count_against_both_limits(self):
        token = self.token()
        first = time.monotonic()
        self.submitted(token, "events")
        self.assert_throttled(self.submit(token, "duplicates"))
        time.sleep(max(0.0, first + 1.05 - time.monotonic()))
        self.assert_throttled(self.submit(token, "events"))
        self.submitted(token, "duplicates")
        account = self.account()
        self.assertEqual(account["requests"], {"submits": 4, "event_submits": 2, "polls": 0, "tokens": 1})
        self.assertEqual(account["throttled"], {"submits": 1, "event_submits": 1, "polls": 0, "tokens": 0})

    def test_sixty_polls_and_ten_tokens_per_minute(self):
        tokens = [self.token() for _ in range(10)]
        self.assert_throttled(self.token_request())
        path = "/exports/exp-999-deadbeef"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            for _ in range(60):
                self.assertEqual(self.request("GET", path, headers=self.auth(tokens[0]), conn=conn)[0], 404)
            status, hdrs, body = self.request("GET", path, headers=self.auth(tokens[0]), conn=conn)
            self.assert_throttled((status, hdrs, json.loads(body)))
        finally:
            conn.close()
        account = self.account()
        self.assertEqual(account["throttled"], {"submits": 0, "event_submits": 0, "polls": 1, "tokens": 1})
        self.assertEqual(account["max_in_window"], {"submits": 0, "event_submits": 0, "polls": 61, "tokens": 11})

    def test_unknown_clients_count_nothing(self):
        for _ in range(12):
            self.assertEqual(self.poll_status("bogus", "/exports/exp-1-deadbeef"), 403)
            self.assertEqual(self.submit("bogus")[0], 403)
            self.assertEqual(self.token_request(secret="wrong")[0], 401)
        account = self.account()
        self.assertEqual(account["requests"], {"submits": 0, "event_submits": 0, "polls": 0, "tokens": 0})
        self.assertEqual(account["max_in_window"], {"submits": 0, "event_submits": 0, "polls": 0, "tokens": 0})
        self.token()


class SlidingWindowTest(FakeCase):
    """Short --limit windows: the sliding-window semantics, quickly."""

    fake_args = ("--ready-after", "300ms", "--limit", "polls=3/500ms", "--limit", "submits=2/1s",
                 "--limit", "event_submits=off", "--limit", "tokens=documented")

    def test_cli_limits_show_in_stats(self):
        self.assertEqual(self.account()["limits"], {
            "submits": {"count": 2, "window_ms": 1000}, "event_submits": None,
            "polls": {"count": 3, "window_ms": 500}, "tokens": {"count": 10, "window_ms": 60000}})

    def test_polls_over_the_window_are_429_until_it_slides(self):
        token = self.token()
        path = "/exports/exp-999-deadbeef"
        started = time.monotonic()
        for _ in range(3):
            self.assertEqual(self.poll_status(token, path), 404)
        status, hdrs, body = self.poll(token, path)
        self.assert_throttled((status, hdrs, json.loads(body)))
        time.sleep(max(0.0, started + 0.6 - time.monotonic()))
        for _ in range(3):
            self.assertEqual(self.poll_status(token, path), 404)
        self.assertEqual(self.poll_status(token, path), 429)
        account = self.account()
        self.assertEqual(account["requests"]["polls"], 8)
        self.assertEqual(account["throttled"]["polls"], 2)
        self.assertEqual(account["max_in_window"]["polls"], 4, "what the client sent, 429s included")

    def test_a_throttled_request_does_not_fill_the_window(self):
        token = self.token()
        first = time.monotonic()
        self.submitted(token)                                  # t = 0
        time.sleep(max(0.0, first + 0.5 - time.monotonic()))
        self.submitted(token)                                  # t = 0.5
        time.sleep(max(0.0, first + 0.6 - time.monotonic()))
        self.assert_throttled(self.submit(token))              # t = 0.6: two in the last second
        time.sleep(max(0.0, first + 1.15 - time.monotonic()))
        # Only t = 0.5 is in the window now; had the 429 at t = 0.6 counted, this would be 429 too.
        self.submitted(token)
        self.assertEqual(self.account()["max_in_window"]["submits"], 3)

    def test_event_submits_limit_off_leaves_submits_limit(self):
        token = self.token()
        self.submitted(token, "events")
        self.submitted(token, "events")
        self.assert_throttled(self.submit(token, "events"))
        self.assertEqual(self.account()["throttled"], {"submits": 1, "event_submits": 0, "polls": 0, "tokens": 0})

    def test_limits_through_the_control_api(self):
        token = self.token()
        path = "/exports/exp-999-deadbeef"
        body = self.faults(limits={"polls": "1/1m"})
        self.assertEqual(body["limits"]["polls"], {"count": 1, "window_ms": 60000})
        self.assertEqual(body["limits"]["submits"], {"count": 2, "window_ms": 1000}, "other kinds unchanged")
        self.assertEqual(self.poll_status(token, path), 404)
        self.assertEqual(self.poll_status(token, path), 429)
        self.faults(limits="off")
        self.assertEqual(self.account()["limits"], {kind: None for kind in DOCUMENTED_LIMITS})
        self.assertEqual([self.poll_status(token, path) for _ in range(5)], [404] * 5)
        self.faults(limits="documented")
        self.assertEqual(self.account()["limits"], DOCUMENTED_LIMITS)
        for bad in ({"polls": "5/2x"}, {"polls": "0/1s"}, {"polls": 5}, {"downloads": "1/1s"}, "sometimes"):
            status, _, reply = self.json_request("POST", "/_fake/faults", {"limits": bad})
            self.assertEqual(status, 400, (bad, reply))
        self.assertEqual(self.account()["limits"], DOCUMENTED_LIMITS, "rejected requests change nothing")


class AccountsTest(FakeCase):
    """--client twice: tokens, limits, exports and statistics belong to one account each."""

    fake_args = ("--ready-after", "300ms", "--client", "alpha:alpha-secret", "--client", "beta:beta-secret",
                 "--limit", "submits=1/1m", "--limit", "polls=2/1m")

    def test_tokens_belong_to_the_account_that_fetched_them(self):
        self.assertEqual(self.token_request(CLIENT_ID, CLIENT_SECRET)[0], 401, "no default account with --client")
        self.assertEqual(self.token_request("beta", "alpha-secret")[0], 401)
        alpha = self.token("alpha", "alpha-secret")
        beta = self.token("beta", "beta-secret")
        self.assertEqual(b64url_json(alpha.split(".")[1])["sub"], "alpha")
        self.assertEqual(b64url_json(beta.split(".")[1])["sub"], "beta")
        self.assertEqual(set(self.stats()["accounts"]), {"alpha", "beta"})

    def test_limits_and_stats_are_per_account(self):
        alpha = self.token("alpha", "alpha-secret")
        beta = self.token("beta", "beta-secret")
        path = url_path(self.submitted(alpha)["file_download_url"])
        self.assert_throttled(self.submit(alpha))
        beta_path = url_path(self.submitted(beta)["file_download_url"])
        self.assertEqual(self.poll_status(beta, path), 404, "another account's export is unknown")
        self.assertEqual(self.poll_status(alpha, path), 404)
        self.assertEqual(self.poll_status(alpha, path), 404)
        self.assertEqual(self.poll_status(alpha, path), 429)
        self.assertEqual(self.poll_status(beta, beta_path), 404)

        stats = self.stats()
        alpha_stats, beta_stats = stats["accounts"]["alpha"], stats["accounts"]["beta"]
        self.assertEqual(alpha_stats["requests"], {"submits": 2, "event_submits": 0, "polls": 3, "tokens": 1})
        self.assertEqual(alpha_stats["throttled"], {"submits": 1, "event_submits": 0, "polls": 1, "tokens": 0})
        self.assertEqual(beta_stats["requests"], {"submits": 1, "event_submits": 0, "polls": 2, "tokens": 1})
        self.assertEqual(beta_stats["throttled"], {"submits": 0, "event_submits": 0, "polls": 0, "tokens": 0})
        self.assertEqual(stats["exports"][path.rsplit("/", 1)[1]]["account"], "alpha")
        self.assertEqual(stats["exports"][beta_path.rsplit("/", 1)[1]]["account"], "beta")
        self.assertEqual(stats["exports"][path.rsplit("/", 1)[1]]["polls"], 2, "beta's poll never reached it")


class ClientIdOptionTest(FakeCase):
    """--client-id/--client-secret still name the only account."""

    fake_args = ("--ready-after", "300ms", "--client-id", "solo", "--client-secret", "s3cret")

    def test_single_account_options(self):
        self.assertEqual(self.token_request(CLIENT_ID, CLIENT_SECRET)[0], 401)
        self.token("solo", "s3cret")
        self.assertEqual(list(self.stats()["accounts"]), ["solo"])


class CommandLineTest(unittest.TestCase):
    def run_fake(self, *args):
        return subprocess.run([FAKE, *args], capture_output=True, text=True, timeout=10)

    def test_bad_options_are_usage_errors(self):
        for args in (["--limit", "polls=5"], ["--limit", "downloads=1/1s"], ["--limit", "polls=5/2x"],
                     ["--client", "nosecret"], ["--client", "a:x", "--client", "a:y"], ["--submit-status", "302"],
                     ["--v2=yes"]):
            result = self.run_fake(*args)
            self.assertEqual(result.returncode, 2, (args, result.stderr))
            self.assertIn("usage: apsis-fake", result.stderr)

    def test_help_names_the_new_options(self):
        result = self.run_fake("--help")
        self.assertEqual(result.returncode, 0)
        for option in ("--client ID:SECRET", "--limit KIND=COUNT/DURATION", "--no-limits", "--v2",
                       "--submit-status"):
            self.assertIn(option, result.stdout)


if __name__ == "__main__":
    unittest.main()
