"""Three `apsis-exportd run` instances on one PostgreSQL database and one YAML file share 30 accounts
by lease (issue 14, item 7). Each test starts them, waits until every account is held by exactly one,
does one thing to one instance (or to the database), and then, after every job up to that moment
has finished, checks what must hold whatever happened:

  * one row per slot, no failed job, every succeeded job's file complete (size and SHA-256 equal the
    row's) and no published file without a row;
  * the fake's submissions <= rows (plus resubmits), plus at most one per instance killed while a
    POST was in flight, and every export the fake made is named by a row but that many;
  * every UPDATE of a job row was made by an instance that held the row's account at that moment
    by the database's clock (the audit trigger records the writer and the lease it saw: see
    pg_harness.py). This is what fencing promises, and it fails if any write gets through without.

Instances are named inst1.. (their PGAPPNAME, logs in <workspace>/instN.log).

PgFailoverTest (kill -9, SIGTERM: about 1.5 minutes) and PgSlowFaultTest (SIGSTOP past the TTL, a
20 s database outage: about 2 minutes; skipped with APSIS_PG_SKIP_SLOW=1) can run apart:
    python3 -m unittest test_pg_instances.PgFailoverTest
"""

import json
import os
import signal
import tempfile
import time
import unittest

from harness import wait_for
from pg_cluster import PgCluster
from pg_harness import FINISHED, PgFake, PgWorkspace, utc_now_iso, verify_published

ACCOUNTS = 30
INSTANCES = 3
LEASE_TTL = "3s"
PERIOD = 10  # seconds: every account's export runs "every 10s", all on the same slots
# The account budget is not these tests' subject: enough for a job polling every second.
BUDGET = "budget: {submits: 2/1s, polls: 120/1m}"

_cluster = None


def export_id(poll_url):
    """The fake's export id: the last part of the poll URL it answered a submit with."""
    return poll_url.rstrip("/").rsplit("/", 1)[-1]


def setUpModule():
    global _cluster
    _cluster = PgCluster()


def tearDownModule():
    _cluster.close()


