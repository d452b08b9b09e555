#!/usr/bin/env python3
"""N jobs in flight at once against apsis-fake: peak RSS, CPU per 1000 polls, time to publish all.

    bench/concurrent_jobs.py --jobs 10000 [--ready-after 30] [--build build]

The jobs are queued as pending rows (as `apsis-exportd trigger` would), then one `apsis-exportd run`
submits and polls them all; the fake holds each export "in progress" for --ready-after seconds.
"""

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def proc_stats(pid):
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return int(status["VmHWM"].split()[0]), int(status["VmRSS"].split()[0]), cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--ready-after", type=float, default=30)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = parser.parse_args()
    daemon = os.path.join(args.build, "apsis-exportd")
    fake_bin = os.path.join(args.build, "tests/fake/apsis-fake")

    work = tempfile.mkdtemp(prefix="apsis-bench-")
    port_file = os.path.join(work, "port")
    fake = subprocess.Popen([fake_bin, "--port", "0", "--port-file", port_file, "--quiet",
                             "--ready-after", f"{int(args.ready_after * 1000)}ms", "--size", "2000"],
                            stdout=subprocess.DEVNULL)
    while not os.path.exists(port_file):
        time.sleep(0.02)
    port = int(open(port_file).read())
    config = os.path.join(work, "exportd.yaml")
    with open(config, "w") as f:
        f.write(f"""state_db: ./state/jobs.sqlite3
output_dir: ./exports
max_concurrent_downloads: 64
accounts:
  main:
    base_url: http://127.0.0.1:{port}
    client_id: demo-client
    client_secret: demo-secret
    max_requests_per_second: 0
    max_connections: 64
polling: {{initial_delay: 2s, multiplier: 2, max_delay: 10s}}
exports:
  bulk: {{account: main, kind: duplicates, output: "{{export}}/{{job}}.{{ext}}"}}
""")
    subprocess.run([daemon, "trigger", "--config", config, "bulk"], check=True, capture_output=True)
    db = sqlite3.connect(os.path.join(work, "state/jobs.sqlite3"))
    definition, created = db.execute("SELECT definition, created_at FROM jobs").fetchone()
    db.executemany("INSERT INTO jobs (export, scheduled_for, definition, created_at) VALUES ('bulk', ?, ?, ?)",
                   [(f"2000-01-01T00:00:{i // 1000:02d}.{i % 1000:03d}Z", definition, created)
                    for i in range(args.jobs - 1)])
    db.commit()
    db.close()

    started = time.monotonic()
    proc = subprocess.Popen([daemon, "run", "--config", config], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(work, "daemon.log"), "w"))
    peak_kib, cpu, all_submitted_at = 0, 0.0, None
    status_db = sqlite3.connect(f"file:{work}/state/jobs.sqlite3?mode=ro", uri=True)
    while True:
        time.sleep(0.5)
        peak_kib, rss_kib, cpu = proc_stats(proc.pid)
        counts = dict(status_db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        if all_submitted_at is None and counts.get("pending", 0) == 0:
            all_submitted_at = time.monotonic() - started
        if counts.get("succeeded", 0) == args.jobs or time.monotonic() - started > args.ready_after * 4 + 120:
            break
    elapsed = time.monotonic() - started
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/stats") as res:
        stats = json.load(res)
    proc.terminate()
    proc.wait()
    fake.terminate()
    polls = stats["polls"]
    result = {
        "jobs": args.jobs,
        "succeeded": counts.get("succeeded", 0),
        "submissions": stats["submissions"],
        "polls": polls,
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_1000_polls": round(cpu * 1000 / max(polls, 1) * 1000, 1),
        "all_submitted_s": round(all_submitted_at or 0, 1),
        "all_published_s": round(elapsed, 1),
    }
    print(json.dumps(result))
    return 0 if result["succeeded"] == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
