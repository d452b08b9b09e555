"""The documented APSIS One contract (../../../shared/docs/apsis-api.md, issue 11), end to end: the
real daemon against apsis-fake. Every row of the poll-answer table for file_download_url and the
opt-in file_download_url_v2 (and that a job keeps its field across a restart), submit answers
without the poll URL, the per-account budget under load and after a 429, the four export kinds
with event windows, and the configuration errors `check` reports for the new keys."""

import datetime
import gzip
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import types
import unittest
import urllib.error
import urllib.request

from harness import DAEMON, FakeServer, RunningDaemon, Workspace, wait_for

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # CI installs it: a missing parser must fail the test, not skip it
    text_string_to_metric_families = None

V1 = "file_download_url"
V2 = "file_download_url_v2"
DUPES = "kind: duplicates\n    request: {segments: {segment_discriminators: {a: usercreated.segments.a-1}, filter: a}}"
EVENT_REQUEST = ("request:\n      attributes: [{field_name: email, attribute_version_id: 5c2f4a6e-8a4d-4c8b-9a51-3f0e7d2b6c11}]\n"
                 "      tags: [usercreated.tags.vip-q9w2e4r6ty]")


def parse_iso(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def poll_requests(stats, url=None):
    """(target, status) of every GET of a poll URL the fake saw, in order; only `url`'s if given."""
    found = [(r["target"], r["status"]) for r in stats["requests"]
             if r["method"] == "GET" and (r["target"].startswith("/exports/") or r["target"].startswith("/v2/exports/"))]
    if url is not None:
        found = [(t, s) for t, s in found if url.endswith(t)]
    return found


def export_id(url):
    return url.rsplit("/", 1)[1]


class ContractTest(unittest.TestCase):
    fake_args = ("--ready-after", "300ms", "--size", "5000")
    exports = {"dupes": DUPES}
    account_extra = ""
    top_extra = ""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, *self.fake_args)
        self.ws = Workspace(self.fake, exports=self.exports, account_extra=self.account_extra,
                            top_extra=self.top_extra)
        self.daemon = None

    def tearDown(self):
        if self.daemon and self.daemon.alive():
            self.daemon.stop(signal.SIGKILL)
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def only_job(self):
        jobs = self.ws.jobs()
        self.assertEqual(len(jobs), 1, jobs)
        return jobs[0]

    def once(self, export="dupes", code=0):
        result = self.ws.once(export)
        self.assertEqual(result.returncode, code, result.stderr)
        return result, self.only_job()

    def assert_succeeded(self, job):
        self.assertEqual(job["state"], "succeeded", job)
        self.assertIsNone(job["error"])
        self.assertTrue(os.path.isfile(job["output_path"]))
        self.assertEqual(job["polls_503_in_a_row"], 0)


