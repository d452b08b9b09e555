"""Shared pieces of the benchmarks: the fake server, daemon configs, process measurements."""

import json
import os
import re
import resource
import signal
import subprocess
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has python3-aiohttp for the baseline


def binaries(build):
    return os.path.join(build, "apsis-exportd"), os.path.join(build, "tests/fake/apsis-fake")


def workdir(prefix):
    return tempfile.mkdtemp(prefix=f"apsis-bench-{prefix}-")


class Fake:
    """apsis-fake on 127.0.0.1, on a free port."""

    def __init__(self, build, work, *args, limits=False):
        """limits=False turns the per-account limits off (the benchmarks measure the daemon, not the
        budget); True keeps APSIS One's documented ones, or whatever --limit in args says."""
        port_file = os.path.join(work, "fake.port")
        self.proc = subprocess.Popen([binaries(build)[1], "--port", "0", "--port-file", port_file, "--quiet",
                                      *([] if limits else ["--no-limits"]), *args],
                                     stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if time.monotonic() > deadline:
                raise RuntimeError("apsis-fake did not start")
            time.sleep(0.02)
        self.port = int(open(port_file).read())
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, method, path, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        with urllib.request.urlopen(request) as response:
            return json.load(response)

    def stats(self):
        return self.call("GET", "/_fake/stats")

    def limits(self, value):
        """"documented", "off", or {"polls": "5/2s", ...}: the per-account limits the fake enforces."""
        return self.call("POST", "/_fake/faults", {"limits": value})

    def token(self):
        answer = self.call("POST", "/oauth/token", {"grant_type": "client_credentials",
                                                    "client_id": "demo-client", "client_secret": "demo-secret"})
        return answer["access_token"]

    def submit(self, token):
        answer = self.call("POST", "/audience/profiles/reports/duplicates", {},
                           {"Authorization": f"Bearer {token}"})
        return answer["file_download_url"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def write_config(work, port, polling, extra_export="", max_connections=64, max_downloads=64):
    path = os.path.join(work, "exportd.yaml")
    initial, multiplier, max_delay = polling.split(",")
    with open(path, "w") as f:
        f.write(f"""state_db: ./state/jobs.sqlite3
output_dir: ./exports
max_concurrent_downloads: {max_downloads}
accounts:
  main:
    base_url: http://127.0.0.1:{port}
    client_id: demo-client
    client_secret: demo-secret
    # The fake runs without limits here: these benchmarks measure the daemon, not the budget.
    budget: {{submits: 1000000/1s, event_submits: 1000000/1s, polls: 1000000/1s, tokens: 1000/1s}}
    max_connections: {max_connections}
polling: {{initial_delay: {initial}, multiplier: {multiplier}, max_delay: {max_delay}}}
exports:
  bulk: {{account: main, kind: duplicates, output: "{{export}}/{{job}}.{{ext}}"{extra_export}}}
""")
    return path


def peak_rss(pid):
    """VmHWM of a running process, KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))


def proc_usage(pid):
    """(peak RSS KiB, CPU seconds) of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return peak_rss(pid), cpu


def peak_rss_of_tree(pid):
    """The largest VmHWM among a process and its children (a shell wrapper's command, say)."""
    try:
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
        peak = peak_rss(pid)
    except (OSError, StopIteration):
        return 0
    return max([peak] + [peak_rss_of_tree(int(child)) for child in children])


def run_child(argv, **kw):
    """Runs a command to its end; returns (exit code, wall seconds, peak RSS KiB, CPU seconds).

    Peak RSS is sampled from /proc, not taken from wait4: Linux carries ru_maxrss across exec, so a
    child forked from this (large) Python process would report the parent's size."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen(argv, **kw)
    peak_kib = 0
    while proc.poll() is None:
        peak_kib = max(peak_kib, peak_rss_of_tree(proc.pid))
        time.sleep(0.02)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return proc.returncode, wall, peak_kib, cpu


def stop(proc, timeout=60):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout)


def daemon_self_report(log_text):
    """The figures the daemon logs as it stops."""
    found = re.search(r"poll timers: (\d+) fired; lateness p50 (\d+) ms, p99 (\d+) ms, max (\d+) ms", log_text)
    writes = re.search(r"job rows written: (\d+)", log_text)
    report = {}
    if found:
        report.update(timers=int(found[1]), lateness_p50_ms=int(found[2]), lateness_p99_ms=int(found[3]),
                      lateness_max_ms=int(found[4]))
    if writes:
        report["row_writes"] = int(writes[1])
    return report


def parse_iso(text):
    """Seconds since the epoch of the job table's "2026-11-29T06:30:00.000Z"."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
