"""What operators reach for, end to end against apsis-fake: the admin endpoint (/metrics parsed as
Prometheus text, /healthz, /jobs), manifests, keep: retention, the on_success hook, history_days
pruning and the progress line of `once` on a terminal."""

import datetime
import json
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import DAEMON, FakeServer, RunningDaemon, Workspace, sha256_file, wait_for

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # CI installs it: a missing parser must fail the test, not skip it
    text_string_to_metric_families = None


def execute(ws, sql, *args):
    db = sqlite3.connect(ws.db)
    with db:
        db.execute(sql, args)
    db.close()


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class OperatorTest(unittest.TestCase):
    fake_args = ("--ready-after", "200ms", "--size", "5000")
    exports = None
    top = ""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, *self.fake_args)
        self.ws = Workspace(self.fake, exports=self.exports)
        if self.top:
            with open(self.ws.config, "a") as f:
                f.write(self.top)
        self.daemon = None

    def tearDown(self):
        if self.daemon and self.daemon.alive():
            self.daemon.stop()
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def once(self, export="dupes"):
        result = self.ws.once(export)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result


class AdminEndpointTest(OperatorTest):
    fake_args = ("--ready-after", "600ms", "--size", "5000")  # at least one 404 before the file
    exports = {
        "dupes": "kind: duplicates",
        "nightly": "kind: consents\n    schedule: \"0 3 * * *\"\n    timezone: Europe/Stockholm",
    }
    top = "admin_listen: 127.0.0.1:0\n"

    def start(self):
        self.daemon = RunningDaemon(self.ws)
        match = wait_for(lambda: re.search(r"admin endpoint on http://127\.0\.0\.1:(\d+)", self.daemon.log()),
                         what="the admin endpoint's address in the log")
        wait_for(lambda: "started:" in self.daemon.log(), what="the daemon to start")
        self.base = f"http://127.0.0.1:{match.group(1)}"

    def get(self, path):
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as res:
                return res.status, res.headers.get("Content-Type"), res.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read().decode()

    def scrape(self):
        status, content_type, text = self.get("/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")
        self.assertIsNotNone(text_string_to_metric_families,
                             "python3-prometheus-client (Debian package) is needed to parse /metrics")
        samples = {}
        families = {}
        for family in text_string_to_metric_families(text):  # raises on malformed exposition text
            families[family.name] = family.type
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return families, samples

    def test_metrics_follow_a_job_from_submit_to_publish(self):
        self.start()
        families, samples = self.scrape()
        self.assertEqual(families["apsis_submissions"], "counter")
        self.assertEqual(samples[("apsis_submissions_total", ())], 0)
        next_run = samples[("apsis_export_next_run_timestamp_seconds", (("export", "nightly"),))]
        self.assertGreater(next_run, time.time())
        self.assertLess(next_run, time.time() + 25 * 3600)
        self.assertEqual(datetime.datetime.fromtimestamp(next_run, datetime.timezone.utc).minute, 0)

        result = self.ws.run("trigger", "--config", self.ws.config, "dupes")
        self.assertEqual(result.returncode, 0, result.stderr)
        wait_for(lambda: self.ws.rows("state = 'succeeded'"), what="the triggered job to succeed")
        job = self.ws.rows()[0]
        families, samples = self.scrape()
        self.assertEqual(samples[("apsis_jobs", (("export", "dupes"), ("state", "succeeded")))], 1)
        self.assertEqual(samples[("apsis_submissions_total", ())], 1)
        self.assertEqual(samples[("apsis_polls_total", ())], job["polls"])
        self.assertGreaterEqual(samples[("apsis_http_responses_total", (("code", "404"), ("request", "poll")))], 1)
        self.assertEqual(samples[("apsis_http_responses_total", (("code", "200"), ("request", "poll")))], 1)
        self.assertEqual(samples[("apsis_http_responses_total", (("code", "200"), ("request", "token")))], 1)
        self.assertEqual(samples[("apsis_token_renewals_total", ())], 1)
        self.assertEqual(samples[("apsis_downloaded_bytes_total", ())], job["bytes"])
        self.assertEqual(samples[("apsis_downloads_total", ())], 1)
        last = samples[("apsis_export_last_success_timestamp_seconds", (("export", "dupes"),))]
        self.assertAlmostEqual(last, time.time(), delta=120)
        self.assertEqual(families["apsis_poll_timer_lateness_seconds"], "histogram")
        # A poll whose jittered delay had already passed when it was scheduled never waits on its timer.
        lateness_count = samples[("apsis_poll_timer_lateness_seconds_count", ())]
        self.assertGreaterEqual(lateness_count, 1)
        self.assertLessEqual(lateness_count, job["polls"])
        self.assertEqual(samples[("apsis_jobs_running", (("state", "submitted"),))], 0)

    def test_healthz_and_jobs(self):
        self.start()
        status, content_type, body = self.get("/healthz")
        self.assertEqual((status, content_type), (200, "application/json"))
        health = json.loads(body)
        self.assertEqual((health["status"], health["database"], health["exports"]), ("ok", "ok", 2))

        self.once()
        status, _, body = self.get("/jobs")
        self.assertEqual(status, 200)
        jobs = json.loads(body)
        self.assertEqual(jobs["running_total"], 0)
        self.assertEqual([(j["export"], j["state"]) for j in jobs["recent"]], [("dupes", "succeeded")])
        self.assertEqual(jobs["recent"][0]["bytes"], self.ws.rows()[0]["bytes"])

        status, _, body = self.get("/nope")
        self.assertEqual(status, 404)
        self.assertIn("/metrics", body)

    def test_a_taken_port_stops_the_start_and_stop_releases_it(self):
        self.start()
        port = int(self.base.rsplit(":", 1)[1])
        other = Workspace(self.fake)
        try:
            with open(other.config, "a") as f:
                f.write(f"admin_listen: 127.0.0.1:{port}\n")
            result = other.run("run", "--config", other.config, timeout=30)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn(f"127.0.0.1:{port}", result.stderr)
            self.assertEqual(other.jobs(), [])  # refused before any job could start
            self.assertEqual(self.daemon.stop(), 0)
            second = RunningDaemon(other)
            try:
                wait_for(lambda: f"admin endpoint on http://127.0.0.1:{port}" in second.log(),
                         what="the port to be free again after the first daemon stopped")
            finally:
                self.assertEqual(second.stop(), 0)
        finally:
            other.cleanup()

    def test_a_remote_bind_is_refused_unless_allowed(self):
        with open(self.ws.config, "a") as f:
            f.write("admin_listen: 0.0.0.0:9464\n")  # a second key: replace the first
        with open(self.ws.config) as f:
            text = f.read().replace("admin_listen: 127.0.0.1:0\n", "", 1)
        with open(self.ws.config, "w") as f:
            f.write(text)
        result = self.ws.run("check", "--config", self.ws.config)
        self.assertEqual(result.returncode, 2)
        self.assertRegex(result.stderr, r"exportd\.yaml:\d+:\d+: admin_listen: 0\.0\.0\.0:9464 is reachable from "
                                        r"other machines")
        with open(self.ws.config, "a") as f:
            f.write("admin_allow_remote: true\n")
        result = self.ws.run("check", "--config", self.ws.config)
        self.assertEqual(result.returncode, 2)
        self.assertRegex(result.stderr, r"exportd\.yaml:\d+:\d+: admin_allow_remote: other machines may read the "
                                        r"admin endpoint only with a password")
        with open(self.ws.config, "a") as f:  # "s3cret" at bcrypt cost 4
            f.write("admin_web: {basic_auth_users: "
                    "{alice: $2b$04$ZX5JRp1RlXrPcwtVmf2ZW.YnPMvwnarFtlXJROYJxhBRqPirxfv9y}}\n")
        result = self.ws.run("check", "--config", self.ws.config)
        self.assertEqual(result.returncode, 0, result.stderr)