class PollAnswerV1Test(ContractTest):
    """The file_download_url column of the poll table, and the 503 rule with its resubmits."""
    account_extra = "budget: {submits: 1/1s}"  # a resubmit need not wait the default 2 s
    exports = {
        "dupes": DUPES,
        "strict": "kind: duplicates\n    on_failed_export: fail",
    }

    def test_404_while_in_progress_then_200_with_the_file(self):
        _, job = self.once()
        self.assert_succeeded(job)
        self.assertEqual(job["poll_url_field"], V1)
        self.assertTrue(job["poll_url"].startswith(self.fake.base_url + "/exports/"), job["poll_url"])
        self.assertEqual(job["resubmits"], 0)
        self.assertIsNone(job["previous_poll_url"])
        stats = self.fake.stats()
        statuses = [s for _, s in poll_requests(stats, job["poll_url"])]
        self.assertGreaterEqual(len(statuses), 2, statuses)
        self.assertEqual(set(statuses[:-1]), {404}, statuses)
        self.assertEqual(statuses[-1], 200)
        self.assertEqual(poll_requests(stats), poll_requests(stats, job["poll_url"]), "only the one URL was polled")
        self.assertEqual(stats["submissions"], 1)

    def test_410_gone_requests_a_new_export_in_the_same_row(self):
        self.fake.faults(poll_410=1)
        _, job = self.once()
        self.assert_succeeded(job)
        self.assertEqual(job["resubmits"], 1)
        self.assertIsNotNone(job["previous_poll_url"])
        self.assertNotEqual(job["previous_poll_url"], job["poll_url"])
        self.assertIn("410", job["resubmit_reason"])
        stats = self.fake.stats()
        self.assertEqual(stats["submissions"], 2)
        self.assertEqual([s for _, s in poll_requests(stats, job["previous_poll_url"])], [410])
        self.assertEqual([s for _, s in poll_requests(stats, job["poll_url"])][-1], 200)

    def test_three_503s_in_a_row_mean_the_export_failed_and_a_new_one_is_requested(self):
        self.fake.faults(fail_exports=1)
        _, job = self.once()
        self.assert_succeeded(job)
        self.assertEqual(job["resubmits"], 1)
        self.assertIn("failed at APSIS One", job["resubmit_reason"])
        stats = self.fake.stats()
        self.assertEqual(stats["submissions"], 2)
        first, second = export_id(job["previous_poll_url"]), export_id(job["poll_url"])
        self.assertEqual(stats["exports"][first]["state"], "failed")
        self.assertEqual(stats["exports"][second]["state"], "ready")
        first_polls = [s for _, s in poll_requests(stats, job["previous_poll_url"])]
        self.assertEqual(first_polls[-3:], [503, 503, 503], first_polls)
        self.assertEqual(first_polls.count(503), 3, "the URL is given up after exactly three 503s")
        self.assertEqual([s for _, s in poll_requests(stats, job["poll_url"])][-1], 200)

    def test_on_failed_export_fail_stops_after_three_503s(self):
        self.fake.faults(fail_exports=1)
        result, job = self.once("strict", code=1)
        self.assertEqual(job["state"], "failed")
        self.assertIn("failed at APSIS One", job["error"])
        self.assertEqual(job["resubmits"], 0)
        self.assertEqual(job["polls_503_in_a_row"], 3)
        stats = self.fake.stats()
        self.assertEqual(stats["submissions"], 1)
        self.assertEqual([s for _, s in poll_requests(stats)].count(503), 3)
        self.assertEqual(self.ws.files(), [])

    def test_resubmits_are_capped_by_max_resubmits(self):
        self.fake.faults(fail_exports=2)
        result, job = self.once(code=1)
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["resubmits"], 1)
        self.assertIn("failed at APSIS One", job["error"])
        self.assertIn("failed at APSIS One", job["resubmit_reason"])
        self.assertIsNotNone(job["previous_poll_url"])
        stats = self.fake.stats()
        self.assertEqual(stats["submissions"], 2)
        self.assertEqual(sorted(e["state"] for e in stats["exports"].values()), ["failed", "failed"])
        self.assertEqual(self.ws.files(), [])

    def test_an_expired_url_and_a_failed_export_share_max_resubmits(self):
        self.fake.faults(poll_410=1, fail_exports=2)  # the first export answers 410, the second fails
        result, job = self.once(code=1)
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["resubmits"], 1)
        self.assertIn("410", job["resubmit_reason"])
        self.assertIn("failed at APSIS One", job["error"])
        stats = self.fake.stats()
        self.assertEqual(stats["submissions"], 2)
        self.assertEqual([s for _, s in poll_requests(stats, job["previous_poll_url"])], [410])
        self.assertEqual([s for _, s in poll_requests(stats, job["poll_url"])].count(503), 3)

    def test_a_lone_503_is_transient(self):
        self.fake.faults(poll_503=1)
        _, job = self.once()
        self.assert_succeeded(job)
        self.assertEqual(job["resubmits"], 0)
        self.assertIsNone(job["previous_poll_url"])
        stats = self.fake.stats()
        self.assertEqual(stats["submissions"], 1)
        statuses = [s for _, s in poll_requests(stats)]
        self.assertEqual(statuses.count(503), 1, statuses)
        self.assertEqual(statuses[-1], 200)


