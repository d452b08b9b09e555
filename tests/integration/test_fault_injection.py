"""Countdown fault injection, as SQLite and Beast test themselves (issue 12).

The sanitizer build counts every write, fsync, rename and directory fsync of a published file and every
SQLite write (step or exec) and fails the N-th (APSIS_FAULT_AT=N) the way the real call fails: EIO, or
SQLITE_IOERR. For N = 1, 2, … a job runs with the N-th operation failing, first in `once`, then in
`run`, and then once more without faults; the loop ends at the first N the run gets through without the
hook firing. After the faulted run nothing partial is under a final name and each row says what
happened (final with an error naming the failure, or unfinished and resumable); after the clean
restart no temporary file is left, every row is final and a job the fault left unfinished succeeded.

Runs only against a binary built with the hook (ctest sets APSIS_FAULT_INJECTION=1 for the sanitizer
build); skipped otherwise."""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from harness import DAEMON, FakeServer, RunningDaemon, Workspace, sha256_file, wait_for

FAULT_BUILD = os.environ.get("APSIS_FAULT_INJECTION") == "1"
MAX_N = int(os.environ.get("APSIS_FAULT_MAX", "200"))
ONCE_TIMEOUT = 20
VERBOSE = os.environ.get("APSIS_FAULT_VERBOSE") == "1"
TEMP_PREFIX = ".apsis-part-"
FINAL = {"succeeded", "failed", "expired", "skipped"}
# strerror(EIO), and SQLite's message for SQLITE_IOERR.
FAILURE_WORDS = ("Input/output error", "disk I/O error")
SANITIZER_WORDS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def all_files(ws):
    found = []
    for root, _, names in os.walk(ws.output_dir):
        found.extend(os.path.join(root, name) for name in names)
    return sorted(found)


def fired(log_file):
    """The points the hook failed in the faulted run: [(point, detail)]."""
    if not os.path.exists(log_file):
        return []
    with open(log_file) as f:
        return [tuple((line.rstrip("\n") + "\t").split("\t")[:2]) for line in f if line.strip()]


def site(point, detail, ws):
    """A call site: the point, and which file or which SQL statement."""
    if detail.startswith(ws.dir):
        kind = "manifest" if detail.endswith(".json") else "directory" if point == "fsync directory" else "file"
        return f"{point} ({kind})"
    return f"{point} ({' '.join(detail.split())[:60]})"


