"""`apsis-exportd once` end to end against apsis-fake: every outcome leaves the right job row,
the right files (and only those), and no secret anywhere."""

import gzip
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

from harness import HERE, CLIENT_SECRET, DAEMON, FakeServer, Workspace, run_measured, sha256_file, wait_for


class OnceTest(unittest.TestCase):
    fake_args = ("--ready-after", "300ms")
    exports = None

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, *self.fake_args)
        self.ws = Workspace(self.fake, exports=self.exports)

    def tearDown(self):
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def only_job(self):
        jobs = self.ws.jobs()
        self.assertEqual(len(jobs), 1, jobs)
        return jobs[0]

    def assert_no_temp_files(self):
        self.assertEqual([f for f in self.ws.files() if ".apsis-part-" in f], [])

    def assert_succeeded(self, result):
        self.assertEqual(result.returncode, 0, result.stderr)
        job = self.only_job()
        self.assertEqual(job["state"], "succeeded")
        path = result.stdout.strip()
        self.assertEqual(path, job["output_path"])
        self.assertTrue(os.path.isfile(path))
        self.assertEqual(os.path.getsize(path), job["bytes"])
        self.assertEqual(sha256_file(path), job["sha256"])
        self.assertIsNotNone(job["finished_at"])
        self.assertIsNone(job["error"])
        self.assert_no_temp_files()
        return job