class PollAnswerV2Test(ContractTest):
    """The file_download_url_v2 column: opt-in per account, 202 in progress, 404 unknown export."""
    fake_args = ("--v2", "--ready-after", "300ms", "--size", "5000")
    account_extra = f"poll_url_field: {V2}"

    def test_202_while_in_progress_then_200(self):
        _, job = self.once()
        self.assert_succeeded(job)
        self.assertEqual(job["poll_url_field"], V2)
        self.assertTrue(job["poll_url"].startswith(self.fake.base_url + "/v2/exports/"), job["poll_url"])
        stats = self.fake.stats()
        polls = poll_requests(stats)
        self.assertTrue(all(t.startswith("/v2/exports/") for t, _ in polls), polls)
        statuses = [s for _, s in polls]
        self.assertGreaterEqual(len(statuses), 2, statuses)
        self.assertEqual(set(statuses[:-1]), {202}, statuses)
        self.assertEqual(statuses[-1], 200)
        self.assertEqual(stats["submissions"], 1)

    def test_404_on_v2_means_an_unknown_export_and_fails_the_job(self):
        self.fake.faults(ready_after_ms=60000)
        proc = subprocess.Popen([DAEMON, "once", "--config", self.ws.config, "dupes"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: self.ws.rows("state = 'submitted'"), what="the job to be submitted")
            wait_for(lambda: poll_requests(self.fake.stats()), what="a first poll (202)")
            self.fake.reset()  # APSIS forgets the export (and the token)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 1, err)
        job = self.only_job()
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["poll_url_field"], V2)
        self.assertIn("does not know this export", job["error"])
        self.assertEqual(job["last_http_status"], 404)
        self.assertEqual(job["resubmits"], 0)
        self.assertEqual(self.fake.stats()["submissions"], 0, "no new export after the reset")


class V2RestartTest(ContractTest):
    fake_args = ("--v2", "--ready-after", "4s", "--size", "5000")
    account_extra = f"poll_url_field: {V2}"

    def test_a_resumed_job_polls_the_field_in_its_row_whatever_the_config_says(self):
        result = self.ws.run("trigger", "--config", self.ws.config, "dupes")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.daemon = RunningDaemon(self.ws)
        wait_for(lambda: self.ws.rows(f"state = 'submitted' AND poll_url_field = '{V2}'"),
                 what="the job to be submitted with the v2 field")
        wait_for(lambda: poll_requests(self.fake.stats()), what="a first poll before the kill")
        self.daemon.stop(signal.SIGKILL)
        before = len(self.fake.stats()["requests"])
        self.assertEqual(self.ws.rows()[0]["state"], "submitted")

        with open(self.ws.config) as f:
            text = f.read()
        self.assertIn(f"    poll_url_field: {V2}\n", text)
        with open(self.ws.config, "w") as f:
            f.write(text.replace(f"    poll_url_field: {V2}\n", ""))
        self.assertEqual(self.ws.run("check", "--config", self.ws.config).returncode, 0)

        self.daemon = RunningDaemon(self.ws)
        wait_for(lambda: self.ws.rows("state IN ('succeeded', 'failed', 'expired')"), what="the job to finish")
        self.assertEqual(self.daemon.stop(), 0)
        job = self.only_job()
        self.assert_succeeded(job)
        self.assertEqual(job["poll_url_field"], V2)
        self.assertIn("/v2/", job["poll_url"])
        stats = self.fake.stats()
        after = [(r["target"], r["status"]) for r in stats["requests"][before:] if r["method"] == "GET"]
        self.assertTrue(after, "polled after the restart")
        self.assertTrue(all(t.startswith("/v2/exports/") for t, _ in after), after)
        self.assertEqual(after[-1][1], 200)
        self.assertEqual(stats["submissions"], 1)


