#!/usr/bin/env python3
"""Several real `apsis-exportd run` instances sharing one PostgreSQL 15 job table (issue 14), against
apsis-fake with one client id per account, limits off, every export held "in progress".

    bench/pg_instances.py [--instances 3] [--accounts 30] [--ttls 3,15] [--runs 3] [--window 60]
                          [--cpu-jobs 10000] [--cpu-accounts 30] [--cpu-window 60] [--build build-bench]

1. kill -9 failover: one job per account, polled back to back (polling 1s,1,1s: each wait uniform
   in [0, 1 s]); one instance is killed with SIGKILL; per job of its accounts, the seconds from the
   signal to the first poll the fake counts for that export afterwards (the dead process sends none),
   and to the "lease: gained account" line of the instance that took the account.
2. SIGTERM hand-over: the same with SIGTERM (which releases the leases at once).
   After each signal a fresh instance is started and the group rebalanced before the next run.
3. Database writes: pg_stat_user_tables (n_tup_ins + n_tup_upd + n_tup_del) of jobs, leases and
   instances, and pg_stat_database.xact_commit, over a steady window; scaled to an hour.
4. CPU and RSS of each instance (/proc/PID/stat, /proc/PID/status) with --cpu-jobs jobs in flight in
   all (pending rows inserted with SQL, then submitted by their owners and polled with a constant
   1 min back-off), over --cpu-window s starting 60 s after every job is submitted.

Checked on the way (and reported, never silently): one export at the fake per job (no second
submit), submit_attempts = 1 on every row, and no export polled by two instances at once (the fake's
request log: an instance has its own token per account, so a poll URL whose polls alternate between
two tokens is polled by two processes; one change of token is a hand-over).
"""

import argparse
import json
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, Fake, binaries, proc_usage, workdir  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from pg_cluster import PgCluster  # noqa: E402

UNLIMITED = "{submits: 1000000/1s, event_submits: 1000000/1s, polls: 1000000/1s, tokens: 1000/1s}"
FAST_POLLING = "{initial_delay: 1s, multiplier: 1, max_delay: 1s}"
# Constant 1 min back-off for the many-jobs run: every wait uniform in [0, 1 min], so a minute after
# the submits the poll rate is steady (at the default 5 min cap it would take longer than the whole
# benchmark), and a poll writes its row at most once a minute, as at any rate.
CPU_POLLING = "{initial_delay: 1m, multiplier: 1, max_delay: 1m}"
POLL_AFTER_GAIN_S = 15  # a gained account's jobs are polled at once: a job still silent after this is left behind
LEASE_LINE = re.compile(r"lease: (gained|lost) account (\S+?)(?::| \(|$)")


class Database:
    """One database of the throw-away cluster."""

    def __init__(self, cluster, name):
        self.cluster, self.name = cluster, name
        self.url = cluster.create_database(name)

    def psql(self, sql):
        return self.cluster.psql(sql, database=self.name)


def account_name(index):
    return f"acct-{index:03d}"


def export_name(index):
    return f"export-{index:03d}"