class PgInstancesCase(unittest.TestCase):
    ready_after = "6s"   # a job polls for about 6 s of each 10 s period
    size = 20000

    def setUp(self):
        self.cluster = _cluster
        if not self.cluster.running:
            self.cluster.start()
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = PgFake(self._tmp.name, ACCOUNTS, self.ready_after, self.size)
        self.ws = PgWorkspace(self.cluster, self.fake, ACCOUNTS, LEASE_TTL, f"every {PERIOD}s",
                              account_extra=BUDGET)
        self.instances = []

    def tearDown(self):
        for instance in self.instances:
            instance.close()
        self.fake.stop()
        if os.environ.get("APSIS_PG_KEEP"):
            self.ws.dump_tables()
            print(f"\nkept {self.ws.dir} (logs, files, tables as JSON)")
        else:
            self.ws.cleanup()
        self._tmp.cleanup()

    # --- steps ----------------------------------------------------------------------------------

    def start(self, count=INSTANCES):
        started = self.ws.start_instances(count)
        self.instances += started
        return started

    def logs(self, lines=12):
        return "".join(f"\n--- {i.name} (pid {i.pid}) ---\n" + "\n".join(i.log().splitlines()[-lines:])
                       for i in self.instances)

    def wait(self, condition, what, timeout=30, interval=0.2):
        try:
            return wait_for(condition, timeout=timeout, interval=interval, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}{self.logs()}") from None

    def wait_balanced(self, instances, timeout=60, balanced=True):
        try:
            return self.ws.wait_all_leased(instances, timeout=timeout, balanced=balanced)
        except AssertionError as e:
            raise AssertionError(f"{e}\nleases held: "
                                 f"{ {k[:8]: len(v) for k, v in self.ws.held_by().items()} }{self.logs()}") from None

    def wait_slot_phase(self, low, high):
        """Until the wall clock is `low`..`high` seconds into a 10 s period: the slot's POSTs are
        done by then (so no fault below cuts one), and its jobs are polling."""
        while not low <= time.time() % PERIOD < high:
            time.sleep(0.05)

    def polling_jobs_of(self, accounts):
        """The jobs of `accounts` submitted and polled at least once (by the fake's count: the row's
        `polls` is written once a minute), when none of theirs waits to be submitted: a moment with
        no POST of theirs in flight."""
        names = ",".join(f"'{a}'" for a in accounts)
        if self.ws.rows(f"account IN ({names}) AND state = 'pending'"):
            return None
        exports = self.fake.stats()["exports"]
        return [r for r in self.ws.rows(f"account IN ({names}) AND state = 'submitted'")
                if exports.get(export_id(r["poll_url"]), {}).get("polls", 0) > 0] or None

    def start_and_pick_victim(self):
        """Three instances, every account held: the one holding most is the victim, the others
        survive. (Not waiting for the balance, which takes a renewal round per account handed over.)"""
        instances = self.start()
        held = self.wait_balanced(instances, balanced=False)
        victim = max(instances, key=lambda i: len(held.get(i.instance_id(), [])))
        return instances, victim, [i for i in instances if i is not victim]

    def jobs_of(self, ids):
        return self.ws.rows(f"id IN ({','.join(str(i) for i in ids)})")

    # --- what must hold after any of it -----------------------------------------------------------

    def finish_and_check(self, survivors, everyone, killed_during_post=0):
        """Waits until every job up to now has finished, stops the survivors with SIGTERM, and checks
        the invariants of the module docstring."""
        cutoff = utc_now_iso()
        started = time.monotonic()
        try:
            self.ws.wait_finished_up_to(cutoff, timeout=90)
            print(f"\nevery job up to now finished after {time.monotonic() - started:.1f} s more")
        except AssertionError as e:
            stuck = [(r["id"], r["account"], r["state"]) for r in self.ws.rows(
                f"scheduled_for <= '{cutoff}' AND state NOT IN ('succeeded','failed','expired','skipped')")]
            raise AssertionError(f"{e}: unfinished {stuck}{self.logs()}") from None
        for instance in survivors:
            self.assertEqual(instance.stop(), 0, f"{instance.name} on SIGTERM:{self.logs()}")
        rows = self.ws.rows()
        self.check_rows(rows, cutoff)
        temporaries = verify_published(self, self.ws, rows)
        if temporaries:
            print(f"\nnote: temporary files left behind: {temporaries}")
        self.check_submissions(rows, killed_during_post)
        self.check_fenced_writes(everyone)
        self.check_manifests_name_the_publisher(rows, everyone)
        return rows

    def check_status_shows_the_holders(self, instances):
        """`status --json` lists the live instances with the accounts each holds, and each export's
        run_by is its account's lease holder (read at about the same moment: nothing moves now)."""
        result = self.ws.run("status", "--config", self.ws.config, "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        status = json.loads(result.stdout)
        held = self.ws.held_by()
        listed = {i["id"]: sorted(i["accounts"]) for i in status["instances"]}
        self.assertEqual(listed, {i.instance_id(): held[i.instance_id()] for i in instances})
        owner_of = {a: owner for owner, accounts in held.items() for a in accounts}
        run_by = {e["name"]: e["run_by"] for e in status["exports"]}
        self.assertEqual(run_by, {f"e{i:02d}": owner_of[a] for i, a in enumerate(self.ws.accounts)})

    def check_manifests_name_the_publisher(self, rows, everyone):
        """Each succeeded row's manifest describes that job and names an instance that ran it: the one
        that wrote its success or, when the lease moved between a publish and its row write (a
        database outage), the earlier holder whose manifest of the same job and bytes was kept."""
        ids = {i.name: i.instance_id() for i in everyone}
        runners, finisher = {}, {}
        for w in self.ws.job_writes("op = 'UPDATE'"):
            runners.setdefault(w["job_id"], set()).add(ids[w["app"]])
            if w["new_state"] == "succeeded" and w["old_state"] != "succeeded":
                finisher[w["job_id"]] = ids[w["app"]]
        kept = 0
        for row in rows:
            if row["state"] != "succeeded" or not row["manifest_path"]:
                continue
            with open(row["manifest_path"]) as f:
                manifest = json.load(f)
            written_by = manifest["written_by"]["instance"]
            self.assertEqual(manifest["job_id"], row["id"], f"manifest of job {row['id']}")
            self.assertIn(written_by, runners.get(row["id"], set()), f"manifest of job {row['id']}")
            kept += written_by != finisher[row["id"]]
        if kept:
            print(f"\nmanifests kept from an earlier holder of the job: {kept}")

    def check_rows(self, rows, cutoff):
        duplicates = self.ws.psql("SELECT export, scheduled_for FROM jobs GROUP BY 1, 2 HAVING count(*) > 1")
        self.assertEqual(duplicates, [], "one row per slot")
        done = [r for r in rows if r["scheduled_for"] <= cutoff]
        self.assertTrue(all(r["state"] in FINISHED for r in done))
        bad = [(r["id"], r["account"], r["state"], r["error"]) for r in done if r["state"] in ("failed", "expired")]
        self.assertEqual(bad, [], "no job failed or expired")
        states = {}
        for r in rows:
            states[r["state"]] = states.get(r["state"], 0) + 1
        print(f"\njobs by state: {states}")
        self.assertEqual(sorted({r["account"] for r in rows if r["state"] == "succeeded"}), self.ws.accounts,
                         "a job succeeded on every account")

    def check_submissions(self, rows, killed_during_post):
        stats = self.fake.stats()
        submissions = stats["submissions"]
        attempts = sum(r["submit_attempts"] for r in rows)
        submitted = sum(1 for r in rows if r["submit_attempts"] > 0)
        resubmits = sum(r["resubmits"] for r in rows)
        print(f"submissions {submissions}, rows submitted {submitted}, resubmits {resubmits}, "
              f"submit attempts {attempts}")
        # Every POST is counted in its row before it is sent.
        self.assertLessEqual(submissions, attempts, "a POST that no row counted")
        self.assertLessEqual(submissions, submitted + resubmits + killed_during_post, "a second submit")
        # Each export the fake made is named by exactly one row, but those whose answer a kill cut off.
        named = {}
        for r in rows:
            for url in (r["poll_url"], r["previous_poll_url"]):
                if url:
                    named.setdefault(export_id(url), []).append(r["id"])
        orphans = [e for e in stats["exports"] if e not in named]
        self.assertLessEqual(len(orphans), killed_during_post, f"exports no row names: {orphans}")
        self.assertEqual([e for e, ids in named.items() if len(ids) > 1], [], "an export named by two rows")

    def check_fenced_writes(self, everyone):
        """Every UPDATE of a job row came from an instance holding the row's account, unexpired by
        the database's clock, in the writing transaction (the audit trigger's record of it)."""
        ids = {i.name: i.instance_id() for i in everyone}
        writers = {r[0] for r in self.ws.psql("SELECT DISTINCT app FROM audit.job_writes WHERE op = 'UPDATE'")}
        self.assertLessEqual(writers, set(ids), "job rows updated by a process that is no instance")
        mapping = ",".join(f"('{name}', '{instance_id}')" for name, instance_id in ids.items())
        unfenced = self.ws.query_json(
            "SELECT w.seq, w.app, w.job_id, w.account, w.old_state, w.new_state, w.tx_now, w.lease_owner, "
            "w.lease_epoch, w.lease_expires_at FROM audit.job_writes w "
            f"JOIN (VALUES {mapping}) AS m(app, id) ON m.app = w.app "
            "WHERE w.op = 'UPDATE' AND (w.lease_owner IS DISTINCT FROM m.id OR NOT w.lease_expires_at > w.tx_now) "
            "ORDER BY w.seq LIMIT 20")
        self.assertEqual(unfenced, [], "job rows updated without the account's lease")
        count = self.ws.psql("SELECT count(*) FROM audit.job_writes WHERE op = 'UPDATE'")[0][0]
        print(f"job row updates audited: {count}, all under their account's lease")

    def check_finished_elsewhere(self, before, victim, survivors):
        """The jobs `before` (rows as the victim left them) ended, each from the poll URL it had:
        no second submit, the last writes made by a survivor."""
        after = {r["id"]: r for r in self.jobs_of([r["id"] for r in before])}
        for old in before:
            new = after[old["id"]]
            self.assertEqual(new["state"], "succeeded", new)
            self.assertEqual((new["submit_attempts"], new["resubmits"], new["poll_url"]),
                             (old["submit_attempts"], 0, old["poll_url"]), f"job {old['id']} submitted again")
            last = self.ws.job_writes(f"job_id = {old['id']} AND op = 'UPDATE'")[-1]
            self.assertIn(last["app"], {s.name for s in survivors}, f"job {old['id']} finished by {last['app']}")
        self.assertFalse(any(w["app"] == victim.name for w in self.ws.job_writes(
            f"op = 'UPDATE' AND new_state = 'succeeded' AND job_id IN ({','.join(str(r['id']) for r in before)})")))


class PgFailoverTest(PgInstancesCase):
    def test_each_account_has_one_holder_and_sigterm_hands_them_over_at_once(self):
        instances = self.start()
        held = self.wait_balanced(instances)
        for instance in instances:
            mine = held[instance.instance_id()]
            self.assertLessEqual(len(mine), ACCOUNTS // INSTANCES, instance.name)
            gained = {line.split("gained account ")[1].split()[0]
                      for line in instance.log().splitlines() if "lease: gained account " in line}
            self.assertLessEqual(set(mine), gained, f"{instance.name} logs what it gained")
        self.assertEqual(sorted(a for accounts in held.values() for a in accounts), sorted(self.ws.accounts))
        self.wait(lambda: len({r["account"] for r in self.ws.rows("state = 'succeeded'")}) == ACCOUNTS,
                  "a finished job on every account", timeout=40)
        self.check_status_shows_the_holders(instances)

        leaving, stayers = instances[0], instances[1:]
        leaving_id = leaving.instance_id()
        self.wait_slot_phase(2, 4)
        polling = self.wait(lambda: self.polling_jobs_of(leaving.held()), f"{leaving.name}'s jobs to poll", timeout=20)
        self.assertEqual(leaving.stop(), 0, leaving.log())
        # Released as it stopped, not left to expire: nothing is held by it a moment after it exits.
        self.assertEqual([a for a, lease in self.ws.leases().items() if lease["owner"] == leaving_id and lease["live"]],
                         [], "leases still held by the instance that stopped")
        self.assertNotIn(leaving_id, [r["id"] for r in self.ws.instances()])
        self.wait_balanced(stayers, timeout=15)
        self.wait(lambda: all(r["state"] in FINISHED for r in self.jobs_of([p["id"] for p in polling])),
                  "the stopped instance's jobs to finish elsewhere", timeout=60)
        self.check_finished_elsewhere(polling, leaving, stayers)
        self.finish_and_check(stayers, instances)

    def test_kill_9_mid_poll_moves_the_accounts_and_their_jobs_finish_elsewhere_without_a_second_submit(self):
        instances, victim, survivors = self.start_and_pick_victim()
        self.wait(lambda: self.ws.rows("state = 'succeeded'"), "the first jobs to finish", timeout=40)
        self.wait_slot_phase(2, 4)
        accounts = victim.held()
        polling = self.wait(lambda: self.polling_jobs_of(accounts), f"{victim.name}'s jobs to poll", timeout=20)
        victim.kill()
        killed = time.monotonic()
        print(f"\nkilled {victim.name} holding {len(accounts)} accounts, {len(polling)} jobs polling")

        self.wait_balanced(survivors, timeout=30)
        print(f"its accounts held by the others after {time.monotonic() - killed:.1f} s")
        moved = self.ws.held_by()
        for account in accounts:
            owner = next(s for s in survivors if account in moved.get(s.instance_id(), []))
            self.assertIn(f"lease: gained account {account} ", owner.log())
        self.wait(lambda: all(r["state"] in FINISHED for r in self.jobs_of([p["id"] for p in polling])),
                  "the killed instance's jobs to finish elsewhere", timeout=60)
        self.check_finished_elsewhere(polling, victim, survivors)
        self.finish_and_check(survivors, instances, killed_during_post=1)


class PgDownloadFailoverTest(PgInstancesCase):
    ready_after = "2s"
    size = 50000

    def test_kill_9_mid_download_the_new_owner_downloads_again_from_the_same_poll_url(self):
        # Every download sends its first 20 bytes 100 ms apart: each takes over 2 s.
        self.fake.faults(download_slow=-1)
        instances, victim, survivors = self.start_and_pick_victim()
        self.wait(lambda: self.ws.rows("state = 'succeeded'"), "the first jobs to finish", timeout=40)
        accounts = victim.held()
        names = ",".join(f"'{a}'" for a in accounts)
        downloading = self.wait(lambda: self.ws.rows(f"account IN ({names}) AND state = 'downloading'"),
                                f"{victim.name} to download", timeout=30, interval=0.05)
        stats = self.fake.stats()
        victim.kill()
        self.assertGreater(stats["downloads_started"], stats["downloads_completed"], "a download under way")
        # A download may have ended between the look and the kill: what the victim finished is not
        # the survivors' to finish. Read after its death, the rows say which it left.
        downloading = [r for r in self.jobs_of([d["id"] for d in downloading]) if r["state"] not in FINISHED]
        self.assertTrue(downloading, "the victim died with a download under way")
        print(f"\nkilled {victim.name} with {len(downloading)} downloads under way")

        self.wait_balanced(survivors, timeout=30)
        self.wait(lambda: all(r["state"] in FINISHED for r in self.jobs_of([d["id"] for d in downloading])),
                  "the interrupted downloads to finish elsewhere", timeout=60)
        self.check_finished_elsewhere(downloading, victim, survivors)
        for row in self.jobs_of([d["id"] for d in downloading]):
            self.assertEqual(row["bytes"], self.size)
        self.finish_and_check(survivors, instances, killed_during_post=1)


@unittest.skipIf(os.environ.get("APSIS_PG_SKIP_SLOW") == "1", "APSIS_PG_SKIP_SLOW=1")
class PgSlowFaultTest(PgInstancesCase):
    def test_slow_an_instance_paused_past_its_ttl_writes_nothing_for_the_accounts_it_lost(self):
        instances, victim, others = self.start_and_pick_victim()
        victim_id = victim.instance_id()
        self.wait(lambda: self.ws.rows("state = 'succeeded'"), "the first jobs to finish", timeout=40)
        self.wait_slot_phase(0.6, 2)
        accounts = victim.held()
        polling = self.wait(lambda: self.polling_jobs_of(accounts), f"{victim.name}'s jobs to poll", timeout=20)
        victim.send(signal.SIGSTOP)
        paused_at = self.ws.now()
        print(f"\npaused {victim.name} holding {len(accounts)} accounts, {len(polling)} jobs polling")

        # The others claim its accounts once its leases expire (by the database's clock).
        paused = time.monotonic()
        self.wait_balanced(others, timeout=30)
        print(f"its accounts held by the others after {time.monotonic() - paused:.1f} s")
        # ... and go on with its jobs: rows it would overwrite if a write got through. It wakes up
        # just as those exports become ready at the fake (6 s after their submit), its polls long
        # overdue: every reason to download and publish what is no longer its job.
        self.wait_slot_phase(6.1, 6.6)
        victim.send(signal.SIGCONT)
        resumed_at = self.ws.now()
        self.wait(lambda: all(f"lease: lost account {a}:" in victim.log() for a in accounts),
                  f"{victim.name} to notice every account it lost", timeout=20)
        self.assertTrue(victim.alive(), victim.log())

        # Between its pause and its first claim afterwards, it wrote nothing to `jobs`.
        first_claim = self.ws.psql(
            f"SELECT min(at) FROM audit.lease_changes WHERE new_owner = '{victim_id}' "
            f"AND old_owner IS DISTINCT FROM '{victim_id}' AND at > '{paused_at}'")[0][0] or "infinity"
        late = self.ws.job_writes(f"app = '{victim.name}' AND op = 'UPDATE' AND tx_now > '{paused_at}' "
                                  f"AND at < '{first_claim}'::timestamptz")
        self.assertEqual(late, [], f"{victim.name} wrote after losing its leases (resumed at {resumed_at})")

        # Then it takes part again like any instance.
        self.wait_balanced(instances, timeout=60)
        self.wait(lambda: all(r["state"] in FINISHED for r in self.jobs_of([p["id"] for p in polling])),
                  "the paused instance's jobs to finish", timeout=60)
        self.check_finished_elsewhere(polling, victim, others)
        self.finish_and_check(instances, instances)

    def test_slow_a_20_s_database_outage_stops_the_accounts_then_they_are_reclaimed_and_resumed(self):
        instances = self.start()
        self.wait_balanced(instances, balanced=False)
        self.wait(lambda: self.ws.rows("state = 'succeeded'"), "the first jobs to finish", timeout=40)
        self.wait_slot_phase(2, 4)
        polling = self.wait(lambda: self.polling_jobs_of(self.ws.accounts), "jobs to poll", timeout=20)
        self.cluster.stop()
        print(f"\ndatabase stopped with {len(polling)} jobs polling")
        time.sleep(20)
        self.cluster.start()
        restarted = time.monotonic()
        for instance in instances:
            self.assertTrue(instance.alive(), instance.log()[-3000:])
            self.assertIn("lease: lost account ", instance.log(), f"{instance.name} let its accounts go")

        self.wait_balanced(instances, timeout=60, balanced=False)
        print(f"every account held again {time.monotonic() - restarted:.1f} s after the database came back")
        self.wait(lambda: all(r["state"] in FINISHED for r in self.jobs_of([p["id"] for p in polling])),
                  "the jobs polling at the outage to finish", timeout=60)
        print(f"the jobs polling at the outage finished {time.monotonic() - restarted:.1f} s after it")
        after = {r["id"]: r for r in self.jobs_of([p["id"] for p in polling])}
        for old in polling:
            new = after[old["id"]]
            self.assertEqual(new["state"], "succeeded", new)
            self.assertEqual((new["submit_attempts"], new["poll_url"]), (old["submit_attempts"], old["poll_url"]),
                             f"job {old['id']} submitted again")
        self.finish_and_check(instances, instances)


if __name__ == "__main__":
    unittest.main()