class SubmitAnswerTest(ContractTest):
    """A 2xx submit answer must carry the poll URL field; the export exists, so never submit again."""
    fake_args = ("--v2", "--ready-after", "300ms", "--size", "5000")

    def assert_failed_naming_fields(self, result, job):
        self.assertEqual(job["state"], "failed")
        self.assertRegex(job["error"], r"fields received: (id, status|status, id)\)")
        self.assertIn("not submitting again", job["error"])
        self.assertIn("fields received:", result.stderr)
        stats = self.fake.stats()
        self.assertEqual(stats["submissions"], 1)
        self.assertEqual(stats["submit_requests"], 1)
        self.assertEqual(poll_requests(stats), [], "nothing to poll")
        self.assertEqual(self.ws.files(), [])

    def test_an_answer_without_file_download_url_fails_at_once(self):
        self.fake.faults(submit_no_download_url=1)
        result, job = self.once(code=1)
        self.assert_failed_naming_fields(result, job)
        self.assertIn(V1, job["error"])

    def test_a_location_header_is_not_a_poll_url(self):
        self.fake.faults(submit_location_only=1)
        result, job = self.once(code=1)
        self.assert_failed_naming_fields(result, job)

    def test_v2_opt_in_without_v2_in_the_answer_polls_file_download_url_with_a_warning(self):
        with open(self.ws.config) as f:
            text = f.read()
        with open(self.ws.config, "w") as f:
            f.write(text.replace("    client_secret_file: ./secret\n",
                                 f"    client_secret_file: ./secret\n    poll_url_field: {V2}\n"))
        self.fake.faults(submit_v1_only=1)
        result, job = self.once()
        self.assert_succeeded(job)
        self.assertEqual(job["poll_url_field"], V1)
        self.assertTrue(job["poll_url"].startswith(self.fake.base_url + "/exports/"), job["poll_url"])
        self.assertIn("no file_download_url_v2", result.stderr)
        stats = self.fake.stats()
        self.assertTrue(all(t.startswith("/exports/") for t, _ in poll_requests(stats)))
        self.assertEqual(stats["submissions"], 1)


class AdminTest(ContractTest):
    top_extra = "admin_listen: 127.0.0.1:0"

    def start(self):
        self.daemon = RunningDaemon(self.ws)
        match = wait_for(lambda: re.search(r"admin endpoint on http://127\.0\.0\.1:(\d+)", self.daemon.log()),
                         what="the admin endpoint's address in the log")
        self.base = f"http://127.0.0.1:{match.group(1)}"

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=10) as res:
            return res.read().decode()

    def scrape(self):
        self.assertIsNotNone(text_string_to_metric_families,
                             "python3-prometheus-client (Debian package) is needed to parse /metrics")
        samples = {}
        for family in text_string_to_metric_families(self.get("/metrics")):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples

    @staticmethod
    def call(name, call):
        return (name, (("account", "main"), ("call", call)))


