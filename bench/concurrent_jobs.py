#!/usr/bin/env python3
"""N jobs in flight at once against apsis-fake: apsis-exportd, or the plain aiohttp baseline.

    bench/concurrent_jobs.py --jobs 10000 [--ready-after 30] [--poll 2s,2,10s] [--baseline] [--build build-bench]

The jobs are queued as pending rows (as `apsis-exportd trigger` would), then one `apsis-exportd run`
submits and polls them all; the fake holds each export "in progress" for --ready-after seconds.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

from common import (ROOT, SYSTEM_PYTHON, Fake, binaries, daemon_self_report, parse_iso, proc_usage, run_child,
                    workdir, write_config)


def queue_jobs(daemon, config, db_path, jobs):
    subprocess.run([daemon, "trigger", "--config", config, "bulk"], check=True, capture_output=True)
    db = sqlite3.connect(db_path)
    definition, created = db.execute("SELECT definition, created_at FROM jobs").fetchone()
    db.executemany("INSERT INTO jobs (export, scheduled_for, definition, created_at) VALUES ('bulk', ?, ?, ?)",
                   [(f"2000-01-01T{i // 3600000:02d}:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
                     definition, created) for i in range(jobs - 1)])
    db.commit()
    db.close()


def daemon_run(build, jobs, ready_after, polling, wrapper=""):
    daemon, _ = binaries(build)
    work = workdir("jobs")
    fake = Fake(build, work, "--ready-after", f"{int(ready_after * 1000)}ms", "--size", "2000")
    try:
        config = write_config(work, fake.port, polling)
        db_path = os.path.join(work, "state/jobs.sqlite3")
        queue_jobs(daemon, config, db_path, jobs)
        log_path = os.path.join(work, "daemon.log")
        started = time.monotonic()
        proc = subprocess.Popen(wrapper.split() + [daemon, "run", "--config", config], stdout=subprocess.DEVNULL,
                                stderr=open(log_path, "w"))
        status_db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        peak_kib, cpu = 0, 0.0
        while True:
            time.sleep(0.5)
            peak_kib, cpu = proc_usage(proc.pid)
            done = status_db.execute("SELECT count(*) FROM jobs WHERE state = 'succeeded'").fetchone()[0]
            if done == jobs or time.monotonic() - started > ready_after * 4 + 600:
                break
        last_submit, last_finish = status_db.execute(
            "SELECT max(submitted_at), max(finished_at) FROM jobs").fetchone()
        stats = fake.stats()
        proc.terminate()
        proc.wait()
        report = daemon_self_report(open(log_path).read())
    finally:
        fake.stop()
    result = {
        "tool": "apsis-exportd", "jobs": jobs, "published": done, "submissions": stats["submissions"],
        "polls": stats["polls"], "peak_rss_mib": round(peak_kib / 1024, 1), "cpu_s": round(cpu, 2),
        "cpu_ms_per_1000_polls": round(cpu * 1e6 / max(stats["polls"], 1), 1),
        "lateness_p50_ms": report.get("lateness_p50_ms"), "lateness_p99_ms": report.get("lateness_p99_ms"),
        "ready_to_published_s": round(parse_iso(last_finish) - parse_iso(last_submit) - ready_after, 1),
    }
    shutil.rmtree(work, ignore_errors=True)
    return result


def baseline_run(build, jobs, ready_after, polling):
    work = workdir("baseline")
    fake = Fake(build, work, "--ready-after", f"{int(ready_after * 1000)}ms", "--size", "2000")
    initial, multiplier, max_delay = (float(v.rstrip("s")) for v in polling.split(","))
    try:
        out_path = os.path.join(work, "poller.json")
        with open(out_path, "w") as out:
            _, _, peak_kib, _ = run_child(
                [SYSTEM_PYTHON, os.path.join(ROOT, "bench/baseline/poller.py"), "--base-url", fake.url,
                 "--jobs", str(jobs), "--out", os.path.join(work, "out"), "--client-id", "demo-client",
                 "--client-secret", "demo-secret", "--initial-delay", str(initial), "--multiplier", str(multiplier),
                 "--max-delay", str(max_delay)], stdout=out, stderr=subprocess.DEVNULL)
        own = json.loads(open(out_path).read().strip().splitlines()[-1])
        stats = fake.stats()
    finally:
        fake.stop()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "tool": "python aiohttp", "jobs": jobs, "published": own["published"], "submissions": stats["submissions"],
        "polls": stats["polls"], "peak_rss_mib": round(peak_kib / 1024, 1), "cpu_s": own["cpu_s"],
        "cpu_ms_per_1000_polls": round(own["cpu_s"] * 1e6 / max(stats["polls"], 1), 1),
        "lateness_p50_ms": own["lateness_p50_ms"], "lateness_p99_ms": own["lateness_p99_ms"],
        "ready_to_published_s": round(own["last_publish_at"] - own["last_submit_at"] - ready_after, 1),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--ready-after", type=float, default=30)
    parser.add_argument("--poll", default="2s,2,10s", help="initial_delay,multiplier,max_delay of the back-off")
    parser.add_argument("--baseline", action="store_true", help="run the Python aiohttp baseline instead")
    parser.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    parser.add_argument("--wrapper", default="", help="command prefix for the daemon, e.g. 'heaptrack -o FILE'")
    args = parser.parse_args()
    if args.baseline:
        result = baseline_run(args.build, args.jobs, args.ready_after, args.poll)
    else:
        result = daemon_run(args.build, args.jobs, args.ready_after, args.poll, args.wrapper)
    print(json.dumps(result))
    return 0 if result["published"] == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