class ManifestTest(OperatorTest):
    exports = {"dupes": "kind: duplicates\n    compression: gzip", "bare": "kind: duplicates\n    manifest: false"}

    def test_a_manifest_describes_the_published_file(self):
        path = self.once().stdout.strip()
        job = self.ws.rows()[0]
        self.assertEqual(job["manifest_path"], path + ".json")
        with open(path + ".json") as f:
            manifest = json.load(f)
        self.assertEqual(manifest["export"], "dupes")
        self.assertEqual(manifest["job_id"], job["id"])
        self.assertEqual(manifest["scheduled_for"], job["scheduled_for"])
        self.assertEqual(manifest["path"], path)
        self.assertEqual(manifest["file"], os.path.basename(path))
        self.assertEqual(manifest["bytes"], os.path.getsize(path))
        self.assertEqual(manifest["sha256"], sha256_file(path))
        self.assertEqual(manifest["content_encoding"], "gzip")
        self.assertEqual((manifest["format"], manifest["compression"]), ("csv", "gzip"))
        self.assertTrue(manifest["content_type"].startswith("text/csv"))
        self.assertGreaterEqual(manifest["total_ms"], 200)  # the fake's --ready-after
        self.assertGreaterEqual(manifest["polls"], 1)
        self.assertEqual(self.ws.files(manifests=True), sorted([os.path.relpath(p, self.ws.output_dir)
                                                          for p in (path, path + ".json")]))

    def test_manifest_false_writes_none(self):
        path = self.once("bare").stdout.strip()
        self.assertTrue(os.path.isfile(path))
        self.assertFalse(os.path.exists(path + ".json"))
        self.assertIsNone(self.ws.rows()[0]["manifest_path"])