class BudgetLoadTest(AdminTest):
    """Eight jobs of one account at once, the fake's limits set to the daemon's budget: the budget,
    shared by the jobs, keeps every window within the limit, so APSIS never answers 429."""
    JOBS = 8
    fake_args = ("--ready-after", "1s", "--size", "2000", "--limit", "polls=4/1s", "--limit", "submits=2/1s")
    account_extra = "budget: {polls: 4/1s, submits: 2/1s}"
    exports = {f"e{i}": DUPES for i in range(1, JOBS + 1)}

    def test_many_jobs_of_one_account_stay_within_its_budget(self):
        for name in self.exports:
            result = self.ws.run("trigger", "--config", self.ws.config, name)
            self.assertEqual(result.returncode, 0, result.stderr)
        self.start()
        seen_waiting = set()
        most_waiting = {"submit": 0, "poll": 0}
        most_jobs_waiting = 0
        deadline = time.monotonic() + 60
        while len(self.ws.rows("state IN ('succeeded', 'failed', 'expired')")) < self.JOBS:
            self.assertLess(time.monotonic(), deadline, "timed out waiting for the jobs to finish")
            for job in json.loads(self.get("/jobs"))["running"]:
                seen_waiting.add(job["waiting_for"])
            samples = self.scrape()
            for call in most_waiting:
                most_waiting[call] = max(most_waiting[call], samples[self.call("apsis_budget_waiting", call)])
            most_jobs_waiting = max(most_jobs_waiting, samples[("apsis_jobs_waiting", (("for", "budget"),))])
            time.sleep(0.02)
        samples = self.scrape()
        self.assertEqual(self.daemon.stop(), 0)

        jobs = self.ws.rows()
        self.assertEqual([j["state"] for j in jobs], ["succeeded"] * self.JOBS, [j["error"] for j in jobs])
        self.assertEqual(sum(j["resubmits"] for j in jobs), 0)
        account = self.fake.account()
        self.assertEqual(account["requests"]["submits"], self.JOBS)
        self.assertGreaterEqual(account["requests"]["polls"], 2 * self.JOBS)
        self.assertLessEqual(account["max_in_window"]["polls"], 4, account)
        self.assertLessEqual(account["max_in_window"]["submits"], 2, account)
        self.assertEqual(sum(account["throttled"].values()), 0, account)
        # The budget, not APSIS, held the jobs back (both submits and polls queued), and /jobs said so.
        self.assertGreaterEqual(most_waiting["submit"], 1, most_waiting)
        self.assertGreaterEqual(most_waiting["poll"], 1, most_waiting)
        self.assertGreaterEqual(most_jobs_waiting, 1)
        self.assertIn("budget", seen_waiting)
        self.assertIn("apsis", seen_waiting)
        for call in ("submit", "event_submit", "poll", "token"):
            self.assertEqual(samples[self.call("apsis_budget_pace_ratio", call)], 1, call)
            self.assertEqual(samples[self.call("apsis_budget_throttled_total", call)], 0, call)
            self.assertEqual(samples[self.call("apsis_budget_waiting", call)], 0, call)
            self.assertEqual(samples[self.call("apsis_budget_in_flight", call)], 0, call)
        self.assertEqual(samples[("apsis_jobs_waiting", (("for", "budget"),))], 0)
        self.assertEqual(samples[("apsis_jobs_waiting", (("for", "apsis"),))], 0)


class EventBudgetTest(AdminTest):
    """Event exports fit both the event-export window and the submit window."""
    fake_args = ("--ready-after", "300ms", "--size", "2000", "--limit", "event_submits=1/1s",
                 "--limit", "submits=2/1s")
    account_extra = "budget: {event_submits: 1/1s, submits: 2/1s}"
    exports = {**{f"ev{i}": "kind: events\n    " + EVENT_REQUEST for i in range(1, 4)}, "dupes": DUPES}

    def test_event_exports_queue_for_their_own_window(self):
        for name in self.exports:
            result = self.ws.run("trigger", "--config", self.ws.config, name)
            self.assertEqual(result.returncode, 0, result.stderr)
        self.start()
        wait_for(lambda: len(self.ws.rows("state IN ('succeeded', 'failed', 'expired')")) == 4,
                 what="the four jobs to finish")
        samples = self.scrape()
        self.assertEqual(self.daemon.stop(), 0)
        self.assertEqual([j["state"] for j in self.ws.rows()], ["succeeded"] * 4)
        account = self.fake.account()
        self.assertEqual(account["requests"]["event_submits"], 3)
        self.assertEqual(account["requests"]["submits"], 4, "event exports count as submits too")
        self.assertLessEqual(account["max_in_window"]["event_submits"], 1, account)
        self.assertLessEqual(account["max_in_window"]["submits"], 2, account)
        self.assertEqual(sum(account["throttled"].values()), 0, account)
        self.assertEqual(samples[self.call("apsis_budget_throttled_total", "event_submit")], 0)


