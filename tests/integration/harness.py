"""Shared pieces for integration tests: the fake APSIS One server and a daemon workspace.

Binaries come from the environment (set by ctest): APSIS_EXPORTD and APSIS_FAKE.
"""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DAEMON = os.environ.get("APSIS_EXPORTD") or os.path.join(HERE, "../../build/apsis-exportd")
FAKE = os.environ.get("APSIS_FAKE") or os.path.join(HERE, "../../build/tests/fake/apsis-fake")
CLIENT_SECRET = "demo-secret"


class FakeServer:
    """apsis-fake on 127.0.0.1 with a free port, controlled through its /_fake endpoints."""

    def __init__(self, workdir, *args):
        port_file = os.path.join(workdir, "fake.port")
        self.proc = subprocess.Popen(
            [FAKE, "--port", "0", "--port-file", port_file, "--quiet", *args],
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("apsis-fake did not start")
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read())
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read() or b"null")

    def faults(self, **settings):
        return self._call("POST", "/_fake/faults", settings)

    def stats(self):
        return self._call("GET", "/_fake/stats")

    def account(self, client_id="demo-client"):
        """One account's stats: requests, throttled and max_in_window per limit kind, and its limits."""
        return self.stats()["accounts"][client_id]

    def limits(self, value):
        """"off", "documented", or {"polls": "5/2s", ...} to change only those kinds."""
        return self._call("POST", "/_fake/faults", {"limits": value})["limits"]

    def reset(self):
        """Forgets tokens, exports, statistics and armed faults; settings go back to the command line's."""
        return self._call("POST", "/_fake/reset", {})

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Workspace:
    """A temporary directory with a config file, a state database and an output directory."""

    def __init__(self, fake, polling="initial_delay: 100ms\n  multiplier: 2\n  max_delay: 1s",
                 retry="initial_delay: 50ms\n  multiplier: 2\n  max_delay: 500ms\n  max_attempts: 5",
                 exports=None, account_extra="", top_extra=""):
        """`account_extra`: YAML lines added under accounts.main (written unindented, e.g.
        "poll_url_field: file_download_url_v2\nbudget: {polls: 4/2s}"); `top_extra`: YAML lines
        added at the top level of the file."""
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.config = os.path.join(self.dir, "exportd.yaml")
        self.output_dir = os.path.join(self.dir, "exports")
        self.db = os.path.join(self.dir, "state", "jobs.sqlite3")
        secret_file = os.path.join(self.dir, "secret")
        with open(secret_file, "w") as f:
            f.write(CLIENT_SECRET + "\n")
        exports = exports or {"dupes": "kind: duplicates\n    request: {segments: {segment_discriminators: {a: usercreated.segments.a-1}, filter: a}}"}
        export_text = "".join(
            f"  {name}:\n    account: main\n    {body}\n" for name, body in exports.items())
        text = (
            "state_db: ./state/jobs.sqlite3\n"
            "output_dir: ./exports\n"
            "accounts:\n"
            "  main:\n"
            f"    base_url: {fake.base_url}\n"
            "    client_id: demo-client\n"
            "    client_secret_file: ./secret\n"
            + "".join(f"    {line}\n" for line in account_extra.splitlines() if line.strip()) +
            f"polling:\n  {polling}\n"
            f"retry:\n  {retry}\n"
            "exports:\n" + export_text
            + "".join(f"{line}\n" for line in top_extra.splitlines()))
        with open(self.config, "w") as f:
            f.write(text)

    def run(self, *args, timeout=120, env=None):
        proc = subprocess.Popen([DAEMON, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, **(env or {})})
        out, err = proc.communicate(timeout=timeout)
        return Result(proc.returncode, out, err)

    def once(self, export="dupes", **kw):
        return self.run("once", "--config", self.config, export, **kw)

    def jobs(self, *args):
        result = self.run("jobs", "--config", self.config, "--json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def rows(self, where="1"):
        """The job table's rows matching `where` (SQL), oldest first, read-only. None yet while the
        daemon has not created the file or its schema (created in one transaction, just after the
        file, and rolled back when that transaction fails); waits out a writer's lock."""
        if not os.path.exists(self.db):
            return []
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as db:
            db.row_factory = sqlite3.Row
            if not db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'jobs'").fetchone():
                return []
            return [dict(r) for r in db.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY id")]

    def files(self, manifests=False):
        """Every file under the output directory, relative paths; without the <file>.json manifest
        beside each published file unless `manifests`."""
        found = []
        for root, _, names in os.walk(self.output_dir):
            for name in names:
                found.append(os.path.relpath(os.path.join(root, name), self.output_dir))
        if not manifests:
            found = [f for f in found if not (f.endswith(".json") and f[:-len(".json")] in found)]
        return sorted(found)

    def cleanup(self):
        self.tmp.cleanup()


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_measured(argv, timeout=300):
    """Runs argv and returns (returncode, stdout, stderr, max RSS KiB) using wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.send_signal(signal.SIGKILL)
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read().decode(), err.read().decode(), usage.ru_maxrss


def wait_for(condition, timeout=30, interval=0.05, what="condition"):
    """Polls `condition` until it returns something truthy; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RunningDaemon:
    """`apsis-exportd run` in the background, its stderr collected in a file."""

    def __init__(self, workspace, env=None):
        self.log_path = os.path.join(workspace.dir, f"daemon-{time.monotonic_ns()}.log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([DAEMON, "run", "--config", workspace.config],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def send(self, number):
        self.proc.send_signal(number)

    def stop(self, number=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(number)
        code = self.proc.wait(timeout=timeout)
        self._log.close()
        return code

    def alive(self):
        return self.proc.poll() is None
