"""Jobs already submitted and waiting, written straight into the state database: the start of
bench/million_jobs.py and bench/poll_cpu.py.

The daemon creates the database itself (`apsis-exportd trigger` on the first export), so the columns
are the ones schema/*.sql makes; its pending row gives each export's stored definition, and is then
replaced by N `submitted` rows whose poll URLs point at the fake. The fake answers a poll of an
export id it never made with 404 "Not found", which on a v1 poll URL (file_download_url) is "still
in progress": those jobs wait until their URLs expire a day later.
"""

import json
import os
import random
import socket
import sqlite3
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import common



def accounts(count):
    """(client id, secret) of `count` accounts, for the fake's --client and the daemon's config."""
    return [(f"acct-{i:05d}", f"secret-{i:05d}") for i in range(count)]


def fake_client_args(account_list):
    return [arg for client_id, secret in account_list for arg in ("--client", f"{client_id}:{secret}")]


def export_name(index):
    return f"e-{index:05d}"


def write_config(work, port, account_list, budget, polling, max_connections, extra_top="", ca_file=None):
    """One export per account, all on the one fake; `budget` and `polling` are YAML flow mappings;
    `ca_file` goes to every account (none: the system's CA store)."""
    ca = f", ca_file: '{ca_file}'" if ca_file else ""
    path = os.path.join(work, "exportd.yaml")
    lines = ["state_db: ./state/jobs.sqlite3", "output_dir: ./exports", f"polling: {polling}", extra_top, "accounts:"]
    for client_id, secret in account_list:
        lines += [f"  {client_id}: {{base_url: 'http://127.0.0.1:{port}', client_id: {client_id}, "
                  f"client_secret: {secret}, budget: {budget}, max_connections: {max_connections}{ca}}}"]
    lines.append("exports:")
    for index, (client_id, _) in enumerate(account_list):
        lines.append(f"  {export_name(index)}: {{account: {client_id}, kind: duplicates, "
                     f"output: '{{export}}/{{job}}.{{ext}}'}}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def one_certificate_ca(work):
    """A CA file holding one self-signed certificate: an account's TLS context then loads one
    certificate instead of the system's ~150 (the fake is plain HTTP, so it is never used)."""
    path = os.path.join(work, "one-cert-ca.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", os.path.join(work, "one-cert-ca.key"), "-out", path, "-days", "30",
                    "-subj", "/CN=apsis-bench"], check=True, capture_output=True)
    return path


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def populate(daemon, config, db_path, fake_url, account_list, jobs, spread_s, seed=1):
    """`jobs` submitted rows spread round-robin over the accounts' exports, each first polled at a
    random moment of the next `spread_s` seconds; returns the seconds it took."""
    started = time.monotonic()
    subprocess.run([daemon, "trigger", "--config", config, export_name(0)], check=True, capture_output=True)
    db = sqlite3.connect(db_path)
    (template,) = db.execute("SELECT definition FROM jobs").fetchone()
    db.execute("DELETE FROM jobs")
    template = json.loads(template)
    definitions = []
    account_count = len(account_list)
    for index, (client_id, _) in enumerate(account_list):
        template.update(name=export_name(index), account=client_id)
        definitions.append(json.dumps(template, separators=(",", ":")))
    now = datetime.now(timezone.utc)
    created, expires = iso(now), iso(now + timedelta(days=1))
    rng = random.Random(seed)
    scheduled_base = datetime(2000, 1, 1, tzinfo=timezone.utc)

    def rows():
        for i in range(jobs):
            index = i % account_count
            yield (export_name(index), iso(scheduled_base + timedelta(seconds=i)), definitions[index], created,
                   created, f"{fake_url}/exports/bench-{i}", expires,
                   iso(now + timedelta(seconds=rng.uniform(0, spread_s))))

    db.execute("PRAGMA journal_mode=WAL")
    db.executemany(
        "INSERT INTO jobs (export, scheduled_for, state, definition, created_at, submit_attempts, submitted_at, "
        "poll_url, poll_url_field, poll_expires_at, polls, next_poll_at) "
        "VALUES (?, ?, 'submitted', ?, ?, 1, ?, ?, 'file_download_url', ?, 0, ?)", rows())
    db.commit()
    db.close()
    return time.monotonic() - started


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def cpu_seconds(pid):
    """utime + stime of a running process (common.proc_usage reads them)."""
    return common.proc_usage(pid)[1]


def loadavg():
    return open("/proc/loadavg").read().split()[0]


class LogWatch:
    """Reads a growing log file incrementally (a million jobs log a million lines)."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.tail = ""

    def wait_for(self, needle, timeout, alive=lambda: True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.path, errors="replace") as f:
                f.seek(self.offset)
                chunk = f.read()
                self.offset = f.tell()
            text = self.tail + chunk
            if needle in text:
                return next(line for line in text.splitlines() if needle in line)
            self.tail = text[-len(needle):]
            if not alive():
                return None
            time.sleep(0.02)
        return None


def memory_slope(rows, key="rss_mib", jobs_key="jobs"):
    """Bytes per waiting job between the smallest and largest run."""
    small, big = min(rows, key=lambda r: r[jobs_key]), max(rows, key=lambda r: r[jobs_key])
    if big[jobs_key] == small[jobs_key]:
        return None
    return (big[key] - small[key]) * 1024 * 1024 / (big[jobs_key] - small[jobs_key])



def free_port():
    """A port free on 127.0.0.1 right now, for the daemon's admin_listen."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape_metrics(port, timeout=120):
    """The daemon's /metrics, reduced to what the job benchmarks report: the longest job-table call
    (apsis_store_call_seconds_max, which includes the calls this very scrape makes: /metrics counts
    rows by export and state), how many calls took more than 25 ms, the waiting jobs, the 404
    updates still queued, and how long the page took to come back (the loop serves it)."""
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    took = time.monotonic() - started
    values, over_25ms = {}, None
    calls = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if name == "apsis_store_call_seconds_max":
            values["store_call_max_ms"] = round(float(value) * 1000, 1)
        elif name == 'apsis_store_call_seconds_bucket{le="0.025"}':
            over_25ms = float(value)
        elif name == "apsis_store_call_seconds_count":
            calls = float(value)
        elif name.startswith("apsis_jobs_waiting{"):
            values["waiting_" + name.split('"')[1]] = int(float(value))
        elif name == "apsis_store_writes_queued":
            values["writes_queued"] = int(float(value))
    if calls is not None and over_25ms is not None:
        values["store_calls"] = int(calls)
        values["store_calls_over_25ms"] = int(calls - over_25ms)
    values["scrape_s"] = round(took, 2)
    values["page_kib"] = round(len(text) / 1024)
    return values


def memory_breakdown(pid):
    """/proc/<pid>/smaps_rollup in MiB: anonymous memory (heap: the jobs) apart from file-backed pages."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Anonymous", "Private_Dirty", "Shared_Clean", "Private_Clean"):
                    out[key] = round(int(rest.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out
