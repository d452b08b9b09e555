"""Logging under systemd and for log shippers: the real daemon sends journal entries with EXPORT=,
JOB_ID=, ACCOUNT=, PRIORITY= and HTTP_STATUS= to a datagram socket of ours when JOURNAL_STREAM names
its stderr; plain lines when JOURNAL_STREAM names something else; JSON lines with --log-format json."""

import json
import os
import socket
import struct
import subprocess
import tempfile
import threading
import unittest

from harness import DAEMON, FakeServer, Workspace, wait_for


def parse_entry(data):
    """journald's reading of a native-protocol datagram: NAME=value, or NAME\\n<le64 size><bytes>\\n."""
    fields = {}
    while data:
        line, _, rest = data.partition(b"\n")
        if b"=" in line:
            name, _, value = line.partition(b"=")
            fields[name.decode()] = value.decode()
            data = rest
        else:
            (size,) = struct.unpack("<Q", rest[:8])
            fields[line.decode()] = rest[8:8 + size].decode()
            assert rest[8 + size:9 + size] == b"\n"
            data = rest[9 + size:]
    return fields


class JournalSocket:
    """A bound AF_UNIX datagram socket standing in for journald, read by a thread as journald would
    (the kernel queues only a few datagrams)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.entries = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            self.entries.append(parse_entry(data))

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


def stream_of(path):
    status = os.stat(path)
    return f"{status.st_dev}:{status.st_ino}"


class LoggingTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, "--ready-after", "300ms")
        self.ws = Workspace(self.fake)
        self.journal = JournalSocket(os.path.join(self.ws.dir, "journal.socket"))
        self.stderr_path = os.path.join(self.ws.dir, "stderr.log")

    def tearDown(self):
        self.journal.close()
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def run_one_job(self, journal_stream_of, *options):
        """`run` with stderr to a file and JOURNAL_STREAM naming `journal_stream_of`; a triggered job
        of `dupes` whose first poll answers 503; returns the job and what went to stderr."""
        self.fake.faults(poll_503=1)
        with open(self.stderr_path, "w") as stderr:
            env = {**os.environ, "JOURNAL_STREAM": stream_of(journal_stream_of(self.stderr_path)),
                   "APSIS_JOURNAL_SOCKET": self.journal.path}
            daemon = subprocess.Popen([DAEMON, "run", "--config", self.ws.config, *options],
                                      stdout=subprocess.DEVNULL, stderr=stderr, env=env)
            try:
                triggered = self.ws.run("trigger", "--config", self.ws.config, "dupes")
                self.assertEqual(triggered.returncode, 0, triggered.stderr)
                job = wait_for(lambda: [j for j in self.ws.jobs() if j["state"] == "succeeded"],
                               what="the job to succeed")[0]
            finally:
                daemon.terminate()
                self.assertEqual(daemon.wait(timeout=15), 0)
        with open(self.stderr_path) as f:
            return job, f.read()

    def test_journal_entries_carry_the_jobs_fields_when_journal_stream_is_stderr(self):
        job, stderr = self.run_one_job(lambda stderr_path: stderr_path)
        entries = self.journal.entries
        self.assertTrue(entries)
        for entry in entries:
            self.assertEqual(entry["SYSLOG_IDENTIFIER"], "apsis-exportd")
            self.assertIn(entry["PRIORITY"], {"3", "4", "5", "6"})
            self.assertTrue(entry["MESSAGE"])
        ours = [e for e in entries if e.get("EXPORT") == "dupes"]
        self.assertTrue(ours, entries)
        job_entries = [e for e in ours if e.get("JOB_ID") == str(job["id"])]
        self.assertTrue(job_entries, ours)
        for entry in job_entries:
            self.assertEqual(entry["ACCOUNT"], "main")
        self.assertTrue(any(e["MESSAGE"].startswith("published ") for e in job_entries), job_entries)
        # The 503 answers to polls: warnings naming the status.
        answered_503 = [e for e in job_entries if e.get("HTTP_STATUS") == "503"]
        self.assertTrue(answered_503, job_entries)
        self.assertTrue(all(e["PRIORITY"] == "4" for e in answered_503), answered_503)
        # Everything went to the journal: stderr has no log line at all.
        self.assertEqual(stderr, "")

    def test_plain_lines_when_journal_stream_names_another_file(self):
        other = os.path.join(self.ws.dir, "inherited-journal-stream")
        open(other, "w").close()
        job, stderr = self.run_one_job(lambda stderr_path: other)
        self.assertEqual(self.journal.entries, [])
        self.assertIn(f"info: export=dupes job={job['id']} published ", stderr)
        self.assertRegex(stderr, rf"warning: export=dupes job={job['id']} .*503.* \[account=main http_status=503\]\n")
        self.assertNotIn("<6>", stderr)

    def test_json_lines_when_asked_for_even_under_the_journal(self):
        job, stderr = self.run_one_job(lambda stderr_path: stderr_path, "--log-format", "json")
        self.assertEqual(self.journal.entries, [])
        lines = [json.loads(line) for line in stderr.splitlines()]
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(line["level"], {"error", "warning", "notice", "info"})
            self.assertIsInstance(line["message"], str)
        job_lines = [l for l in lines if l.get("job_id") == job["id"]]
        self.assertTrue(job_lines, lines)
        for line in job_lines:
            self.assertEqual((line["export"], line["account"]), ("dupes", "main"))
        self.assertTrue(any(l.get("http_status") == 503 and l["level"] == "warning" for l in job_lines), job_lines)

    def test_once_in_json_says_everything_in_json_lines_even_its_outcome(self):
        self.fake.faults(submit_400=1)
        result = self.ws.run("once", "--config", self.ws.config, "dupes", "--log-format", "json",
                             env={"JOURNAL_STREAM": "", "APSIS_JOURNAL_SOCKET": self.journal.path})
        self.assertEqual(result.returncode, 1, result.stderr)
        lines = [json.loads(line) for line in result.stderr.splitlines()]
        job_id = lines[-1]["job_id"]
        # The job's end, with APSIS One's answer, and then `once`'s own outcome line.
        refused = [l for l in lines if l.get("http_status") == 400]
        self.assertTrue(refused, lines)
        self.assertEqual((refused[0]["level"], refused[0]["export"], refused[0]["job_id"], refused[0]["account"]),
                         ("error", "dupes", job_id, "main"))
        self.assertEqual(lines[-1]["level"], "error")
        self.assertRegex(lines[-1]["message"], rf"^job {job_id} failed: ")
        self.assertEqual(self.journal.entries, [])

    def test_an_unknown_log_format_is_a_usage_error(self):
        result = self.ws.run("run", "--config", self.ws.config, "--log-format", "xml")
        self.assertEqual(result.returncode, 64)
        self.assertIn("--log-format must be text or json", result.stderr)


if __name__ == "__main__":
    unittest.main()