class BudgetThrottleTest(AdminTest):
    def test_429s_on_polls_slow_the_account_and_the_job_still_succeeds(self):
        self.start()
        samples = self.scrape()
        self.assertEqual(samples[self.call("apsis_budget_pace_ratio", "poll")], 1)
        self.assertEqual(samples[self.call("apsis_budget_throttled_total", "poll")], 0)
        self.fake.faults(poll_429=2)  # two in one window: the pace is halved once
        result = self.ws.run("trigger", "--config", self.ws.config, "dupes")
        self.assertEqual(result.returncode, 0, result.stderr)
        wait_for(lambda: self.ws.rows("state IN ('succeeded', 'failed', 'expired')"), what="the job to finish")
        samples = self.scrape()
        self.assertEqual(self.daemon.stop(), 0)
        job = self.only_job()
        self.assert_succeeded(job)
        self.assertEqual(job["resubmits"], 0)
        self.assertEqual([s for _, s in poll_requests(self.fake.stats())][:2], [429, 429])
        self.assertLess(samples[self.call("apsis_budget_pace_ratio", "poll")], 1)
        self.assertEqual(samples[self.call("apsis_budget_pace_ratio", "poll")], 0.5,
                         "a 429 halves the pace, at most once per window")
        self.assertGreaterEqual(samples[self.call("apsis_budget_throttled_total", "poll")], 1)
        for call in ("submit", "event_submit", "token"):
            self.assertEqual(samples[self.call("apsis_budget_pace_ratio", call)], 1, call)
            self.assertEqual(samples[self.call("apsis_budget_throttled_total", call)], 0, call)


