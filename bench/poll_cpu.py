#!/usr/bin/env python3
"""CPU per "in progress" poll, the poll path alone, beside the Python aiohttp baseline.

    bench/poll_cpu.py [--jobs 1000,10000] [--delay 20] [--warmup 20] [--window 30] [--build build-bench]

apsis-exportd: N `submitted` jobs written into the state database (see waiting_jobs.py), one
account, budgets unlimited, a constant polling back-off (each wait uniform in [0, --delay] s); the
fake answers every poll 404 "in progress". The baseline (bench/baseline/poller.py) submits N exports
the fake holds in progress for an hour and polls them on the same back-off. Once every job is
waiting (after --warmup s), CPU (utime + stime from /proc) over --window s ÷ the polls the fake
counted in it; memory per waiting job is the RSS slope between the smallest and largest N.

Targets (issue 13): ≤ 30 µs per poll; ≥ 5× less CPU per poll and ≥ 5× less memory per waiting job
than the baseline.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from common import ROOT, SYSTEM_PYTHON, Fake, binaries, workdir
from waiting_jobs import (LogWatch, cpu_seconds, free_port, loadavg, memory_slope, populate, scrape_metrics, vm_rss_kib,
                          write_config)

UNLIMITED = "{submits: 1000000/1s, event_submits: 1000000/1s, polls: 1000000/1s, tokens: 1000/1s}"
TARGET_US_PER_POLL = 30
TARGET_RATIO = 5


def measure_window(pid, fake, warmup_s, window_s, alive):
    """CPU µs per poll and polls/s over the window, RSS at its end."""
    time.sleep(warmup_s)
    cpu0, polls0, t0, load0 = cpu_seconds(pid), fake.stats()["polls"], time.monotonic(), loadavg()
    time.sleep(window_s)
    cpu1, polls1, t1 = cpu_seconds(pid), fake.stats()["polls"], time.monotonic()
    if not alive():
        raise RuntimeError("the measured process ended during the window")
    polls = polls1 - polls0
    return {"polls": polls, "polls_per_s": round(polls / (t1 - t0)), "cpu_s": round(cpu1 - cpu0, 2),
            "us_per_poll": round((cpu1 - cpu0) * 1e6 / max(polls, 1), 1), "rss_mib": round(vm_rss_kib(pid) / 1024, 1),
            "load": f"{load0} → {loadavg()}"}


def stop_process(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def daemon_run(build, jobs, delay_s, warmup_s, window_s):
    daemon, _ = binaries(build)
    work = workdir("pollcpu")
    fake = Fake(build, work)
    proc = None
    try:
        account = [("demo-client", "demo-secret")]
        admin_port = free_port()
        config = write_config(work, fake.port, account, UNLIMITED,
                              f"{{initial_delay: {delay_s}s, multiplier: 1, max_delay: {delay_s}s}}",
                              max_connections=64,
                              extra_top=f"max_concurrent_downloads: 64\nadmin_listen: 127.0.0.1:{admin_port}")
        populate(daemon, config, os.path.join(work, "state/jobs.sqlite3"), fake.url, account, jobs, delay_s)
        log_path = os.path.join(work, "daemon.log")
        proc = subprocess.Popen([daemon, "run", "--config", config], stdout=subprocess.DEVNULL,
                                stderr=open(log_path, "w"), cwd=work)
        if LogWatch(log_path).wait_for("jobs resumed", 300, alive=lambda: proc.poll() is None) is None:
            raise RuntimeError(f"the daemon did not start (see {log_path})")
        result = measure_window(proc.pid, fake, warmup_s, window_s, lambda: proc.poll() is None)
        metrics = scrape_metrics(admin_port)  # after the window: the scrape's own CPU is not in it
        result["store_call_max_ms"] = metrics.get("store_call_max_ms")
        result["store_calls_over_25ms"] = metrics.get("store_calls_over_25ms")
        unexpected = fake.stats()["submissions"]
    finally:
        stop_process(proc)
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    if unexpected:
        raise RuntimeError(f"the daemon submitted {unexpected} exports: the window was not polls only")
    return {"tool": "apsis-exportd", "jobs": jobs, **result}


def baseline_run(build, jobs, delay_s, warmup_s, window_s):
    work = workdir("pollcpu-baseline")
    fake = Fake(build, work, "--ready-after", "3600000ms", "--size", "2000")
    proc = None
    try:
        proc = subprocess.Popen(
            [SYSTEM_PYTHON, os.path.join(ROOT, "bench/baseline/poller.py"), "--base-url", fake.url, "--jobs", str(jobs),
             "--out", os.path.join(work, "out"), "--client-id", "demo-client", "--client-secret", "demo-secret",
             "--initial-delay", str(delay_s), "--multiplier", "1", "--max-delay", str(delay_s)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while fake.stats()["submissions"] < jobs:  # the window holds polls only once every submit is in
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the baseline did not submit every export")
            time.sleep(0.2)
        result = measure_window(proc.pid, fake, warmup_s, window_s, lambda: proc.poll() is None)
    finally:
        stop_process(proc)
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"tool": "python aiohttp", "jobs": jobs, **result}


def section(build, sizes, delay_s, warmup_s, window_s, log):
    rows = []
    for runner in (daemon_run, baseline_run):
        for jobs in sizes:
            log(f"poll cpu: {runner.__name__} {jobs} jobs")
            rows.append(runner(build, jobs, delay_s, warmup_s, window_s))
            log(f"poll cpu: {json.dumps(rows[-1])}")
    ours = [r for r in rows if r["tool"] == "apsis-exportd"]
    theirs = [r for r in rows if r["tool"] != "apsis-exportd"]
    largest = max(sizes)
    our_cpu = next(r["us_per_poll"] for r in ours if r["jobs"] == largest)
    their_cpu = next(r["us_per_poll"] for r in theirs if r["jobs"] == largest)
    our_mem, their_mem = memory_slope(ours), memory_slope(theirs)
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    notes = [f"- {verdict(our_cpu <= TARGET_US_PER_POLL)}: apsis-exportd {our_cpu} µs per poll at {largest} jobs "
             f"≤ {TARGET_US_PER_POLL} µs",
             f"- {verdict(their_cpu >= TARGET_RATIO * our_cpu)}: the baseline uses {their_cpu / our_cpu:.1f}× the CPU "
             f"per poll (≥ {TARGET_RATIO}×)"]
    if our_mem and their_mem:
        notes.append(f"- {verdict(their_mem >= TARGET_RATIO * our_mem)}: memory per waiting job (RSS slope "
                     f"{min(sizes)} → {largest}): apsis-exportd {our_mem:.0f} B, baseline {their_mem:.0f} B, "
                     f"{their_mem / our_mem:.1f}× (≥ {TARGET_RATIO}×)")
    header = ("| tool | jobs waiting | polls in window | polls/s | CPU s | CPU µs / poll | RSS MiB | "
              "longest store call ms | load avg (window start → end) |\n|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(f"| {r['tool']} | {r['jobs']} | {r['polls']} | {r['polls_per_s']} | {r['cpu_s']} | "
                   f"{r['us_per_poll']} | {r['rss_mib']} | {r.get('store_call_max_ms', '—')} | {r['load']} |\n"
                   for r in rows)
    return rows, header + body + "\n" + "\n".join(notes) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="1000,10000", help="comma-separated job counts (slope: smallest → largest)")
    parser.add_argument("--delay", type=int, default=20, help="constant back-off ceiling, seconds")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    args = parser.parse_args()
    log = lambda what: print(f"bench: {what}", file=sys.stderr, flush=True)  # noqa: E731
    _, text = section(args.build, [int(n) for n in args.jobs.split(",")], args.delay, args.warmup, args.window, log)
    print(text)
    return 0 if "FAIL" not in text else 1


if __name__ == "__main__":
    sys.exit(main())
