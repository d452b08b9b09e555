#!/usr/bin/env python3
"""Failover and hand-over times of the account leases: K lease keepers (bench_lease_keeper, the
daemon's own LeaseKeeper without the rest of the daemon) share N accounts on a throw-away
PostgreSQL 15 cluster.

    bench/lease_failover.py [--keepers 3] [--accounts 30] [--ttl-ms 15000,5000] [--releases-per-round 1,0]
                            [--runs 3] [--build build-bench]

Per run: the keepers start together, and the time until every account is held and none holds more
than its share is "balanced" (the first to start claims everything, then hands accounts over at
--releases-per-round per renew interval; 0: all at once). Then:
- failover: one keeper is killed with SIGKILL; the time until each of its accounts is gained by
  another keeper (expected: the TTL, plus up to one renew interval = TTL/3, plus the rebalancing);
- hand-over: one keeper gets SIGTERM, which releases its leases; the time until all of them are held
  elsewhere (expected: up to one renew interval of the others).
Times are taken here, when a keeper's "gained" line arrives, from the signal sent.
"""

import argparse
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_BIN = "/usr/lib/postgresql/15/bin"


class Cluster:
    """initdb in a temporary directory, listening only on a Unix socket there (as the unit tests' cluster)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="apsis-bench-lease-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.run(["initdb", "-D", f"{self.dir}/data", "-U", "postgres", "-A", "trust", "--no-sync"])
        self.run(["pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/server.log", "-w", "-o",
                  f"-k {self.dir} -c listen_addresses='' -F -c max_connections=200", "start"])

    def run(self, command):
        command = [os.path.join(PG_BIN, command[0]), *command[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def database(self, name):
        self.run(["createdb", "-h", self.dir, "-U", "postgres", name])  # the keepers migrate it
        return f"postgresql:///{name}?host={self.dir}&user=postgres"

    def close(self):
        self.run(["pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


class Keepers:
    """The keeper processes and who holds what, from their stdout lines."""

    def __init__(self, binary, url, accounts, ttl_ms, releases):
        self.binary, self.url, self.accounts, self.ttl_ms, self.releases = binary, url, accounts, ttl_ms, releases
        self.procs = {}
        self.owner = {}  # account → keeper index
        self.events = queue.Queue()  # (monotonic time, keeper, "gained"/"lost", account)
        self.next_seed = 1

    def start(self):
        index = self.next_seed
        self.next_seed += 1
        proc = subprocess.Popen([self.binary, self.url, str(self.accounts), str(self.ttl_ms), str(index),
                                 str(self.releases)],
                                stdout=subprocess.PIPE, text=True)
        self.procs[index] = proc
        threading.Thread(target=self._read, args=(index, proc), daemon=True).start()
        return index

    def _read(self, index, proc):
        for line in proc.stdout:
            what, account = line.split()[:2]
            self.events.put((time.monotonic(), index, what, account))

    def apply(self, timeout):
        """Applies the events that arrive within `timeout`; returns the last one's time."""
        last = None
        try:
            while True:
                at, index, what, account = self.events.get(timeout=timeout)
                if what == "gained":
                    self.owner[account] = index
                elif self.owner.get(account) == index:
                    del self.owner[account]
                last = at
                timeout = 0.001
        except queue.Empty:
            return last

    def held(self, index):
        return sum(1 for owner in self.owner.values() if owner == index)

    def wait(self, condition, limit):
        deadline = time.monotonic() + limit
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"keepers did not settle in {limit} s: {self.counts()}")
            self.apply(0.05)

    def balanced(self):
        share = -(-self.accounts // len(self.procs))
        return len(self.owner) == self.accounts and all(self.held(i) <= share for i in self.procs)

    def counts(self):
        return {i: self.held(i) for i in self.procs}

    def signal(self, index, signum):
        """Sends `signum` to one keeper; the seconds until every account it held is held elsewhere."""
        mine = {account for account, owner in self.owner.items() if owner == index}
        started = time.monotonic()
        self.procs[index].send_signal(signum)
        self.procs[index].wait()
        del self.procs[index]
        for account in mine:
            if self.owner.get(account) == index:
                del self.owner[account]
        last = started
        while not mine <= set(self.owner):
            if time.monotonic() - started > 10 * self.ttl_ms / 1000 + 30:
                raise RuntimeError(f"accounts of keeper {index} not taken over: {sorted(mine - set(self.owner))}")
            at = self.apply(0.05)
            if at:
                last = at
        return last - started, len(mine)

    def close(self):
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            proc.wait()


def run(binary, cluster, run_number, keepers_count, accounts, ttl_ms, releases):
    url = cluster.database(f"failover_{ttl_ms}_{releases}_{run_number}")
    keepers = Keepers(binary, url, accounts, ttl_ms, releases)
    try:
        started = time.monotonic()
        for _ in range(keepers_count):
            keepers.start()
        settle = accounts * ttl_ms / 1000 + 30
        keepers.wait(keepers.balanced, settle)
        balanced = time.monotonic() - started
        victim = next(iter(keepers.procs))
        failover, killed_accounts = keepers.signal(victim, signal.SIGKILL)
        keepers.start()
        keepers.wait(keepers.balanced, settle)
        leaver = next(iter(keepers.procs))
        handover, left_accounts = keepers.signal(leaver, signal.SIGTERM)
        return {"balanced_s": balanced, "failover_s": failover, "killed_accounts": killed_accounts,
                "handover_s": handover, "left_accounts": left_accounts}
    finally:
        keepers.close()


def section(build, keepers, accounts, ttls, releases_per_round, runs, log):
    """The table, one row per (TTL, releases per round)."""
    binary = os.path.join(build, "bench", "bench_lease_keeper")
    if not os.path.exists(binary):
        raise RuntimeError(f"{binary} is missing: cmake --build {build} --target bench_lease_keeper")
    lines = [f"{keepers} keepers, {accounts} accounts; seconds as min / median / max over the runs", "",
             "| TTL ms | renew ms | releases / round | runs | start → balanced s | kill -9 → all held elsewhere s "
             "| SIGTERM → all held elsewhere s |",
             "|---|---|---|---|---|---|---|"]
    cluster = Cluster()
    try:
        for ttl_ms in ttls:
            for releases in releases_per_round:
                log(f"lease failover: TTL {ttl_ms} ms, {releases or 'all'} releases per round, {runs} runs")
                rows = [run(binary, cluster, n, keepers, accounts, ttl_ms, releases) for n in range(runs)]

                def spread(key):
                    values = [row[key] for row in rows]
                    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"

                lines.append(f"| {ttl_ms} | {ttl_ms // 3} | {releases or 'all'} | {runs} | {spread('balanced_s')} "
                             f"| {spread('failover_s')} | {spread('handover_s')} |")
    finally:
        cluster.close()
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keepers", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--ttl-ms", default="15000,5000")
    parser.add_argument("--releases-per-round", default="1,0")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    args = parser.parse_args()
    log = lambda what: print(f"bench: {what}", file=sys.stderr, flush=True)  # noqa: E731
    print(section(args.build, args.keepers, args.accounts, [int(t) for t in args.ttl_ms.split(",")],
                  [int(r) for r in args.releases_per_round.split(",")], args.runs, log))


if __name__ == "__main__":
    main()