class KindsTest(ContractTest):
    fake_args = ("--ready-after", "300ms", "--size", "5000", "--limit", "event_submits=1/1s")
    # The default event budget (1/2m) would hold a resubmitted event export for two minutes.
    account_extra = "budget: {submits: 1/1s, event_submits: 1/1s}"
    exports = {
        "consents": "kind: consents\n    request:\n      section_discriminator: usercreated.sections.webshop-1\n"
                    "      consent_list_discriminator: usercreated.targets.news-1\n"
                    "      topic_discriminators: [usercreated.topics.offers-1]\n"
                    "      channel_discriminator: com.apsis1.channels.email",
        "segments": "kind: segments\n    request: {segment_discriminator: usercreated.segments.vip-1}",
        "events": "kind: events\n    " + EVENT_REQUEST,
        "events-gz": "kind: events\n    compression: gzip\n    " + EVENT_REQUEST,
        "daily": "kind: events\n    window: 1d\n    " + EVENT_REQUEST + "\n      events: [usercreated.events.web-visit-1]",
        "pinned": "kind: events\n    window: 1d\n    " + EVENT_REQUEST + "\n      start_at: '2026-01-01T00:00:00.000Z'",
    }

    def exported(self, job):
        return self.fake.stats()["exports"][export_id(job["poll_url"])]

    def submits(self):
        """The export requests the fake saw, (path, 2xx or not)."""
        return [(r["target"], 200 <= r["status"] < 300) for r in self.fake.stats()["requests"]
                if r["method"] == "POST" and r["target"] != "/oauth/token"]

    def test_consents(self):
        _, job = self.once("consents")
        self.assert_succeeded(job)
        self.assertEqual(self.exported(job)["kind"], "consents")
        self.assertEqual(self.exported(job)["body"]["section_discriminator"], "usercreated.sections.webshop-1")
        self.assertEqual(self.submits(), [("/audience/profiles/reports/consents", True)])
        self.assertTrue(job["output_path"].endswith(".csv"))

    def test_segments(self):
        _, job = self.once("segments")
        self.assert_succeeded(job)
        self.assertEqual(self.exported(job)["kind"], "segments")
        self.assertEqual(self.exported(job)["body"], {"segment_discriminator": "usercreated.segments.vip-1"})
        self.assertEqual(self.submits(), [("/audience/profiles/reports/segments", True)])
        self.assertTrue(job["output_path"].endswith(".csv"))

    def test_events_are_json(self):
        _, job = self.once("events")
        self.assert_succeeded(job)
        exported = self.exported(job)
        self.assertEqual(exported["kind"], "events")
        self.assertNotIn("start_at", exported["body"], "no window: the body is sent as written")
        self.assertEqual(self.submits(), [("/audience/profiles/exports", True)])
        self.assertTrue(job["output_path"].endswith(".json"), job["output_path"])
        with open(job["output_path"]) as f:
            json.load(f)
        self.assertIsNone(job["window_start"])

    def test_gzipped_events_are_json_gz(self):
        _, job = self.once("events-gz")
        self.assert_succeeded(job)
        self.assertTrue(job["output_path"].endswith(".json.gz"), job["output_path"])
        with gzip.open(job["output_path"], "rt") as f:
            json.load(f)

    def assert_window(self, job, body):
        slot = parse_iso(job["scheduled_for"])
        self.assertEqual(job["window_start"], iso(slot - datetime.timedelta(days=1)))
        self.assertEqual(job["window_end"], job["scheduled_for"])
        self.assertEqual(body["start_at"], job["window_start"])
        self.assertEqual(body["end_at"], job["window_end"])
        self.assertRegex(body["start_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_an_event_window_sets_start_and_end_from_the_slot(self):
        _, job = self.once("daily")
        self.assert_succeeded(job)
        self.assert_window(job, self.exported(job)["body"])

    def test_a_resubmitted_event_export_asks_for_the_same_window(self):
        self.fake.faults(fail_exports=1)
        _, job = self.once("daily")
        self.assert_succeeded(job)
        self.assertEqual(job["resubmits"], 1)
        stats = self.fake.stats()
        self.assertEqual(stats["submissions"], 2)
        first = stats["exports"][export_id(job["previous_poll_url"])]
        second = stats["exports"][export_id(job["poll_url"])]
        self.assertEqual(first["state"], "failed")
        self.assert_window(job, first["body"])
        self.assert_window(job, second["body"])
        self.assertEqual(first["body"], second["body"])


    def test_a_start_at_in_the_request_wins_over_the_window(self):
        _, job = self.once("pinned")
        self.assert_succeeded(job)
        body = self.exported(job)["body"]
        self.assertEqual(body["start_at"], "2026-01-01T00:00:00.000Z")
        self.assertEqual(body["end_at"], job["scheduled_for"])


class CheckTest(unittest.TestCase):
    """Configuration errors of issue 11, reported by `check` with exit 2 at file:line:col."""

    def setUp(self):
        self.ws = None

    def tearDown(self):
        if self.ws:
            self.ws.cleanup()

    def workspace(self, exports, account_extra=""):
        self.ws = Workspace(types.SimpleNamespace(base_url="http://127.0.0.1:9"), exports=exports,
                            account_extra=account_extra)
        with open(self.ws.config) as f:
            self.lines = f.read().splitlines()

    def position(self, text):
        """1-based line and column of the first line containing `text`."""
        for number, line in enumerate(self.lines, 1):
            if text in line:
                return number, line.index(text) + 1
        self.fail(f"{text!r} not in the config")

    def check(self):
        return self.ws.run("check", "--config", self.ws.config, timeout=30)

    def test_a_request_over_100_000_bytes_is_reported_at_its_request_key(self):
        topics = ", ".join(f"usercreated.topics.topic-{i:05d}-abcdefghij" for i in range(3000))
        self.workspace({"small": DUPES, "big": f"kind: duplicates\n    request: {{topic_discriminators: [{topics}]}}"})
        result = self.check()
        self.assertEqual(result.returncode, 2, result.stderr)
        line = next(n for n, l in enumerate(self.lines, 1) if "topic-00000" in l)
        column = self.lines[line - 1].index("request:") + 1
        self.assertRegex(result.stderr, rf"exportd\.yaml:{line}:{column}: exports\.big\.request: the request body is "
                                        r"1\d\d[ ,]?\d\d\d bytes as JSON; APSIS One accepts at most 100 000")
        self.assertNotIn("exports.small", result.stderr)

    def test_100_000_bytes_is_the_last_size_accepted(self):
        # {"zzzzzzzzzz":"a…a"}: 17 bytes around the string.
        for size, code in ((100000, 0), (100001, 2)):
            with self.subTest(size=size):
                self.workspace({"edge": f"kind: duplicates\n    request: {{zzzzzzzzzz: {'a' * (size - 17)}}}"})
                result = self.check()
                self.assertEqual(result.returncode, code, result.stderr)
                if code:
                    line, column = self.position("request:")
                    self.assertIn(f"exportd.yaml:{line}:{column}: exports.edge.request: the request body is 100 001 "
                                  "bytes as JSON", result.stderr)
                self.ws.cleanup()
                self.ws = None

    def test_max_requests_per_second_is_refused_naming_budget(self):
        self.workspace({"dupes": DUPES}, account_extra="max_requests_per_second: 10")
        result = self.check()
        self.assertEqual(result.returncode, 2, result.stderr)
        line, column = self.position("max_requests_per_second")
        self.assertRegex(result.stderr, rf"exportd\.yaml:{line}:{column}: .*max_requests_per_second.*budget")

    def test_events_take_no_csv(self):
        self.workspace({"events": "kind: events\n    format: csv\n    " + EVENT_REQUEST})
        result = self.check()
        self.assertEqual(result.returncode, 2, result.stderr)
        line, column = self.position("csv")
        self.assertRegex(result.stderr, rf"exportd\.yaml:{line}:{column}: exports\.events\.format: kind: events takes "
                                        r"json .*got 'csv'")

    def test_segments_and_events_requests_are_checked(self):
        self.workspace({"both": "kind: segments\n    request: {segment_discriminator: usercreated.segments.a-1, "
                                "segment_definition: 'x'}",
                        "neither": "kind: segments\n    request: {}",
                        "no-columns": "kind: events\n    request: {attributes: [], start_at: '2026-01-01T00:00:00.000Z'}",
                        "no-start": "kind: events\n    " + EVENT_REQUEST + "\n      events: [usercreated.events.v-1]"})
        result = self.check()
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertRegex(result.stderr, r"exportd\.yaml:\d+:\d+: exports\.both\.request\.segment_definition: not allowed "
                                        r"together with segment_discriminator")
        self.assertRegex(result.stderr, r"exportd\.yaml:\d+:\d+: exports\.neither\.request: missing segment_discriminator")
        self.assertRegex(result.stderr, r"exportd\.yaml:\d+:\d+: exports\.no-columns\.request\.attributes: expected at "
                                        r"least one attribute or tag")
        self.assertRegex(result.stderr, r"exportd\.yaml:\d+:\d+: exports\.no-start\.request\.events: start_at is "
                                        r"required with events")

    def test_the_new_keys_pass_check(self):
        self.workspace({"daily": "kind: events\n    window: 1d\n    on_failed_export: fail\n    max_resubmits: 2\n"
                                 "    polling: {failed_export_after_503s: 5}\n    " + EVENT_REQUEST +
                                 "\n      events: [usercreated.events.web-visit-1]",
                        "seg": "kind: segments\n    request: {segment_definition: 'x'}"},
                       account_extra=f"poll_url_field: {V2}\nbudget: {{submits: 1/2s, event_submits: 1/2m, "
                                     "polls: 30/1m, tokens: 5/1m}")
        result = self.check()
        self.assertEqual(result.returncode, 0, result.stderr)


if __name__ == "__main__":
    unittest.main()