def write_config(work, url, fake_port, accounts, ttl_s, polling):
    lines = [f'state_db: "{url}"', f"lease_ttl: {ttl_s}s", "output_dir: ./exports", f"polling: {polling}",
             "accounts:"]
    for i in range(accounts):
        lines.append(f"  {account_name(i)}: {{base_url: 'http://127.0.0.1:{fake_port}', client_id: {account_name(i)}, "
                     f"client_secret: secret-{i}, budget: {UNLIMITED}, max_connections: 16}}")
    lines.append("exports:")
    for i in range(accounts):
        lines.append(f"  {export_name(i)}: {{account: {account_name(i)}, kind: duplicates, "
                     f"output: '{{export}}/{{job}}.{{ext}}'}}")
    path = os.path.join(work, "exportd.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def fake_args(accounts):
    args = ["--ready-after", "24h", "--size", "2000"]
    for i in range(accounts):
        args += ["--client", f"{account_name(i)}:secret-{i}"]
    return args


class Group:
    """The `run` instances, and who holds which account from their "lease: gained/lost" lines."""

    def __init__(self, daemon, config, work, accounts):
        self.daemon, self.config, self.work, self.accounts = daemon, config, work, accounts
        self.procs = {}
        self.owner = {}  # account → instance number
        self.events = queue.Queue()  # (monotonic time, instance, "gained"/"lost", account)
        self.gained_at = {}  # account → monotonic time of the latest gain
        self.next_number = 1

    def start(self):
        number = self.next_number
        self.next_number += 1
        log = open(os.path.join(self.work, f"instance-{number}.log"), "w", buffering=1)  # read while it runs
        # Each in its own directory, as on its own host: with a postgresql:// state_db, `run` still takes
        # the one-service lock file, on ".lock" in its working directory, and a second `run` started in
        # the same directory refuses to start (exit 75; reported with the results).
        home = os.path.join(self.work, f"instance-{number}")
        os.makedirs(home)
        proc = subprocess.Popen([self.daemon, "run", "--config", self.config], cwd=home,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs[number] = proc
        threading.Thread(target=self._read, args=(number, proc, log), daemon=True).start()
        return number

    def _read(self, number, proc, log):
        for line in proc.stderr:
            log.write(line)
            found = LEASE_LINE.search(line)
            if found:
                self.events.put((time.monotonic(), number, found[1], found[2]))
        log.close()

    def apply(self, timeout):
        try:
            while True:
                at, number, what, account = self.events.get(timeout=timeout)
                if what == "gained":
                    self.owner[account] = number
                    self.gained_at[account] = at
                elif self.owner.get(account) == number:
                    del self.owner[account]
                timeout = 0.001
        except queue.Empty:
            pass

    def held(self, number):
        return sorted(account for account, owner in self.owner.items() if owner == number)

    def balanced(self):
        share = -(-self.accounts // len(self.procs))
        return len(self.owner) == self.accounts and all(len(self.held(n)) <= share for n in self.procs)

    def wait_balanced(self, limit):
        deadline = time.monotonic() + limit
        while not self.balanced():
            for number, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"instance {number} ended with {proc.returncode} (see {self.work})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"not balanced in {limit} s: {[len(self.held(n)) for n in self.procs]}")
            self.apply(0.05)

    def kill(self, number, signum):
        """Signals one instance and waits for its end; returns (its accounts, the signal's time)."""
        self.apply(0.01)
        mine = self.held(number)
        at = time.monotonic()
        self.procs[number].send_signal(signum)
        self.procs[number].wait(60)
        del self.procs[number]
        for account in mine:
            if self.owner.get(account) == number:
                del self.owner[account]
        return mine, at

    def close(self):
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def export_ids(db):
    """account → the fake's export id of its unfinished jobs (the poll URL's last segment)."""
    ids = {}
    for account, url in db.psql("SELECT account, poll_url FROM jobs WHERE poll_url IS NOT NULL "
                                     "AND state IN ('submitted','downloading')"):
        ids.setdefault(account, []).append(url.rsplit("/", 1)[1])
    return ids


def wait_submitted(db, fake, jobs, limit, polled=True):
    deadline = time.monotonic() + limit
    while True:
        (count,) = db.psql("SELECT count(*) FROM jobs WHERE poll_url IS NOT NULL")[0]
        if int(count) >= jobs:
            if not polled:
                return
            exports = fake.stats()["exports"]
            if sum(1 for e in exports.values() if e["polls"] > 0) >= jobs:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count} of {jobs} jobs submitted after {limit} s")
        time.sleep(0.2)


def double_pollers(fake):
    """Poll URLs whose polls in the fake's request log (its last 500) come back to a token after another
    one: two processes polling one export (a hand-over changes the token once: A...AB...B)."""
    sequences = {}
    for eid, token in poll_tokens(fake.stats()):
        sequences.setdefault(eid, []).append(token)
    found = []
    for eid, tokens in sequences.items():
        runs = [t for i, t in enumerate(tokens) if i == 0 or tokens[i - 1] != t]
        if len(runs) != len(set(runs)):
            found.append(f"export {eid} polled with tokens in the order {token_labels(tokens, tokens[-1])} "
                         "(the fake's request log; V = the latest token)")
    return found


def poll_tokens(stats):
    """(export id, authorization) of the polls in the fake's request log (its last 500), oldest first."""
    return [(r["target"].rsplit("/", 1)[1], r["authorization"]) for r in stats["requests"]
            if r["method"] == "GET" and "/exports/" in r["target"]]


def polls_after(stats, eid, count_before):
    """The tokens of the polls of `eid` the fake counted after it had counted `count_before`."""
    new = stats["exports"][eid]["polls"] - count_before
    tokens = [t for e, t in poll_tokens(stats) if e == eid]
    return tokens[len(tokens) - new:] if new > 0 else []


def signal_run(group, db, fake, signum, limit):
    """Signals the instance holding the most accounts. Per job of its accounts, the seconds to its first
    poll with another token (so by another instance), and per account to the "gained" line elsewhere."""
    ids = export_ids(db)
    victim = max(group.procs, key=lambda n: len(group.held(n)))
    stats = fake.stats()
    victim_token = dict(poll_tokens(stats))
    count_before = {eid: e["polls"] for eid, e in stats["exports"].items()}
    victim_pid = group.procs[victim].pid
    accounts, sent = group.kill(victim, signum)
    anomalies = []
    jobs = {eid: account for account in accounts for eid in ids.get(account, [])}
    missing = [eid for eid in jobs if eid not in victim_token]
    if missing:
        raise RuntimeError(f"no poll of {missing} in the fake's request log before the signal")
    polled, gained = {}, {}
    all_gained_at = None
    while len(polled) < len(jobs) or len(gained) < len(accounts):
        waited = time.monotonic() - sent
        if waited > limit or (all_gained_at and time.monotonic() - all_gained_at > POLL_AFTER_GAIN_S):
            late = sorted(eid for eid in jobs if eid not in polled)
            anomalies.append(f"{signal.Signals(signum).name}: after {waited:.0f} s, {len(gained)} of {len(accounts)} "
                             f"accounts gained elsewhere and {len(late)} of {len(jobs)} jobs not polled again: "
                             + ", ".join(f"{eid} of {jobs[eid]} (held by instance {group.owner.get(jobs[eid])})"
                                         for eid in late))
            break
        if all_gained_at is None and len(gained) == len(accounts):
            all_gained_at = time.monotonic()
        group.apply(0.02)
        now = time.monotonic()
        stats = fake.stats()
        for eid in jobs:
            if eid in polled:
                continue
            tokens = polls_after(stats, eid, count_before[eid])
            if any(t != victim_token[eid] for t in tokens):
                polled[eid] = now - sent
                if jobs[eid] not in group.owner:
                    group.apply(0.2)  # a gain logged at the same moment
                if jobs[eid] not in group.owner:
                    anomalies.append(f"{signal.Signals(signum).name}: export {eid} of {jobs[eid]} polled with "
                                     f"another token {now - sent:.3f} s after the signal, before any instance "
                                     f"logged gaining the account (victim instance {victim}, pid {victim_pid}; "
                                     f"tokens since the signal: {token_labels(tokens, victim_token[eid])})")
        for account in accounts:
            if account not in gained and account in group.owner:
                gained[account] = group.gained_at[account] - sent
    return list(polled.values()), list(gained.values()), anomalies


def token_labels(tokens, victim_token):
    """A token sequence as letters: V for the victim's token, A, B, ... for the others in order of appearance."""
    names = {victim_token: "V"}
    for token in tokens:
        names.setdefault(token, chr(ord("A") + len(names) - 1))
    return "".join(names[t] for t in tokens)


def table_stats(db):
    rows = db.psql("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables "
                        "WHERE relname IN ('jobs', 'leases', 'instances')")
    (commits,) = db.psql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")[0]
    stats = {name: int(count) for name, count in rows}
    stats["xact_commit"] = int(commits)
    return stats


def steady_window(db, fake, group, jobs, seconds, warmup_s=15):
    """Writes per table, transactions and polls over `seconds`, and each instance's CPU and RSS."""
    # A backend flushes its table counters to pg_stat_* at most once a second after a transaction, and an
    # idle one only 10 s later: the warm-up lets the writes before the window (submits, hand-overs)
    # arrive, and in a steady state the lag is the same at both ends of the window.
    time.sleep(warmup_s)
    stats0, polls0, t0 = table_stats(db), fake.stats()["polls"], time.monotonic()
    cpu0 = {n: proc_usage(p.pid)[1] for n, p in group.procs.items()}
    time.sleep(seconds)
    cpu1 = {n: proc_usage(p.pid)[1] for n, p in group.procs.items()}
    rss = {n: vm_rss_mib(p.pid) for n, p in group.procs.items()}
    polls1 = fake.stats()["polls"]
    stats1 = table_stats(db)
    hours = (time.monotonic() - t0) / 3600
    delta = {key: stats1.get(key, 0) - stats0.get(key, 0) for key in stats1}
    minutes = seconds / 60
    polls = polls1 - polls0
    cpu = sum(cpu1[n] - cpu0[n] for n in cpu1)
    return {"polls_per_s": round(polls / seconds), "us_per_poll": round(cpu * 1e6 / max(polls, 1)),
            "jobs": jobs, "instances": len(group.procs), "window_s": seconds,
            "polls_per_job_hour": round(polls / jobs / hours, 1),
            "job_writes_per_job_hour": round(delta["jobs"] / jobs / hours, 1),
            "lease_writes_per_hour": round(delta["leases"] / hours),
            "instance_writes_per_hour": round(delta["instances"] / hours),
            "commits_per_hour": round(delta["xact_commit"] / hours),
            "commits_per_job_hour": round(delta["xact_commit"] / jobs / hours, 1),
            "cpu_s_per_min": [round((cpu1[n] - cpu0[n]) / minutes, 2) for n in sorted(cpu1)],
            "rss_mib": [rss[n] for n in sorted(rss)]}


def vm_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return round(next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024, 1)


def check_submits(db, fake, jobs):
    """Problems with submits: more exports at the fake than jobs, or a row submitted twice."""
    problems = []
    submissions = fake.stats()["submissions"]
    if submissions != jobs:
        problems.append(f"{submissions} exports at the fake for {jobs} jobs")
    twice = db.psql("SELECT id, export, submit_attempts, resubmits FROM jobs WHERE submit_attempts <> 1 "
                         "OR resubmits <> 0 LIMIT 5")
    if twice:
        problems.append(f"rows submitted more than once: {twice}")
    failed = db.psql("SELECT id, state, error FROM jobs WHERE state NOT IN ('submitted', 'pending') LIMIT 5")
    if failed:
        problems.append(f"rows that left 'submitted': {failed}")
    return problems


def spread(values):
    if not values:
        return "n/a"
    return f"{statistics.median(values):.2f} / {max(values):.2f}"


def failover_ttl(build, cluster, ttl_s, instances, accounts, runs, window_s, log):
    """One database, `instances` instances, one polling job per account; `runs` kill -9 and SIGTERM runs."""
    daemon, _ = binaries(build)
    work = workdir(f"pginst-{ttl_s}")
    db = Database(cluster, f"failover_{ttl_s}")
    fake = Fake(build, work, *fake_args(accounts))
    group = Group(daemon, write_config(work, db.url, fake.port, accounts, ttl_s, FAST_POLLING), work, accounts)
    result = {"ttl_s": ttl_s, "problems": []}
    try:
        started = time.monotonic()
        for _ in range(instances):
            group.start()
        group.wait_balanced(accounts * ttl_s + 60)
        result["balanced_s"] = round(time.monotonic() - started, 1)
        for i in range(accounts):
            subprocess.run([daemon, "trigger", "--config", group.config, export_name(i)], cwd=work, check=True,
                           capture_output=True)
        wait_submitted(db, fake, accounts, 60)
        limit = 10 * ttl_s + 60
        for kind, signum in (("kill", signal.SIGKILL), ("term", signal.SIGTERM)):
            polled, gained = [], []
            for run in range(runs):
                log(f"pg instances: TTL {ttl_s} s, {kind} run {run + 1} of {runs}")
                replace_wedged(group, result["problems"], f"before {kind} run {run + 1}")
                result["problems"] += [f"before {kind} run {run + 1}: {p}" for p in double_pollers(fake)]
                p, g, anomalies = signal_run(group, db, fake, signum, limit)
                polled += p
                gained += g
                result["problems"] += anomalies
                group.start()
                group.wait_balanced(accounts * ttl_s + 60)
                time.sleep(2)  # every job polled since the hand-overs (a signal needs each one's latest token)
            result[f"{kind}_polled"] = polled
            result[f"{kind}_gained"] = gained
        result["problems"] += [f"at the end: {p}" for p in double_pollers(fake)]
        replace_wedged(group, result["problems"], "before the steady window")
        log(f"pg instances: TTL {ttl_s} s, writes over {window_s} s")
        result["window"] = steady_window(db, fake, group, accounts, window_s)
        result["problems"] += check_submits(db, fake, accounts)
        for number, proc in group.procs.items():
            if proc.poll() is not None:
                result["problems"].append(f"instance {number} ended with {proc.returncode}")
    finally:
        group.close()
        fake.stop()
    result["problems"] += crashes(work)
    shutil.rmtree(work, ignore_errors=True)
    return result


def wedged_lines(group, number):
    """The lines of an instance's log saying its queued progress notes name accounts it no longer holds."""
    path = os.path.join(group.work, f"instance-{number}.log")
    return [line.strip() for line in open(path, errors="replace") if "no longer holds their accounts' leases" in line]


def replace_wedged(group, problems, when):
    """An instance whose store calls fail for good on notes of accounts it released runs nothing new
    (see the report in RESULTS.md): it is recorded, stopped with SIGTERM and replaced, so the next runs
    measure working instances."""
    for number in list(group.procs):
        lines = wedged_lines(group, number)
        if lines:
            problems.append(f"{when}: instance {number} wedged ({len(lines)} lines like \"{lines[0][:150]}...\"), "
                            "replaced")
            group.kill(number, signal.SIGTERM)
            group.start()
            group.wait_balanced(group.accounts * 15 + 60)


def crashes(work):
    """The instances' error lines (and signs of a crash), counted per log with the first of each."""
    found = []
    for name in sorted(os.listdir(work)):
        if not (name.startswith("instance-") and name.endswith(".log")):
            continue
        lines = [line.strip() for line in open(os.path.join(work, name), errors="replace")
                 if line.startswith(("error:", "critical:", "alert:", "emerg:")) or "terminate called" in line
                 or "Assertion" in line or "Sanitizer" in line]
        lines = [line for line in lines if "no longer holds their accounts' leases" not in line]  # wedged: above
        if lines:
            found.append(f"{name}: {len(lines)} error line(s), the first: {lines[0][:300]}")
    return found


def insert_pending(db, jobs, accounts):
    """`jobs` pending rows round-robin over the accounts, each with the definition `trigger` wrote for its
    export (one row per account is made first with `trigger`, then copied by SQL)."""
    db.psql(f"""
        INSERT INTO jobs (export, scheduled_for, state, definition, created_at, account)
        SELECT t.export,
               to_char((timestamptz '2000-01-01 00:00:00+00' + g * interval '1 second') AT TIME ZONE 'UTC',
                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'pending', t.definition, t.created_at, t.account
        FROM generate_series(0, {jobs - accounts - 1}) AS g
        JOIN (SELECT row_number() OVER (ORDER BY id) - 1 AS n, export, definition, created_at, account
              FROM jobs) AS t ON t.n = g % {accounts}""")


def cpu_run(build, cluster, instances, accounts, jobs, window_s, log):
    daemon, _ = binaries(build)
    work = workdir("pginst-cpu")
    db = Database(cluster, "cpu")
    fake = Fake(build, work, *fake_args(accounts))
    group = Group(daemon, write_config(work, db.url, fake.port, accounts, 15, CPU_POLLING), work, accounts)
    problems = []
    try:
        for _ in range(instances):
            group.start()
        group.wait_balanced(accounts * 15 + 60)
        for i in range(accounts):
            subprocess.run([daemon, "trigger", "--config", group.config, export_name(i)], cwd=work, check=True,
                           capture_output=True)
        wait_submitted(db, fake, accounts, 60, polled=False)
        started = time.monotonic()
        insert_pending(db, jobs, accounts)
        wait_submitted(db, fake, jobs, 600, polled=False)
        submit_s = time.monotonic() - started
        log(f"pg instances: {jobs} jobs submitted in {submit_s:.1f} s; CPU window {window_s} s")
        window = steady_window(db, fake, group, jobs, window_s, warmup_s=60)
        window["submit_s"] = round(submit_s, 1)
        window["held"] = [len(group.held(n)) for n in sorted(group.procs)]
        by_pid = dict(db.psql("SELECT i.pid, count(*) FROM jobs j JOIN leases l ON l.account = j.account "
                                   "JOIN instances i ON i.id = l.owner GROUP BY i.pid"))
        window["running"] = [int(by_pid.get(str(group.procs[n].pid), 0)) for n in sorted(group.procs)]
        problems += check_submits(db, fake, jobs)
        problems += double_pollers(fake)
    finally:
        group.close()
        fake.stop()
    problems += crashes(work)
    shutil.rmtree(work, ignore_errors=True)
    window["problems"] = problems
    return window


def section(build, instances, accounts, ttls, runs, window_s, cpu_jobs, cpu_accounts, cpu_window_s, log):
    """The markdown text: failover table, writes table, CPU table, and any problem seen."""
    results, problems = [], []
    with PgCluster(database="postgres_bench") as cluster:
        for ttl_s in ttls:
            results.append(failover_ttl(build, cluster, ttl_s, instances, accounts, runs, window_s, log))
            log(f"pg instances: {json.dumps(results[-1])}")
            problems += [f"TTL {ttl_s} s: {p}" for p in results[-1]["problems"]]
        cpu = cpu_run(build, cluster, instances, cpu_accounts, cpu_jobs, cpu_window_s, log)
        log(f"pg instances: {json.dumps(cpu)}")
        problems += [f"CPU run: {p}" for p in cpu["problems"]]
    lines = [f"{instances} instances, {accounts} accounts, one job per account polled every ≤ 1 s "
             f"(`polling: {FAST_POLLING}`); {runs} runs of each signal per TTL, each on the instance holding the "
             "most accounts, then a fresh instance joins and the group rebalances. Seconds from the signal, "
             "median / max over every job (or account) of the victims.", "",
             "| lease_ttl | start → balanced s | kill -9 → lease gained elsewhere | kill -9 → job polled again "
             "| SIGTERM → lease gained elsewhere | SIGTERM → job polled again |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['ttl_s']} s | {r['balanced_s']} | {spread(r['kill_gained'])} | {spread(r['kill_polled'])} "
                     f"| {spread(r['term_gained'])} | {spread(r['term_polled'])} |")
    lines += ["", "Database writes in a steady window (rows inserted + updated + deleted from pg_stat_user_tables; "
              "commits from pg_stat_database, all instances together):", "",
              "| setup | jobs | window s | polls / job / hour | jobs-table writes / job / hour | leases writes / hour "
              "| instances writes / hour | commits / hour | commits / job / hour | CPU s / min of each instance |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    rows = [(f"TTL {r['ttl_s']} s, polls ≤ 1 s apart", r["window"]) for r in results]
    rows.append(("TTL 15 s, polls ≤ 1 min apart", cpu))
    for label, w in rows:
        lines.append(f"| {label} | {w['jobs']} | {w['window_s']} | {w['polls_per_job_hour']} | "
                     f"{w['job_writes_per_job_hour']} | {w['lease_writes_per_hour']} | "
                     f"{w['instance_writes_per_hour']} | {w['commits_per_hour']} | {w['commits_per_job_hour']} | "
                     f"{', '.join(str(c) for c in w['cpu_s_per_min'])} |")
    lines += ["", f"Steady state of each instance with {cpu_jobs} jobs in flight over {cpu_accounts} accounts "
              f"(lease_ttl 15 s, `polling: {CPU_POLLING}`; {cpu_jobs - cpu_accounts} pending rows inserted by SQL, "
              f"submitted by their owners in {cpu['submit_s']} s; the window starts 60 s later): {cpu['polls_per_s']} "
              f"polls/s in all, {cpu['us_per_poll']} µs of instance CPU per poll (every instance's CPU, lease "
              "keeping and trigger scans included, ÷ the polls the fake counted).", "",
              "| instance | accounts held | jobs of its accounts | CPU s / min | RSS MiB |", "|---|---|---|---|---|"]
    for i, (held, cpu_min, rss) in enumerate(zip(cpu["held"], cpu["cpu_s_per_min"], cpu["rss_mib"])):
        lines.append(f"| {i + 1} | {held} | {cpu['running'][i]} | {cpu_min} | {rss} |")
    lines += ["", "Reading the columns: a job's row is written when its state changes and, while it polls, at most "
              "once a minute (the progress note), so jobs-table writes / job / hour tend to 60 whenever a job polls "
              "at least once a minute, and to the poll rate below that. Lease keeping is per account and instance, "
              "not per job: each renewal (every lease_ttl / 3) rewrites every held lease row and the instance's "
              "heartbeat row, i.e. 3 600 × 3 / lease_ttl × (accounts + instances) row writes an hour, whatever "
              "the number of jobs. Counters from pg_stat_* arrive up to 10 s late (idle backends); the 15 s "
              "warm-up and the steady state make it cancel out over the window."]
    lines += ["", "Problems seen: " + ("none (one export per job at the fake, submit_attempts = 1, no poll URL "
                                       "polled by two instances, no error line in the logs)" if not problems else "")]
    lines += [f"- {p}" for p in problems]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--ttls", default="3,15", help="lease_ttl values in seconds, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="kill -9 runs and SIGTERM runs per TTL")
    parser.add_argument("--window", type=int, default=60, help="steady window for the write counts, seconds")
    parser.add_argument("--cpu-jobs", type=int, default=10000, help="jobs in flight in all, over the instances")
    parser.add_argument("--cpu-accounts", type=int, default=30)
    parser.add_argument("--cpu-window", type=int, default=60)
    parser.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    args = parser.parse_args()
    log = lambda what: print(f"bench: {what}", file=sys.stderr, flush=True)  # noqa: E731
    print(section(args.build, args.instances, args.accounts, [int(t) for t in args.ttls.split(",")], args.runs,
                  args.window, args.cpu_jobs, args.cpu_accounts, args.cpu_window, log))


if __name__ == "__main__":
    main()
