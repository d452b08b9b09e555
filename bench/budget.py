#!/usr/bin/env python3
"""Many jobs of one account against apsis-fake enforcing APSIS One's documented per-account limits.

    bench/budget.py [--jobs 50] [--events 2] [--ready-after 20] [--budget documented|half] [--build build-bench]

The daemon's budget is set equal to the documented limits (`--budget documented`, the hard case:
nothing is left over for timing differences between the two ends) or left at its default of half
of them. The jobs are queued as pending rows (as `apsis-exportd trigger` would), `--events` of them
event exports, then one `apsis-exportd run` works them off. Reports every request per call kind, the
share answered 429, and the most requests the fake saw in any of its windows beside the budget.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

from common import Fake, binaries, workdir

DOCUMENTED = {"submits": "1/1s", "event_submits": "1/1m", "polls": "60/1m", "tokens": "10/1m"}
HALF = {"submits": "1/2s", "event_submits": "1/2m", "polls": "30/1m", "tokens": "5/1m"}
KINDS = ("submits", "event_submits", "polls", "tokens")


def write_config(work, port, budget, poll):
    initial, multiplier, max_delay = poll.split(",")
    path = os.path.join(work, "exportd.yaml")
    budget_yaml = ", ".join(f"{kind}: {value}" for kind, value in budget.items())
    with open(path, "w") as f:
        f.write(f"""state_db: ./state/jobs.sqlite3
output_dir: ./exports
accounts:
  main:
    base_url: http://127.0.0.1:{port}
    client_id: demo-client
    client_secret: demo-secret
    budget: {{{budget_yaml}}}
polling: {{initial_delay: {initial}, multiplier: {multiplier}, max_delay: {max_delay}}}
exports:
  dupes: {{account: main, kind: duplicates, output: "{{export}}/{{job}}.{{ext}}",
           request: {{segments: {{segment_discriminators: {{a: usercreated.segments.a-1}}, filter: a}}}}}}
  events: {{account: main, kind: events, window: 1d, output: "{{export}}/{{job}}.{{ext}}",
            request: {{attributes: [email]}}}}
""")
    return path


def queue_jobs(daemon, config, db_path, export, count, offset):
    if count == 0:
        return
    subprocess.run([daemon, "trigger", "--config", config, export], check=True, capture_output=True)
    db = sqlite3.connect(db_path)
    definition, created = db.execute("SELECT definition, created_at FROM jobs WHERE export = ?", (export,)).fetchone()
    db.executemany("INSERT INTO jobs (export, scheduled_for, definition, created_at) VALUES (?, ?, ?, ?)",
                   [(export, f"2000-01-01T00:{(offset + i) // 60:02d}:{(offset + i) % 60:02d}.000Z", definition, created)
                    for i in range(count - 1)])
    db.commit()
    db.close()


def run(build, jobs, events, ready_after, budget_name, poll):
    daemon, _ = binaries(build)
    budget = DOCUMENTED if budget_name == "documented" else HALF
    work = workdir("budget")
    fake = Fake(build, work, "--ready-after", f"{int(ready_after * 1000)}ms", "--size", "2000")
    # Fake() turns the limits off for the other benchmarks; this one is about them.
    fake.limits("documented")
    try:
        config = write_config(work, fake.port, budget, poll)
        db_path = os.path.join(work, "state/jobs.sqlite3")
        queue_jobs(daemon, config, db_path, "dupes", jobs - events, 0)
        queue_jobs(daemon, config, db_path, "events", events, 0)
        started = time.monotonic()
        proc = subprocess.Popen([daemon, "run", "--config", config], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(work, "daemon.log"), "w"))
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        while time.monotonic() - started < 3600:
            time.sleep(1)
            unfinished = db.execute("SELECT count(*) FROM jobs WHERE state IN ('pending','submitted','downloading')")
            if unfinished.fetchone()[0] == 0:
                break
        elapsed = time.monotonic() - started
        states = dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        proc.terminate()
        proc.wait()
        account = fake.stats()["accounts"]["demo-client"]
    finally:
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    sent = {kind: account["requests"][kind] for kind in KINDS}
    throttled = {kind: account["throttled"][kind] for kind in KINDS}
    total = sum(sent[k] for k in ("submits", "polls", "tokens"))  # event submits are also in submits
    total_429 = sum(throttled[k] for k in ("submits", "polls", "tokens"))
    return {
        "jobs": jobs, "event_jobs": events, "budget": budget_name, "seconds": round(elapsed, 1), "states": states,
        "requests": total, "answered_429": total_429, "share_429_percent": round(100.0 * total_429 / max(1, total), 2),
        "per_kind": {kind: {"sent": sent[kind], "429": throttled[kind],
                            "max_in_fake_window": account["max_in_window"][kind],
                            "fake_limit": account["limits"][kind], "daemon_budget": budget[kind]}
                     for kind in KINDS},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--events", type=int, default=2)
    parser.add_argument("--ready-after", type=float, default=20)
    parser.add_argument("--budget", choices=("documented", "half"), default="documented")
    parser.add_argument("--poll", default="5s,2,30s", help="initial_delay,multiplier,max_delay")
    parser.add_argument("--build", default="build")
    args = parser.parse_args()
    print(json.dumps(run(args.build, args.jobs, args.events, args.ready_after, args.budget, args.poll), indent=2))


if __name__ == "__main__":
    sys.exit(main())
