#!/usr/bin/env python3
"""N jobs in flight across 10 000 accounts: start-up time and memory per waiting job.

    bench/million_jobs.py [--jobs 100000,1000000] [--accounts 10000] [--settle 30] [--build build-bench]

One apsis-fake serves every account on 127.0.0.1 and enforces APSIS One's documented per-account
limits. The state database is filled with N `submitted` jobs (round-robin over one export per
account) whose poll URLs the fake answers 404 "in progress", first polls spread over the next
--spread seconds, URLs valid a day. Each account's budget is 1 poll a minute, so the fake sees
~170 polls/s and almost every job waits its turn. Then `apsis-exportd run` starts and we measure:

- loaded and queued: exec → the daemon's "N jobs resumed" log line, which it writes once every
  unfinished row is read back and scheduled at its stored next-poll time;
- RSS (VmRSS) right then, and after --settle seconds of polling; memory per waiting job is the RSS
  slope between the smallest and the largest N.

Targets (issue 13): ≤ 1 KB per waiting job, < 1 GB in total at 1 000 000, loaded and queued < 10 s.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from common import ROOT, Fake, binaries, workdir
from waiting_jobs import (LogWatch, accounts, fake_client_args, free_port, loadavg, memory_breakdown, memory_slope,
                          one_certificate_ca, populate, scrape_metrics, vm_rss_kib, write_config)

BUDGET = "{polls: 1/1m, submits: 1/2s, event_submits: 1/2m, tokens: 5/1m}"
POLLING = "{initial_delay: 1m, multiplier: 2, max_delay: 5m}"
TARGET_BYTES_PER_JOB = 1024
TARGET_TOTAL_MIB = 1024
TARGET_LOADED_S = 10.0


def run_once(build, jobs, account_count, settle_s, spread_s, small_ca=False, log=print):
    daemon, _ = binaries(build)
    work = workdir("million")
    account_list = accounts(account_count)
    fake = Fake(build, work, *fake_client_args(account_list), limits=True)
    proc = None
    try:
        admin_port = free_port()
        config = write_config(work, fake.port, account_list, BUDGET, POLLING, max_connections=1,
                              extra_top=f"max_concurrent_downloads: 64\nadmin_listen: 127.0.0.1:{admin_port}",
                              ca_file=one_certificate_ca(work) if small_ca else None)
        db_path = os.path.join(work, "state/jobs.sqlite3")
        populate_s = populate(daemon, config, db_path, fake.url, account_list, jobs, spread_s)
        log(f"million jobs: {jobs} rows written in {populate_s:.1f} s; starting the daemon")
        log_path = os.path.join(work, "daemon.log")
        load_before = loadavg()
        started = time.monotonic()
        proc = subprocess.Popen([daemon, "run", "--config", config], stdout=subprocess.DEVNULL,
                                stderr=open(log_path, "w"), cwd=work)
        line = LogWatch(log_path).wait_for("jobs resumed", timeout=1800, alive=lambda: proc.poll() is None)
        if line is None:
            raise RuntimeError(f"the daemon did not log 'jobs resumed' (see {log_path})")
        loaded_s = time.monotonic() - started
        rss_loaded = vm_rss_kib(proc.pid)
        polls_before = fake.stats()["polls"]
        at_load = scrape_metrics(admin_port)
        log(f"million jobs: loaded ({line.strip()}); /metrics: {json.dumps(at_load)}")
        peak = rss_loaded
        settle_end = time.monotonic() + settle_s
        while time.monotonic() < settle_end and proc.poll() is None:
            time.sleep(1)
            peak = max(peak, vm_rss_kib(proc.pid))
        rss_settled = vm_rss_kib(proc.pid)
        smaps = memory_breakdown(proc.pid)
        stats = fake.stats()
        settled = scrape_metrics(admin_port)
        log(f"million jobs: settled; /metrics: {json.dumps(settled)}; smaps_rollup MiB: {json.dumps(smaps)}")
        throttled = sum(a["throttled"]["polls"] for a in stats["accounts"].values())
        result = {
            "jobs": jobs, "accounts": account_count, "populate_s": round(populate_s, 1),
            "loaded_s": round(loaded_s, 2), "rss_loaded_mib": round(rss_loaded / 1024, 1),
            "rss_mib": round(rss_settled / 1024, 1), "peak_mib": round(peak / 1024, 1),
            "settle_s": settle_s, "polls_in_settle": stats["polls"] - polls_before, "polls_429": throttled,
            "load": f"{load_before} → {loadavg()}", "ca": "one cert" if small_ca else "system",
            "resumed_line": line.strip().split("started:", 1)[-1].strip(), "anon_mib": smaps.get("Anonymous"),
            "metrics_at_load": at_load, "metrics_settled": settled,
            "store_call_max_ms": settled.get("store_call_max_ms"),
            "waiting": f"{settled.get('waiting_budget')} budget, {settled.get('waiting_apsis')} apsis",
        }
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(180)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    return result


def account_cost(build, account_count, log):
    """Start-up time and RSS per account with no jobs, each account's TLS context on the system CA
    store and on a one-certificate ca_file."""
    rows = []
    for small_ca in (False, True):
        log(f"million jobs: {account_count} accounts, no jobs, {'one-cert' if small_ca else 'system'} CA store")
        rows.append(run_once(build, 0, account_count, 0, 1, small_ca, log))
        log(f"million jobs: {json.dumps(rows[-1])}")
    header = ("| accounts, no jobs | CA store per account | loaded s | RSS MiB | per account: ms, KiB |\n"
              "|---|---|---|---|---|\n")
    body = "".join(f"| {r['accounts']} | {r['ca']} | {r['loaded_s']} | {r['rss_mib']} | "
                   f"{r['loaded_s'] * 1000 / r['accounts']:.1f} ms, {r['rss_mib'] * 1024 / r['accounts']:.0f} KiB |\n"
                   for r in rows)
    return header + body


def verdicts(rows):
    lines = []
    slope = memory_slope(rows)
    biggest = max(rows, key=lambda r: r["jobs"])
    if slope is not None:
        lines.append(("PASS" if slope <= TARGET_BYTES_PER_JOB else "FAIL",
                      f"memory per waiting job {slope:.0f} B (RSS slope {min(r['jobs'] for r in rows)} → "
                      f"{biggest['jobs']} jobs) ≤ {TARGET_BYTES_PER_JOB} B"))
    if biggest["jobs"] >= 1_000_000:
        lines.append(("PASS" if biggest["rss_mib"] < TARGET_TOTAL_MIB else "FAIL",
                      f"total RSS at {biggest['jobs']} jobs {biggest['rss_mib']} MiB < {TARGET_TOTAL_MIB} MiB"))
    else:
        lines.append(("n/a", f"total RSS at 1 000 000 jobs: not run (largest run {biggest['jobs']})"))
    lines.append(("PASS" if biggest["loaded_s"] < TARGET_LOADED_S else "FAIL",
                  f"{biggest['jobs']} jobs loaded and queued in {biggest['loaded_s']} s < {TARGET_LOADED_S:.0f} s"))
    return slope, lines


def section(build, sizes, account_count, settle_s, spread_s, log, small_ca=False, cost_accounts=0):
    rows = []
    cost = account_cost(build, cost_accounts, log) + "\n" if cost_accounts else ""
    for jobs in sizes:
        log(f"million jobs: {jobs} jobs over {account_count} accounts")
        rows.append(run_once(build, jobs, account_count, settle_s, spread_s, small_ca, log))
        log(f"million jobs: {json.dumps(rows[-1])}")
    if not rows:
        return rows, cost
    _, lines = verdicts(rows)
    header = ("| jobs | accounts | CA store per account | loaded & queued s | RSS at load MiB | RSS after settle MiB | peak MiB | "
              "anonymous MiB | polls in settle window | 429s | jobs waiting (/metrics) | longest store call ms | "
              "load avg (before → after) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(f"| {r['jobs']} | {r['accounts']} | {r['ca']} | {r['loaded_s']} | {r['rss_loaded_mib']} | {r['rss_mib']} | "
                   f"{r['peak_mib']} | {r['anon_mib']} | {r['polls_in_settle']} in {r['settle_s']} s | {r['polls_429']} | "
                   f"{r['waiting']} | {r['store_call_max_ms']} | {r['load']} |\n"
                   for r in rows)
    notes = "".join(f"- {verdict}: {what}\n" for verdict, what in lines)
    return rows, cost + header + body + "\n" + notes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="100000,1000000", help="comma-separated job counts")
    parser.add_argument("--accounts", type=int, default=10000)
    parser.add_argument("--settle", type=int, default=30, help="seconds of polling before RSS is read")
    parser.add_argument("--spread", type=int, default=300, help="first polls spread over this many seconds")
    parser.add_argument("--small-ca", action="store_true",
                        help="give each account a one-certificate ca_file instead of the system CA store (before "
                             "http::ClientPool each account's TLS context loaded the system store: ~0.85 MB, ~40 ms)")
    parser.add_argument("--account-cost", type=int, default=0, metavar="ACCOUNTS",
                        help="first measure start-up and RSS per account with this many accounts and no jobs, "
                             "on the system CA store and on a one-certificate ca_file")
    parser.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    args = parser.parse_args()
    log = lambda what: print(f"bench: {what}", file=sys.stderr, flush=True)  # noqa: E731
    rows, text = section(args.build, [int(n) for n in args.jobs.split(",") if n], args.accounts, args.settle,
                         args.spread, log, args.small_ca, args.account_cost)
    print(text)
    return 0 if "FAIL" not in text else 1


if __name__ == "__main__":
    sys.exit(main())