class RetentionTest(OperatorTest):
    # {job} in the name: two runs within one second would otherwise write the same file.
    exports = {"dupes": "kind: duplicates\n    keep: {count: 2}\n    output: \"{export}/{job}.{ext}\"",
               "aged": "kind: duplicates\n    keep: {days: 3}\n    output: \"{export}/{job}.{ext}\""}

    def test_keep_count_deletes_the_oldest_files_and_their_manifests_only(self):
        stranger = os.path.join(self.ws.output_dir, "dupes", "notes.txt")
        paths = []
        for _ in range(4):
            paths.append(self.once().stdout.strip())
            if not os.path.exists(stranger):
                with open(stranger, "w") as f:
                    f.write("not ours")
        for old in paths[:2]:
            self.assertFalse(os.path.exists(old), old)
            self.assertFalse(os.path.exists(old + ".json"), old)
        for new in paths[2:]:
            self.assertTrue(os.path.isfile(new) and os.path.isfile(new + ".json"), new)
        self.assertTrue(os.path.isfile(stranger))
        removed = [r["file_removed_at"] is not None for r in self.ws.rows()]
        self.assertEqual(removed, [True, True, False, False])
        self.assertTrue(all(r["state"] == "succeeded" for r in self.ws.rows()))

    def test_keep_days_counts_from_each_files_slot(self):
        first = self.once("aged").stdout.strip()
        second = self.once("aged").stdout.strip()
        old = iso(datetime.datetime.utcnow() - datetime.timedelta(days=5))
        execute(self.ws, "UPDATE jobs SET scheduled_for = ? WHERE output_path = ?", old, first)
        third = self.once("aged").stdout.strip()
        self.assertFalse(os.path.exists(first))
        self.assertTrue(os.path.isfile(second) and os.path.isfile(third))


