"""One `apsis-exportd run` on PostgreSQL (issue 14): a scheduled export ends as a published file and a
`jobs` row, `jobs` and `status` read the table, and an operator's `psql` reads the job_summary view."""

import json
import os
import tempfile
import unittest

from harness import sha256_file, wait_for
from pg_cluster import PgCluster
from pg_harness import PgFake, PgWorkspace


class PgStoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = PgCluster()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = PgFake(self._tmp.name, accounts=1, ready_after="300ms", size=5000)
        # Default lease TTL (no lease_ttl key): one instance holds the only account.
        self.ws = PgWorkspace(self.cluster, self.fake, accounts=1, lease_ttl=None, schedule="every 2s")
        self.instance = None

    def tearDown(self):
        if self.instance:
            self.instance.close()
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def test_a_scheduled_export_is_published_and_jobs_status_and_psql_read_the_table(self):
        self.instance = self.ws.start_instance()
        succeeded = wait_for(lambda: self.ws.rows("state = 'succeeded'"), timeout=60,
                             what="a scheduled job to succeed on PostgreSQL")
        self.assertEqual(self.instance.stop(), 0, self.instance.log())
        row = succeeded[0]
        self.assertEqual((row["export"], row["account"], row["submit_attempts"]), ("e00", "acct00", 1))
        self.assertEqual(os.path.getsize(row["output_path"]), row["bytes"])
        self.assertEqual(sha256_file(row["output_path"]), row["sha256"])
        self.assertEqual(row["bytes"], 5000)

        # The instance ran it as the account's lease holder; its writes were fenced by that lease.
        writes = self.ws.job_writes(f"job_id = {row['id']} AND op = 'UPDATE'")
        self.assertTrue(writes)
        self.assertTrue(all(w["app"] == self.instance.name for w in writes), writes)
        self.assertTrue(all(w["lease_owner"] for w in writes), "every update ran under the account's lease")

        rows = self.ws.rows()
        listed = self.ws.jobs_command()
        self.assertEqual(sorted(j["id"] for j in listed), [r["id"] for r in rows])
        by_id = {j["id"]: j for j in listed}
        self.assertEqual(by_id[row["id"]]["state"], "succeeded")
        self.assertEqual(by_id[row["id"]]["output_path"], row["output_path"])
        self.assertEqual(by_id[row["id"]]["sha256"], row["sha256"])

        status = self.ws.run("status", "--config", self.ws.config)
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("e00", status.stdout)
        self.assertIn("succeeded", status.stdout)
        state_db_line = next(line for line in status.stdout.splitlines() if "state db" in line)
        self.assertIn(self.ws.database, state_db_line, "status names the PostgreSQL database it read")
        status_json = self.ws.run("status", "--config", self.ws.config, "--json")
        self.assertEqual(status_json.returncode, 0, status_json.stderr)
        json.loads(status_json.stdout)

        summary = self.ws.psql(f"SELECT id, export, state, bytes, output_path FROM job_summary WHERE id = {row['id']}")
        self.assertEqual(summary, [[str(row["id"]), "e00", "succeeded", "5000", row["output_path"]]])
        self.assertEqual(len(self.ws.psql("SELECT * FROM job_summary")), len(rows))

    def test_run_on_postgresql_keeps_no_lock_file_beside_its_working_directory(self):
        # A `state_db` that is a URL has no file beside which "<state_db>.lock" could sit: a lock file
        # named after the URL lands in the working directory, and a second instance started there
        # refuses to run.
        self.instance = self.ws.start_instance()
        wait_for(lambda: "started" in self.instance.log(), timeout=30, what="the start")
        self.assertEqual(self.instance.stop(), 0, self.instance.log())
        self.assertEqual([f for f in os.listdir(self.ws.dir) if f.endswith(".lock")], [])

    def test_once_hands_its_job_to_the_accounts_holder_or_refuses_when_nobody_holds_it(self):
        # Nothing runs the account: `once` queues nothing (its own writes would not be fenced).
        refused = self.ws.run("once", "--config", self.ws.config, "e00")
        self.assertEqual(refused.returncode, 69, refused.stderr)
        self.assertIn("no running instance holds account 'acct00'", refused.stderr)
        self.assertEqual(self.ws.rows(), [])

        self.instance = self.ws.start_instance()
        wait_for(lambda: "gained account acct00" in self.instance.log(), timeout=30, what="the lease")
        handed = self.ws.run("once", "--config", self.ws.config, "e00")
        self.assertEqual(handed.returncode, 0, handed.stderr + self.instance.log())
        self.assertIn("handed to instance", handed.stderr)
        # The row `once` followed was run by the instance, under its lease.
        asked = [r for r in self.ws.rows("state = 'succeeded'") if r["submit_attempts"] == 1]
        self.assertTrue(asked)
        for row in asked:
            writes = self.ws.job_writes(f"job_id = {row['id']} AND op = 'UPDATE'")
            self.assertTrue(all(w["app"] == self.instance.name and w["lease_owner"] for w in writes), writes)


if __name__ == "__main__":
    unittest.main()