@unittest.skipUnless(FAULT_BUILD, "needs the sanitizer build, which has the fault hook (APSIS_FAULT_INJECTION=1)")
class FaultInjectionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.fake = FakeServer(cls.tmp.name, "--ready-after", "150ms", "--size", "20000")
        cls.fake.limits("off")  # a hundred exports in a minute: no waiting for the account's budget

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.problems = []
        self.sites = set()

    # --- checks -------------------------------------------------------------------------------

    def problem(self, n, text):
        self.problems.append(f"N={n}: {text}")
        if VERBOSE:
            print(f"  PROBLEM {self.problems[-1][:600]}", flush=True)

    def check_published(self, n, ws, when):
        """Every file under a final name is one a row records, whole; manifests are whole JSON."""
        table = ws.rows()
        files = {r["output_path"]: r for r in table if r["output_path"]}
        manifests = {r["manifest_path"] for r in table if r["manifest_path"]}
        for path in all_files(ws):
            if os.path.basename(path).startswith(TEMP_PREFIX):
                continue
            if path in files:
                row = files[path]
                if os.path.getsize(path) != row["bytes"] or sha256_file(path) != row["sha256"]:
                    self.problem(n, f"{when}: {path} is not the file its row records (job {row['id']})")
            elif path in manifests or (path.endswith(".json") and path[:-5] in files):
                try:
                    with open(path) as f:
                        json.load(f)
                except ValueError:
                    self.problem(n, f"{when}: manifest {path} is partial")
            else:
                self.problem(n, f"{when}: {path} is under a final name but no row records it")

    def check_rows_say_what_happened(self, n, ws, when, fault_fired):
        for row in ws.rows():
            if row["state"] == "succeeded":
                if not row["output_path"] or not os.path.exists(row["output_path"]):
                    self.problem(n, f"{when}: job {row['id']} succeeded without its file")
            elif row["state"] in FINAL:
                error = row["error"] or ""
                if not error:
                    self.problem(n, f"{when}: job {row['id']} is {row['state']} without an error")
                elif fault_fired and not any(w in error for w in FAILURE_WORDS):
                    self.problem(n, f"{when}: job {row['id']} is {row['state']}, error not naming the fault: {error}")

    def check_process(self, n, when, code, log):
        if code is None or code < 0 or any(w in log for w in SANITIZER_WORDS):
            self.problem(n, f"{when}: the process died (exit {code}): {log[-2000:]}")

    def restart_and_check(self, n, ws, unfinished_before):
        """A clean `run` until no row is unfinished: no temp file, every row final, jobs done."""
        daemon = RunningDaemon(ws)
        try:
            wait_for(lambda: "started" in daemon.log() or not daemon.alive(), timeout=30, what="the restart")
            wait_for(lambda: all(r["state"] in FINAL for r in ws.rows()) or not daemon.alive(),
                     timeout=30, interval=0.05, what=f"N={n}: every row final after the restart")
        finally:
            code = daemon.stop()
        self.check_process(n, "restart", code, daemon.log())
        if code != 0:
            self.problem(n, f"restart: exit {code}: {daemon.log()[-1500:]}")
        temps = [p for p in all_files(ws) if os.path.basename(p).startswith(TEMP_PREFIX)]
        if temps:
            self.problem(n, f"restart: temporary files left: {temps}")
        self.check_published(n, ws, "after the restart")
        self.check_rows_say_what_happened(n, ws, "after the restart", False)
        for row in ws.rows():
            if row["state"] not in FINAL:
                self.problem(n, f"restart: job {row['id']} still {row['state']}")
            elif row["id"] in unfinished_before and row["state"] != "succeeded":
                self.problem(n, f"restart: job {row['id']} left unfinished by the fault ended "
                                f"{row['state']}: {row['error']}")

    # --- the loops ----------------------------------------------------------------------------

    def loop(self, mode, faulted_run):
        """faulted_run(ws, env) -> (exit code, log, completed): one run with the fault armed."""
        start = time.monotonic()
        for n in range(1, MAX_N + 1):
            ws = Workspace(self.fake)
            try:
                log_file = os.path.join(ws.dir, "fault.log")
                code, log, completed = faulted_run(ws, {"APSIS_FAULT_AT": str(n), "APSIS_FAULT_LOG": log_file})
                hits = fired(log_file)
                if VERBOSE:
                    table = ws.rows()
                    print(f"{mode} N={n} ({time.monotonic() - start:.0f}s): {[(p, d[:50]) for p, d in hits]} exit "
                          f"{code}; rows {[(r['state'], (r['error'] or '')[:150]) for r in table]}", flush=True)
                self.sites.update(site(p, d, ws) for p, d in hits)
                self.check_process(n, f"{mode} with the fault", code, log)
                if not hits:
                    if not completed:
                        self.problem(n, f"{mode}: nothing was injected, yet the job did not succeed: {log[-1500:]}")
                    print(f"\n{mode}: N={n} ran with nothing left to fail ({time.monotonic() - start:.0f}s)")
                    return n
                self.check_published(n, ws, f"{mode} after {hits[0][0]}")
                self.check_rows_say_what_happened(n, ws, f"{mode} after {hits[0][0]}", True)
                unfinished = {r["id"] for r in ws.rows() if r["state"] not in FINAL}
                self.restart_and_check(n, ws, unfinished)
            finally:
                ws.cleanup()
        self.fail(f"{mode}: the hook still fired at N={MAX_N}")

    def once_with_fault(self, ws, env):
        proc = subprocess.Popen([DAEMON, "once", "--config", ws.config, "dupes"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
        try:
            _, log = proc.communicate(timeout=ONCE_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, log = proc.communicate()
            log += f"\n[test] once still running after {ONCE_TIMEOUT}s: killed"
            self.problem(env["APSIS_FAULT_AT"], f"once hangs after the fault {fired(env['APSIS_FAULT_LOG'])}")
        table = ws.rows()
        completed = proc.returncode == 0 and len(table) == 1 and table[0]["state"] == "succeeded"
        return proc.returncode, log, completed

    def run_with_fault(self, ws, env):
        trigger = ws.run("trigger", "--config", ws.config, "dupes")
        self.assertEqual(trigger.returncode, 0, trigger.stderr)
        daemon = RunningDaemon(ws, env=env)
        try:
            wait_for(lambda: not daemon.alive() or all(r["state"] in FINAL for r in ws.rows()),
                     timeout=30, interval=0.05, what="the faulted run to finish its job or exit")
        finally:
            code = daemon.stop()
        table = ws.rows()
        completed = code == 0 and len(table) == 1 and table[0]["state"] == "succeeded"
        return code, daemon.log(), completed

    def test_every_operation_of_once_and_run_fails_in_turn(self):
        reached = {"once": self.loop("once", self.once_with_fault),
                   "run": self.loop("run", self.run_with_fault)}
        points = sorted({s.split(" (")[0] for s in self.sites})
        print(f"fault injection: N reached {reached}; {len(points)} points covered ({', '.join(points)}); "
              f"{len(self.sites)} call sites:\n  " + "\n  ".join(sorted(self.sites)))
        self.assertEqual(self.problems, [], "\n".join(self.problems))


if __name__ == "__main__":
    unittest.main()