class HookTest(OperatorTest):
    exports = {
        "dupes": "kind: duplicates\n"
                 "    on_success: [/bin/sh, -c, 'printf \"%s|%s|%s|%s\" \"$APSIS_FILE\" \"$APSIS_SHA256\" "
                 "\"$APSIS_EXPORT\" \"$1\" > \"$APSIS_OUTPUT_DIR/../hook.out\"', hook, '$HOME; rm -rf /']",
        "broken": "kind: duplicates\n    on_success: [/bin/sh, -c, 'echo the loader refused the file >&2; exit 3']",
        "slow": "kind: duplicates\n    on_success: [/bin/sleep, '37.5']\n    on_success_timeout: 500ms",
        "missing": "kind: duplicates\n    on_success: [/no/such/loader]",
    }

    def test_the_hook_gets_the_file_and_its_metadata_without_a_shell(self):
        path = self.once().stdout.strip()
        with open(os.path.join(self.ws.dir, "hook.out")) as f:
            file, sha, export, arg = f.read().split("|")
        self.assertEqual((file, sha, export), (path, sha256_file(path), "dupes"))
        self.assertEqual(arg, "$HOME; rm -rf /")  # passed as one argument, never interpreted
        job = self.ws.rows()[0]
        self.assertEqual(job["state"], "succeeded")
        self.assertRegex(job["hook_result"], r"^exit 0 after")

    def test_a_failing_hook_is_recorded_on_the_job_which_stays_succeeded(self):
        result = self.once("broken")
        job = self.ws.rows()[0]
        self.assertEqual(job["state"], "succeeded")
        self.assertTrue(os.path.isfile(job["output_path"]))
        self.assertIn("exit 3", job["hook_result"])
        self.assertIn("the loader refused the file", job["hook_result"])
        self.assertIn("on_success: exit 3", result.stderr)

    def test_a_hook_past_its_timeout_is_killed(self):
        start = time.monotonic()
        self.once("slow")
        self.assertLess(time.monotonic() - start, 30)
        job = self.ws.rows()[0]
        self.assertIn("timeout", job["hook_result"])
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        self.assertNotIn("sleep 37.5", ps)

    def test_a_hook_that_cannot_start_says_why(self):
        self.once("missing")
        job = self.ws.rows()[0]
        self.assertEqual(job["state"], "succeeded")
        self.assertIn("/no/such/loader", job["hook_result"])
        self.assertIn("No such file or directory", job["hook_result"])


class HistoryTest(OperatorTest):
    exports = {"dupes": "kind: duplicates", "other": "kind: duplicates"}
    top = "history_days: 2\n"

    def test_old_finished_rows_are_pruned_at_start_keeping_each_exports_newest(self):
        for export in ("dupes", "dupes", "dupes", "other"):
            self.once(export)
        old = iso(datetime.datetime.utcnow() - datetime.timedelta(days=3))
        execute(self.ws, "UPDATE jobs SET finished_at = ? WHERE id IN (1, 2, 4)", old)
        execute(self.ws, "INSERT INTO jobs (export, scheduled_for, state, definition, created_at) "
                         "VALUES ('dupes', '2020-01-01T00:00:00.000Z', 'pending', '{}', ?)", old)
        self.daemon = RunningDaemon(self.ws)
        wait_for(lambda: "history_days: deleted 2 job row(s)" in self.daemon.log(), what="the pruning log line")
        self.daemon.stop()
        # 1 and 2: old and not their export's newest. 3: recent. 4: old but other's only row.
        # 5: unfinished, never pruned (it failed to resume: its definition is empty, which is fine here).
        self.assertEqual([r["id"] for r in self.ws.rows()], [3, 4, 5])


class ProgressTest(OperatorTest):
    fake_args = ("--ready-after", "300ms", "--size", "200000")

    def test_once_on_a_terminal_shows_progress_and_elsewhere_does_not(self):
        self.fake.faults(download_slow=1)
        controller, terminal = pty.openpty()
        proc = subprocess.Popen([DAEMON, "once", "--config", self.ws.config, "dupes"], stdout=subprocess.PIPE,
                                stderr=terminal, env={**os.environ, "TERM": "xterm"})
        os.close(terminal)
        seen = b""
        while True:
            ready, _, _ = select.select([controller], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        out, _ = proc.communicate(timeout=60)
        os.close(controller)
        self.assertEqual(proc.returncode, 0, seen)
        text = seen.decode(errors="replace")
        self.assertIn("\r\x1b[K", text)
        self.assertRegex(text, r"job 1 · waiting for the file · \d+ polls?")
        self.assertRegex(text, r"job 1 · downloading · [\d.]+ (B|KiB|MiB) · [\d.]+ (B|KiB|MiB)/s")
        self.assertTrue(text.endswith("\r\x1b[K") or "\r\x1b[K" in text.splitlines()[-1] or text.endswith("\n"))
        self.assertTrue(out.decode().strip().endswith(".csv"))

        plain = self.ws.once()
        self.assertEqual(plain.returncode, 0)
        self.assertNotIn("\x1b[K", plain.stderr)
        self.assertNotIn("downloading ·", plain.stderr)


if __name__ == "__main__":
    unittest.main()
