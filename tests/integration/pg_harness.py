"""Several `apsis-exportd run` instances on one PostgreSQL database and one YAML file (issue 14).

    cluster = PgCluster()                       # one per test module (pg_cluster.py)
    fake = PgFake(tmp, accounts=30, ready_after="4s")
    ws = PgWorkspace(cluster, fake, accounts=30, lease_ttl="3s")
    instances = ws.start_instances(3)           # each with its own log file and application_name
    ws.wait_all_leased(instances)
    ... a fault ...
    ws.check_fenced_writes(instances)           # from the audit triggers

The database is created fresh per workspace, with audit triggers installed *before* the daemon makes
its schema: an event trigger adds them the moment `jobs` and `leases` exist, in the daemon's own
migration transaction, so no write escapes them. `audit.job_writes` records every INSERT/UPDATE/
DELETE on `jobs` with the writer's application_name (each instance runs with PGAPPNAME set to its
name; libpq takes it since the daemon sets only a fallback) and the lease row of the job's account
as the writing transaction saw it; `audit.lease_changes` records every change of `leases`.
"""

import datetime
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time

from harness import CLIENT_SECRET, DAEMON, FakeServer, Result, sha256_file, wait_for

FINISHED = ("succeeded", "failed", "expired", "skipped")
UNFINISHED = ("pending", "submitted", "downloading")

_databases = itertools.count(1)

AUDIT_SQL = r"""
CREATE SCHEMA audit;

CREATE TABLE audit.job_writes (
  seq          bigserial PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT clock_timestamp(),
  tx_now       timestamptz NOT NULL DEFAULT now(),   -- the now() a fenced write compares with
  app          text NOT NULL DEFAULT current_setting('application_name'),
  backend      integer NOT NULL DEFAULT pg_backend_pid(),
  op           text NOT NULL,
  job_id       bigint,
  account      text,
  export       text,
  old_state    text,
  new_state    text,
  lease_owner  text,        -- the account's lease as this transaction sees it
  lease_epoch  bigint,
  lease_expires_at timestamptz
);

CREATE TABLE audit.lease_changes (
  seq        bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  app        text NOT NULL DEFAULT current_setting('application_name'),
  op         text NOT NULL,
  account    text,
  old_owner  text,
  new_owner  text,
  old_epoch  bigint,
  new_epoch  bigint,
  expires_at timestamptz
);

CREATE FUNCTION audit.record_job_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r record;
  l record;
BEGIN
  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
  SELECT owner, epoch, expires_at INTO l FROM public.leases WHERE account = r.account;
  INSERT INTO audit.job_writes (op, job_id, account, export, old_state, new_state,
                                lease_owner, lease_epoch, lease_expires_at)
  VALUES (TG_OP, r.id, r.account, r.export,
          CASE WHEN TG_OP <> 'INSERT' THEN OLD.state END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.state END,
          l.owner, l.epoch, l.expires_at);
  RETURN NULL;
END $$;

CREATE FUNCTION audit.record_lease_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit.lease_changes (op, account, old_owner, new_owner, old_epoch, new_epoch, expires_at)
  VALUES (TG_OP, coalesce(NEW.account, OLD.account),
          CASE WHEN TG_OP <> 'INSERT' THEN OLD.owner END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.owner END,
          CASE WHEN TG_OP <> 'INSERT' THEN OLD.epoch END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.epoch END,
          CASE WHEN TG_OP <> 'DELETE' THEN NEW.expires_at END);
  RETURN NULL;
END $$;

-- Runs inside the daemon's migration: the triggers exist before any row does.
CREATE FUNCTION audit.install() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('public.jobs') IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_job_writes') THEN
    CREATE TRIGGER audit_job_writes AFTER INSERT OR UPDATE OR DELETE ON public.jobs
      FOR EACH ROW EXECUTE FUNCTION audit.record_job_write();
  END IF;
  IF to_regclass('public.leases') IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_lease_changes') THEN
    CREATE TRIGGER audit_lease_changes AFTER INSERT OR UPDATE OR DELETE ON public.leases
      FOR EACH ROW EXECUTE FUNCTION audit.record_lease_change();
  END IF;
END $$;

CREATE EVENT TRIGGER audit_install ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION audit.install();
"""


def account_name(i):
    return f"acct{i:02d}"


def client_id(i):
    return f"client{i:02d}"


def utc_now_iso():
    """Now as the job table writes times: ISO-8601 UTC with milliseconds (they sort as text)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class PgFake(FakeServer):
    """apsis-fake knowing `accounts` clients, client00..clientNN, all with the harness's secret. No
    rate limits: with several instances and hand-overs, the fake's limits are test_api_contract's
    subject, not these tests'."""

    def __init__(self, workdir, accounts, ready_after="4s", size=20000, *extra):
        clients = [a for i in range(accounts) for a in ("--client", f"{client_id(i)}:{CLIENT_SECRET}")]
        super().__init__(workdir, *clients, "--ready-after", ready_after, "--size", str(size),
                         "--no-limits", *extra)

    def exports_by_account(self):
        """client id -> the number of exports APSIS One made for it (one per successful POST)."""
        counts = {}
        for e in self.stats()["exports"].values():
            counts[e["account"]] = counts.get(e["account"], 0) + 1
        return counts


