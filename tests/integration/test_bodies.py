"""Bodies that must never be published as complete, and the HTTP details around them (issue 12,
item 3 and the smaller HTTP items): a body whose end cannot be verified, an empty CSV or Excel body,
a 200 of the wrong media type, a multi-member gzip body, an interim 100 Continue; and item 8, the
bounded Retry-After on submit."""

import gzip
import os
import subprocess
import tempfile
import time
import unittest

from harness import DAEMON, FakeServer, RunningDaemon, Workspace, sha256_file, wait_for

FILE_SIZE = 1048576


class BodyTest(unittest.TestCase):
    fake_args = ("--ready-after", "300ms")
    exports = {
        "plain": "kind: duplicates",
        "zipped": "kind: duplicates\n    compression: gzip",
        "excel": "kind: consents\n    format: xlsx",
        "zipped_excel": "kind: consents\n    format: xlsx\n    compression: gzip",
        "events": "kind: events\n    request: {attributes: [email], start_at: '2024-01-01T00:00:00Z'}",
    }
    retry = "initial_delay: 50ms\n  multiplier: 2\n  max_delay: 500ms\n  max_attempts: 5"

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, *self.fake_args)
        self.ws = Workspace(self.fake, exports=self.exports, retry=self.retry)

    def tearDown(self):
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def once(self, export, timeout=60):
        """`once`, killed (and reported as a failure, not left running) if it outlives `timeout`."""
        proc = subprocess.Popen([DAEMON, "once", "--config", self.ws.config, export],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            self.fail(f"`once {export}` still running after {timeout}s")
        return proc.returncode, out, err

    def only_job(self):
        jobs = self.ws.jobs()
        self.assertEqual(len(jobs), 1, jobs)
        return jobs[0]

    def assert_published(self, result, download_attempts):
        code, out, err = result
        self.assertEqual(code, 0, err)
        job = self.only_job()
        self.assertEqual((job["state"], job["download_attempts"]), ("succeeded", download_attempts), job["error"])
        self.assertEqual(out.strip(), job["output_path"])
        self.assertEqual(os.path.getsize(job["output_path"]), job["bytes"])
        self.assertEqual(sha256_file(job["output_path"]), job["sha256"])
        self.assertEqual([f for f in self.ws.files() if ".apsis-part-" in f], [])
        return job

    def assert_failed_publishing_nothing(self, result, *why):
        code, _, err = result
        self.assertEqual(code, 1, err)
        job = self.only_job()
        self.assertEqual((job["state"], job["download_attempts"]), ("failed", 5))
        for word in why:
            self.assertIn(word, job["error"])
        self.assertEqual(self.ws.files(), [])
        return job


class UnverifiableEndTest(BodyTest):
    def test_an_unframed_body_cut_halfway_is_fetched_again(self):
        # The reproduction: no Content-Length, no chunking, connection closed halfway.
        self.fake.faults(download_unframed=1, download_cut=1)
        job = self.assert_published(self.once("plain"), 2)
        self.assertEqual(job["bytes"], FILE_SIZE)

    def test_a_whole_unframed_body_is_not_trusted_either(self):
        self.fake.faults(download_unframed=1)
        job = self.assert_published(self.once("plain"), 2)
        self.assertEqual(job["bytes"], FILE_SIZE)

    def test_unframed_bodies_every_time_fail_saying_why(self):
        self.fake.faults(download_unframed=-1)
        self.assert_failed_publishing_nothing(self.once("plain"), "Content-Length", "closing the connection")

    def test_an_unframed_gzip_body_is_verified_by_its_trailer(self):
        self.fake.faults(download_unframed=1)
        job = self.assert_published(self.once("zipped"), 1)
        with gzip.open(job["output_path"], "rb") as f:
            self.assertEqual(len(f.read()), FILE_SIZE)


class EmptyBodyTest(BodyTest):
    def test_an_empty_csv_is_fetched_again(self):
        self.fake.faults(download_empty=1)
        job = self.assert_published(self.once("plain"), 2)
        self.assertEqual(job["bytes"], FILE_SIZE)

    def test_an_empty_excel_file_is_fetched_again(self):
        self.fake.faults(download_empty=1)
        self.assert_published(self.once("excel"), 2)

    def test_an_empty_csv_inside_a_valid_gzip_stream_is_fetched_again(self):
        self.fake.faults(download_empty=1)
        job = self.assert_published(self.once("zipped"), 2)
        with gzip.open(job["output_path"], "rb") as f:
            self.assertEqual(len(f.read()), FILE_SIZE)

    def test_an_empty_gzip_excel_file_is_fetched_again(self):
        self.fake.faults(download_empty=1)
        self.assert_published(self.once("zipped_excel"), 2)

    def test_empty_bodies_every_time_fail_saying_why(self):
        self.fake.faults(download_empty=-1)
        self.assert_failed_publishing_nothing(self.once("plain"), "empty")


class MediaTypeTest(BodyTest):
    def test_a_200_carrying_an_error_json_is_fetched_again(self):
        self.fake.faults(download_error_json=1)
        job = self.assert_published(self.once("plain"), 2)
        with open(job["output_path"], "rb") as f:
            self.assertTrue(f.read(64).startswith(b"profile_key,"))

    def test_error_json_every_time_fails_naming_both_types(self):
        self.fake.faults(download_error_json=-1)
        self.assert_failed_publishing_nothing(self.once("plain"), "application/json", "text/csv")

    def test_json_is_the_media_type_of_event_exports(self):
        job = self.assert_published(self.once("events"), 1)
        self.assertTrue(job["content_type"].startswith("application/json"))


class GzipMembersTest(BodyTest):
    def test_a_multi_member_gzip_body_is_published_as_it_came(self):
        self.fake.faults(download_multi_member_gzip=-1)
        job = self.assert_published(self.once("zipped"), 1)
        with gzip.open(job["output_path"], "rb") as f:
            self.assertEqual(len(f.read()), FILE_SIZE)

    def test_a_corrupt_second_member_is_still_refused(self):
        self.fake.faults(download_multi_member_gzip=1, download_corrupt_gzip=1)
        self.assert_published(self.once("zipped"), 2)


class InterimAnswerTest(BodyTest):
    def test_an_interim_100_continue_is_skipped_on_every_call(self):
        self.fake.faults(interim_100=-1)
        job = self.assert_published(self.once("plain"), 1)
        self.assertEqual(job["bytes"], FILE_SIZE)
        self.assertEqual(job["last_http_status"], 200)


class PostNeverSentTwiceTest(BodyTest):
    def test_a_submit_whose_answer_is_lost_is_not_posted_again(self):
        # APSIS created the export and the connection broke before its answer: a second POST would
        # create a second export, so the job fails saying so instead.
        self.fake.faults(submit_reset=1)
        code, _, err = self.once("plain")
        self.assertEqual(code, 1, err)
        self.assertEqual(self.fake.stats()["submissions"], 1)
        self.assertEqual(self.fake.stats()["submit_requests"], 1)
        job = self.only_job()
        self.assertEqual((job["state"], job["submit_attempts"]), ("failed", 1))
        self.assertIn("not sent again", job["error"])


class CredentialInUrlTest(BodyTest):
    def test_a_base_url_with_userinfo_is_refused_without_echoing_the_password(self):
        with open(self.ws.config) as f:
            text = f.read()
        with open(self.ws.config, "w") as f:
            f.write(text.replace("base_url: http://", "base_url: http://ops:s3cr3t-pw@"))
        result = self.ws.run("check", "--config", self.ws.config)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("credentials", result.stderr + result.stdout)
        self.assertNotIn("s3cr3t-pw", result.stderr + result.stdout)


class RetryAfterTest(BodyTest):
    def test_a_huge_retry_after_on_submit_is_clamped_to_max_delay_and_logged(self):
        self.fake.faults(submit_429=1, retry_after=99999999)
        code, _, err = self.once("plain", timeout=60)
        self.assertEqual(code, 0, err)
        job = self.only_job()
        self.assertEqual((job["state"], job["submit_attempts"]), ("succeeded", 2))
        self.assertIn("429", err)
        self.assertIn("attempt 1", err)
        self.assertIn("Retry-After", err)

    def test_every_5xx_on_submit_is_logged_with_its_attempt(self):
        self.fake.faults(submit_5xx=2)
        code, _, err = self.once("plain")
        self.assertEqual(code, 0, err)
        self.assertIn("attempt 1", err)
        self.assertIn("attempt 2", err)


class NextSlotTest(BodyTest):
    exports = {"hourly": "kind: duplicates\n    schedule: 'every 4s'"}
    retry = "initial_delay: 50ms\n  multiplier: 2\n  max_delay: 1h\n  max_attempts: 5"

    def test_a_submit_whose_retry_wait_passes_the_next_slot_fails(self):
        # Retry-After 1 h (within max_delay) but the next slot is at most 4 s away: the job fails
        # at once instead of holding its slot (and, with overlap: skip, every later one).
        self.fake.faults(submit_429=1, retry_after=3600)
        daemon = RunningDaemon(self.ws)
        try:
            failed = wait_for(lambda: [j for j in self.ws.jobs() if j["state"] == "failed"], timeout=20,
                              what="the throttled job to fail")
            self.assertIn("next scheduled slot", failed[0]["error"])
            self.assertIn("429", failed[0]["error"])
            # The later slots run normally.
            wait_for(lambda: [j for j in self.ws.jobs() if j["state"] == "succeeded"], timeout=30,
                     what="a later slot to succeed")
        finally:
            daemon.stop()

    def test_without_a_schedule_the_clamp_alone_applies(self):
        self.ws.cleanup()
        self.ws = Workspace(self.fake, exports={"manual": "kind: duplicates"}, retry=self.retry.replace("1h", "1s"))
        self.fake.faults(submit_429=1, retry_after=3600)
        code, _, err = self.once("manual", timeout=60)
        self.assertEqual(code, 0, err)
        self.assertEqual(self.only_job()["submit_attempts"], 2)


if __name__ == "__main__":
    unittest.main()