class HappyPathTest(OnceTest):
    exports = {
        "plain": "kind: duplicates\n    request: {segments: {segment_discriminators: {a: usercreated.segments.a-1}, filter: a}}",
        "zipped": "kind: duplicates\n    compression: gzip",
        "excel": "kind: consents\n    format: xlsx",
    }

    def test_csv_is_published_with_its_whole_story_in_the_row(self):
        result = self.ws.once("plain")
        job = self.assert_succeeded(result)
        self.assertEqual(job["bytes"], 1048576)
        self.assertEqual(job["last_http_status"], 200)
        self.assertGreaterEqual(job["polls"], 2, "the fake answers 404 for 300 ms first")
        self.assertEqual(job["submit_attempts"], 1)
        self.assertEqual(job["download_attempts"], 1)
        self.assertTrue(job["content_type"].startswith("text/csv"))
        self.assertTrue(job["poll_url"].startswith(self.fake.base_url + "/exports/"))
        self.assertLess(job["submitted_at"], job["poll_expires_at"])
        with open(job["output_path"], "rb") as f:
            self.assertTrue(f.read(64).startswith(b"profile_key,"))
        self.assertTrue(job["output_path"].endswith(".csv"))
        self.assertEqual(os.stat(job["output_path"]).st_mode & 0o007, 0, "no world access")
        stats = self.fake.stats()
        self.assertEqual(stats["submissions"], 1)
        self.assertEqual(stats["token_requests"], 1)
        body = list(stats["exports"].values())[0]["body"]
        self.assertEqual(body, {"segments": {"segment_discriminators": {"a": "usercreated.segments.a-1"}, "filter": "a"}})

    def test_gzip_is_requested_and_kept_compressed(self):
        job = self.assert_succeeded(self.ws.once("zipped"))
        self.assertTrue(job["output_path"].endswith(".csv.gz"))
        self.assertEqual(job["content_encoding"], "gzip")
        with gzip.open(job["output_path"], "rb") as f:
            self.assertEqual(len(f.read()), 1048576)
        polls = [r for r in self.fake.stats()["requests"] if r["target"].startswith("/exports/")]
        self.assertTrue(all(r["accept_encoding"] == "gzip" for r in polls), polls)

    def test_xlsx_is_requested_with_the_excel_accept_header(self):
        job = self.assert_succeeded(self.ws.once("excel"))
        self.assertTrue(job["output_path"].endswith(".xlsx"))
        self.assertIn("spreadsheetml", job["content_type"])
        with open(job["output_path"], "rb") as f:
            self.assertEqual(f.read(4), b"PK\x03\x04")
        polls = [r for r in self.fake.stats()["requests"] if r["target"].startswith("/exports/")]
        self.assertTrue(all("spreadsheetml" in r["accept"] for r in polls), polls)
        self.assertEqual(self.fake.stats()["exports"][job["poll_url"].rsplit("/", 1)[1]]["kind"], "consents")

    def test_secret_and_token_never_leave_the_process(self):
        result = self.ws.once("plain")
        self.assertEqual(result.returncode, 0, result.stderr)
        tokens = {r["authorization"].split(" ", 1)[1] for r in self.fake.stats()["requests"] if r["authorization"]}
        self.assertTrue(tokens)
        with open(self.ws.db, "rb") as f:
            database = f.read()
        for wal in (self.ws.db + "-wal",):
            if os.path.exists(wal):
                with open(wal, "rb") as f:
                    database += f.read()
        listing = self.ws.run("jobs", "--config", self.ws.config).stdout + str(self.ws.jobs())
        for secret in [CLIENT_SECRET, *tokens]:
            for name, text in [("stderr", result.stderr), ("stdout", result.stdout), ("jobs", listing)]:
                self.assertNotIn(secret, text, name)
            self.assertNotIn(secret.encode(), database)

    def test_jobs_filters_by_export_and_state(self):
        self.assertEqual(self.ws.once("plain").returncode, 0)
        self.assertEqual(self.ws.once("excel").returncode, 0)
        self.assertEqual([j["export"] for j in self.ws.jobs("--export", "excel")], ["excel"])
        self.assertEqual(len(self.ws.jobs("--state", "succeeded")), 2)
        self.assertEqual(self.ws.jobs("--state", "failed"), [])
        table = self.ws.run("jobs", "--config", self.ws.config)
        self.assertIn("succeeded", table.stdout)
        self.assertIn("STATE", table.stdout.splitlines()[0])

    def test_the_database_is_readable_with_sqlite3_while_in_wal_mode(self):
        self.assertEqual(self.ws.once("plain").returncode, 0)
        connection = sqlite3.connect(f"file:{self.ws.db}?mode=ro", uri=True)
        self.assertEqual(connection.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(connection.execute("SELECT state FROM job_summary").fetchall(), [("succeeded",)])
        newest = max(int(name.split("_")[0]) for name in os.listdir(os.path.join(HERE, "../../schema"))
                     if name.endswith(".sql"))
        self.assertEqual(connection.execute("PRAGMA user_version").fetchone()[0], newest)


class ProtocolFaultTest(OnceTest):
    def test_token_is_renewed_after_a_401_on_a_poll(self):
        self.fake.faults(poll_401=1)
        self.assert_succeeded(self.ws.once())
        self.assertEqual(self.fake.stats()["token_requests"], 2)

    def test_token_is_renewed_after_the_gateway_403(self):
        self.fake.faults(poll_403_gateway=1)
        self.assert_succeeded(self.ws.once())
        self.assertEqual(self.fake.stats()["token_requests"], 2)

    def test_expired_tokens_are_renewed(self):
        # A token expired at the server between submit and poll.
        self.fake.faults(ready_after_ms=1500)
        daemon = subprocess.Popen([DAEMON, "once", "--config", self.ws.config, "dupes"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: self.fake.stats()["polls"] >= 1, what="the first poll")
        self.fake.faults(expire_tokens=True)
        out, err = daemon.communicate(timeout=60)
        self.assertEqual(daemon.returncode, 0, err)
        self.assertEqual(self.fake.stats()["token_requests"], 2)

    def test_a_403_that_persists_with_a_fresh_token_fails_at_once(self):
        self.fake.faults(submit_403_gateway=2)
        result = self.ws.once()
        self.assertEqual(result.returncode, 1)
        job = self.only_job()
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["last_http_status"], 403)
        self.assertIn("permission", job["error"])
        self.assertEqual(self.fake.stats()["submit_requests"], 2)

    def test_429_with_retry_after_and_5xx_are_retried(self):
        self.fake.faults(submit_429=1, retry_after=1, submit_5xx=2, poll_5xx=2, token_5xx=1)
        started = time.monotonic()
        job = self.assert_succeeded(self.ws.once())
        self.assertGreaterEqual(time.monotonic() - started, 1.0, "Retry-After: 1 was honoured")
        self.assertEqual(job["submit_attempts"], 4)
        self.assertEqual(self.fake.stats()["submissions"], 1)

    def test_413_fails_at_once_with_a_plain_explanation(self):
        self.fake.faults(submit_413=1)
        result = self.ws.once()
        self.assertEqual(result.returncode, 1)
        job = self.only_job()
        self.assertEqual((job["state"], job["last_http_status"], job["submit_attempts"]), ("failed", 413, 1))
        self.assertIn("413 Payload Too Large", job["error"])
        self.assertIn("topics, attributes or tags", job["error"])
        self.assertIn("413", result.stderr)
        self.assertEqual(self.ws.files(), [])

    def test_400_keeps_the_api_message(self):
        self.fake.faults(submit_400=1)
        self.assertEqual(self.ws.once().returncode, 1)
        job = self.only_job()
        self.assertEqual(job["state"], "failed")
        self.assertIn("Invalid filter expression", job["error"])

    def test_410_resubmits_once_in_the_same_row(self):
        self.fake.faults(poll_410=1)
        job = self.assert_succeeded(self.ws.once())
        self.assertEqual(job["resubmits"], 1)
        self.assertEqual(self.fake.stats()["submissions"], 2)

    def test_410_twice_expires_the_job(self):
        self.fake.faults(poll_410=2)
        result = self.ws.once()
        self.assertEqual(result.returncode, 3)
        job = self.only_job()
        self.assertEqual((job["state"], job["last_http_status"], job["resubmits"]), ("expired", 410, 1))
        self.assertIn("410", job["error"])
        self.assertEqual(self.ws.files(), [])
        self.assertEqual(self.fake.stats()["submissions"], 2, "resubmitted once, not more")

    def test_malformed_submit_answer_fails_with_what_was_received(self):
        self.fake.faults(submit_malformed=1)
        self.assertEqual(self.ws.once().returncode, 1)
        self.assertIn("not a JSON object", self.only_job()["error"])

    def test_submit_answer_without_file_download_url_names_the_fields_and_is_not_repeated(self):
        self.fake.faults(submit_no_download_url=1)
        self.assertEqual(self.ws.once().returncode, 1)
        job = self.only_job()
        self.assertIn("no file_download_url field (fields received: id, status)", job["error"])
        # The export exists at APSIS: another POST would create a second one.
        self.assertEqual((job["submit_attempts"], self.fake.stats()["submissions"]), (1, 1))

    def test_a_location_header_is_not_a_poll_url(self):
        # No Location header is documented: guessing one once hid a wrong poll URL field.
        self.fake.faults(submit_location_only=1)
        self.assertEqual(self.ws.once().returncode, 1)
        self.assertIn("no file_download_url field", self.only_job()["error"])
        self.assertEqual(self.fake.stats()["polls"], 0)

    def test_poll_url_on_another_host_fails_without_sending_the_token(self):
        self.fake.faults(submit_foreign_download_url=1)
        self.assertEqual(self.ws.once().returncode, 1)
        job = self.only_job()
        self.assertEqual(job["state"], "failed")
        self.assertIn("refusing to send the API token", job["error"])
        self.assertEqual(self.fake.stats()["polls"], 0)


class NoResubmitTest(OnceTest):
    exports = {"dupes": "kind: duplicates\n    on_expired: fail"}

    def test_on_expired_fail_does_not_resubmit(self):
        self.fake.faults(poll_410=1)
        self.assertEqual(self.ws.once().returncode, 3)
        job = self.only_job()
        self.assertEqual((job["state"], job["resubmits"]), ("expired", 0))
        self.assertEqual(self.fake.stats()["submissions"], 1)


class DownloadFaultTest(OnceTest):
    exports = {"dupes": "kind: duplicates", "zipped": "kind: duplicates\n    compression: gzip"}

    def assert_retried_once(self, result):
        job = self.assert_succeeded(result)
        self.assertEqual(job["download_attempts"], 2)
        self.assertEqual(self.fake.stats()["submissions"], 1, "the same poll URL is reused")
        return job

    def test_a_cut_body_is_fetched_again(self):
        self.fake.faults(download_cut=1)
        job = self.assert_retried_once(self.ws.once())
        self.assertEqual(job["bytes"], 1048576)

    def test_content_length_larger_than_the_body_is_fetched_again(self):
        self.fake.faults(download_short_length=1)
        self.assert_retried_once(self.ws.once())

    def test_a_cut_chunked_body_is_fetched_again(self):
        self.fake.faults(download_cut_chunked=1)
        self.assert_retried_once(self.ws.once())

    def test_a_corrupt_gzip_trailer_is_fetched_again(self):
        self.fake.faults(download_corrupt_gzip=1)
        job = self.assert_retried_once(self.ws.once("zipped"))
        with gzip.open(job["output_path"], "rb") as f:
            self.assertEqual(len(f.read()), 1048576)

    def test_downloads_cut_every_time_fail_and_publish_nothing(self):
        self.fake.faults(download_cut=-1)
        self.assertEqual(self.ws.once().returncode, 1)
        job = self.only_job()
        self.assertEqual((job["state"], job["download_attempts"]), ("failed", 5))
        self.assertIn("download", job["error"])
        self.assertEqual(self.ws.files(), [])


class ExpiryTest(OnceTest):
    fake_args = ("--ready-after", "1h")
    exports = {"dupes": "kind: duplicates\n    polling: {url_validity: 1500ms}"}

    def test_polling_ends_when_the_poll_url_expires(self):
        result = self.ws.once()
        self.assertEqual(result.returncode, 3, result.stderr)
        job = self.only_job()
        self.assertEqual(job["state"], "expired")
        self.assertIn("validity", job["error"])
        self.assertGreaterEqual(job["polls"], 2)
        self.assertEqual(job["resubmits"], 1)
        self.assertEqual(self.fake.stats()["submissions"], 2)
        self.assertGreaterEqual(job["finished_at"], job["poll_expires_at"])
        self.assertEqual(self.ws.files(), [])

    def test_interrupting_once_leaves_the_row_resumable(self):
        daemon = subprocess.Popen([DAEMON, "once", "--config", self.ws.config, "dupes"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: self.fake.stats()["polls"] >= 1, what="the first poll")
        daemon.send_signal(signal.SIGINT)
        out, err = daemon.communicate(timeout=10)
        self.assertEqual(daemon.returncode, 130, err)
        job = self.only_job()
        self.assertEqual(job["state"], "submitted")
        self.assertIsNone(job["finished_at"])
        self.assertIsNotNone(job["poll_url"])


class BigFileTest(OnceTest):
    fake_args = ("--ready-after", "100ms")

    def test_memory_stays_flat_from_1_mb_to_100_mb(self):
        peaks = {}
        for size in (1_000_000, 100_000_000):
            self.fake.faults(size=size)
            code, out, err, rss_kib = run_measured([DAEMON, "once", "--config", self.ws.config, "dupes"])
            self.assertEqual(code, 0, err)
            self.assertEqual(os.path.getsize(out.strip()), size)
            peaks[size] = rss_kib
        print(f"\npeak RSS: 1 MB export {peaks[1_000_000]} KiB, 100 MB export {peaks[100_000_000]} KiB")
        self.assertLess(peaks[100_000_000] - peaks[1_000_000], 8 * 1024,
                        "memory must not grow with the file size")


class CheckCommandTest(unittest.TestCase):
    def test_errors_name_file_line_and_column_and_exit_2(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.yaml")
            with open(path, "w") as f:
                f.write("state_db: ./db\noutput_dir: ./out\naccounts:\n  main:\n    base_url: http://example.com\n"
                        "    client_id: x\n    client_secret: s3cr3t-value\nexports:\n  a:\n    account: nope\n"
                        "    kind: duplicates\n    polling: {initial_delay: 10 s}\n")
            result = subprocess.run([DAEMON, "check", "--config", path], capture_output=True, text=True)
            self.assertEqual(result.returncode, 2)
            self.assertIn(f"{path}:5:15:", result.stderr)   # http refused for a non-loopback host
            self.assertIn(f"{path}:10:14:", result.stderr)  # unknown account
            self.assertIn("unknown account 'nope'", result.stderr)
            self.assertIn(f"{path}:12:30:", result.stderr)  # bad duration
            self.assertNotIn("s3cr3t-value", result.stderr)

    def test_a_valid_file_passes(self):
        demo = os.path.join(os.path.dirname(__file__), "../../config/demo.yaml")
        result = subprocess.run([DAEMON, "check", "--config", demo], capture_output=True, text=True,
                                env={**os.environ, "APSIS_FAKE_PORT": "18080"})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("OK", result.stdout)


if __name__ == "__main__":
    unittest.main()