class PgWorkspace:
    """A temporary directory with one YAML file (N accounts, one export each on `schedule`), a fresh
    database on `cluster` with the audit triggers, and a shared output directory."""

    def __init__(self, cluster, fake, accounts=30, lease_ttl="3s", schedule="every 10s",
                 polling="initial_delay: 200ms\n  multiplier: 2\n  max_delay: 1s",
                 retry="initial_delay: 100ms\n  multiplier: 2\n  max_delay: 1s\n  max_attempts: 6",
                 account_extra=""):
        """`account_extra`: YAML lines added under each account (e.g. "budget: {polls: 120/1m}")."""
        self.cluster = cluster
        self.fake = fake
        self.accounts = [account_name(i) for i in range(accounts)]
        self.dir = tempfile.mkdtemp(prefix="apsis-pgws-")
        self.output_dir = os.path.join(self.dir, "exports")
        self.database = f"apsis_{os.getpid()}_{next(_databases)}"
        self.url = cluster.create_database(self.database)
        cluster.psql(AUDIT_SQL, database=self.database)
        self.config = os.path.join(self.dir, "exportd.yaml")
        with open(os.path.join(self.dir, "secret"), "w") as f:
            f.write(CLIENT_SECRET + "\n")
        text = [f"state_db: \"{self.url}\"", "output_dir: ./exports"]
        if lease_ttl:
            text.append(f"lease_ttl: {lease_ttl}")
        text.append("accounts:")
        for i, name in enumerate(self.accounts):
            text += [f"  {name}:", f"    base_url: {fake.base_url}", f"    client_id: {client_id(i)}",
                     "    client_secret_file: ./secret"]
            text += [f"    {line}" for line in account_extra.splitlines() if line.strip()]
        text += [f"polling:\n  {polling}", f"retry:\n  {retry}", "exports:"]
        for i, name in enumerate(self.accounts):
            text += [f"  e{i:02d}:", f"    account: {name}", "    kind: duplicates",
                     f"    schedule: \"{schedule}\"" if schedule else None,
                     "    output: \"{export}/{job}.{ext}\""]
        with open(self.config, "w") as f:
            f.write("\n".join(line for line in text if line is not None) + "\n")
        self._names = itertools.count(1)

    # --- the daemon ---------------------------------------------------------------------------

    def start_instances(self, count):
        return [self.start_instance() for _ in range(count)]

    def start_instance(self):
        return PgInstance(self, f"inst{next(self._names)}")

    def run(self, *args, timeout=120):
        proc = subprocess.run([DAEMON, *args], capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def jobs_command(self, *args):
        result = self.run("jobs", "--config", self.config, "--json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    # --- the database -------------------------------------------------------------------------

    def psql(self, sql):
        return self.cluster.psql(sql, database=self.database)

    def query_json(self, sql):
        """The rows of `sql` as dicts (json_agg over it: typed values, NULL as None)."""
        # json_agg puts a raw newline between elements (those inside strings are escaped).
        out = self.psql(f"SELECT replace(coalesce(json_agg(q), '[]')::text, E'\\n', ' ') FROM ({sql}) q")
        return json.loads(out[0][0])

    def has_schema(self):
        return self.psql("SELECT to_regclass('public.jobs') IS NOT NULL AND "
                         "to_regclass('public.leases') IS NOT NULL")[0][0] == "t"

    def rows(self, where="true"):
        if not self.has_schema():
            return []
        return self.query_json(f"SELECT * FROM jobs WHERE {where} ORDER BY id")

    def leases(self):
        """account -> {owner, epoch, expires_at, live}: live when unexpired by the database's clock."""
        if not self.has_schema():
            return {}
        return {r["account"]: r for r in self.query_json(
            "SELECT account, owner, epoch, expires_at, owner IS NOT NULL AND expires_at > now() AS live "
            "FROM leases")}

    def instances(self):
        if not self.has_schema():
            return []
        return self.query_json("SELECT *, expires_at > now() AS live FROM instances ORDER BY started_at")

    def held_by(self):
        """instance id -> sorted accounts it holds unexpired."""
        held = {}
        for account, lease in self.leases().items():
            if lease["live"]:
                held.setdefault(lease["owner"], []).append(account)
        return {owner: sorted(accounts) for owner, accounts in held.items()}

    def wait_all_leased(self, instances, timeout=60, balanced=True):
        """Until every configured account is held, unexpired, by one of `instances`, and when
        `balanced` each holds at most its fair share ceil(accounts / instances). (The first instance
        to start, or to reach the database after an outage, sees no other live instance and claims
        every account; the others get theirs as it hands them over, one per renewal round.)
        Returns instance id -> accounts."""
        ids = {i.instance_id() for i in instances}
        share = math.ceil(len(self.accounts) / len(instances)) if balanced else len(self.accounts)

        def leased():
            held = self.held_by()
            covered = sorted(a for owner, accounts in held.items() if owner in ids for a in accounts)
            if covered != sorted(self.accounts):
                return None
            return held if all(len(held.get(i, [])) <= share for i in ids) else None
        return wait_for(leased, timeout=timeout, interval=0.2,
                        what=f"all {len(self.accounts)} accounts leased to {len(ids)} instances, at most {share} each")

    def job_writes(self, where="true"):
        return self.query_json(f"SELECT * FROM audit.job_writes WHERE {where} ORDER BY seq")

    def lease_changes(self, where="true"):
        return self.query_json(f"SELECT * FROM audit.lease_changes WHERE {where} ORDER BY seq")

    def now(self):
        """The database's clock (timestamptz text), to compare with audit rows."""
        return self.psql("SELECT now()")[0][0]

    def dump_tables(self):
        """jobs, leases, instances and the audit tables as JSON files in the workspace (to read after
        a failed test: the database goes with the cluster)."""
        if not self.cluster.running:
            return
        for table in ("jobs", "leases", "instances", "audit.job_writes", "audit.lease_changes"):
            try:
                rows = self.query_json(f"SELECT * FROM {table}")
            except RuntimeError:
                continue
            with open(os.path.join(self.dir, f"{table}.json"), "w") as f:
                json.dump(rows, f, indent=1)

    # --- waiting for jobs ---------------------------------------------------------------------

    def wait_finished_up_to(self, cutoff, timeout=90):
        """Until every job of a slot at or before `cutoff` (ISO text) is finished."""
        def done():
            rows = self.rows(f"scheduled_for <= '{cutoff}'")
            return rows if rows and all(r["state"] in FINISHED for r in rows) else None
        return wait_for(done, timeout=timeout, interval=0.3, what=f"every job up to {cutoff} to finish")

    # --- files --------------------------------------------------------------------------------

    def files(self):
        found = []
        for root, _, names in os.walk(self.output_dir):
            for name in names:
                found.append(os.path.join(root, name))
        return sorted(found)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class PgInstance:
    """One `apsis-exportd run` of the workspace, its stderr in <name>.log, PGAPPNAME=<name> so the
    audit triggers name it as the writer."""

    def __init__(self, workspace, name):
        self.ws = workspace
        self.name = name
        self.log_path = os.path.join(workspace.dir, f"{name}.log")
        self._log = open(self.log_path, "w")
        # Each in a working directory of its own, as on hosts of their own (test_pg_store checks
        # that nothing is kept beside the working directory).
        self.cwd = os.path.join(workspace.dir, name)
        os.makedirs(self.cwd)
        self.proc = subprocess.Popen([DAEMON, "run", "--config", workspace.config],
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=self.cwd,
                                     env={**os.environ, "PGAPPNAME": name})
        self._id = None

    @property
    def pid(self):
        return self.proc.pid

    def instance_id(self, timeout=30):
        """Its id in `instances` (found by pid, kept: the row goes when it stops)."""
        if self._id is None:
            def registered():
                for row in self.ws.instances():
                    if row["pid"] == self.pid:
                        return row["id"]
                if not self.alive():
                    raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
                return None
            self._id = wait_for(registered, timeout=timeout, interval=0.1, what=f"{self.name} to register")
        return self._id

    def held(self):
        return self.ws.held_by().get(self.instance_id(), [])

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def send(self, number):
        self.proc.send_signal(number)

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self, number=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(number)
        code = self.proc.wait(timeout=timeout)
        self._log.close()
        return code

    def close(self):
        """For tearDown: whatever state it is in (stopped included), it goes."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.send_signal(signal.SIGCONT)
            self.proc.wait(timeout=10)
        if not self._log.closed:
            self._log.close()


def wait_seconds(seconds):
    time.sleep(seconds)


def verify_published(testcase, ws, rows):
    """Every succeeded row's file is complete (size and SHA-256 equal the row's); every published
    file (not a manifest, not a temporary) belongs to a row. Returns the temporaries left over."""
    by_path = {r["output_path"]: r for r in rows if r["output_path"]}
    for row in rows:
        if row["state"] != "succeeded":
            continue
        path = row["output_path"]
        testcase.assertTrue(path and os.path.exists(path), f"job {row['id']}: published file {path} missing")
        testcase.assertEqual(os.path.getsize(path), row["bytes"], f"job {row['id']}: size of {path}")
        testcase.assertEqual(sha256_file(path), row["sha256"], f"job {row['id']}: sha256 of {path}")
    temporaries = []
    for path in ws.files():
        if ".apsis-part-" in path:
            temporaries.append(path)
            continue
        if path.endswith(".json") and path[:-len(".json")] in by_path:
            continue  # the manifest beside a published file
        testcase.assertIn(path, by_path, f"{path} is published but no job row names it")
    return temporaries
