#!/usr/bin/env python3
"""The job table's write rate in steady state, and a restart with N jobs in flight.

    bench/restart.py --jobs 10000 [--steady 300] [--build build-bench]

A first run submits N exports that stay "in progress" and polls them for --steady seconds with the
back-off already at its cap (a job hours into its day): the rows it wrote after the submits give
the writes per job per hour. It is stopped with SIGTERM, and the timed second run starts with every
job still polling: the figure is the time from exec to the daemon's "started" line, logged after all
N rows have been read back and their coroutines started.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

from common import ROOT, Fake, binaries, daemon_self_report, stop, workdir, write_config
from concurrent_jobs import queue_jobs

STEADY_POLLING = "5m,2,5m"  # the default max_delay, reached: each wait uniform in [0, 5 min]


def wait_for_line(path, needle, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            if needle in f.read():
                return True
        time.sleep(0.005)
    return False


def restart_run(build, jobs, steady_seconds):
    daemon, _ = binaries(build)
    work = workdir("restart")
    fake = Fake(build, work, "--ready-after", "3600000ms", "--size", "2000")
    try:
        config = write_config(work, fake.port, STEADY_POLLING)
        db_path = os.path.join(work, "state/jobs.sqlite3")
        queue_jobs(daemon, config, db_path, jobs)
        # Steady state: N jobs submitted, then polling with the back-off at its cap.
        first_log = os.path.join(work, "first.log")
        first = subprocess.Popen([daemon, "run", "--config", config], stderr=open(first_log, "w"))
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        while db.execute("SELECT count(*) FROM jobs WHERE state = 'submitted'").fetchone()[0] < jobs:
            time.sleep(0.2)
        window_start, polls_at_start = time.monotonic(), fake.stats()["polls"]
        time.sleep(steady_seconds)
        polls = fake.stats()["polls"] - polls_at_start
        stop(first)
        hours = (time.monotonic() - window_start) / 3600
        # Each submit writes its row twice (the attempt before the POST, then the poll URL).
        writes = daemon_self_report(open(first_log).read()).get("row_writes", 0) - 2 * jobs

        # Restart: from exec to the log line that follows reading back and starting every job.
        second_log = os.path.join(work, "second.log")
        started = time.monotonic()
        second = subprocess.Popen([daemon, "run", "--config", config], stderr=open(second_log, "w"))
        if not wait_for_line(second_log, f"{jobs} jobs resumed", 120):
            raise RuntimeError("the daemon did not log its start")
        resume_s = time.monotonic() - started
        stop(second)
    finally:
        fake.stop()
    shutil.rmtree(work, ignore_errors=True)
    return {"jobs": jobs, "resume_s": round(resume_s, 2), "steady_s": steady_seconds,
            "polls_per_job_hour": round(polls / jobs / hours, 1),
            "row_writes_per_job_hour": round(writes / jobs / hours, 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--steady", type=int, default=300)
    parser.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    args = parser.parse_args()
    print(json.dumps(restart_run(args.build, args.jobs, args.steady)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
