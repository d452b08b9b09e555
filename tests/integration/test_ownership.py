"""Issue 13, one owner per row: one service per state database (`run` holds "<state_db>.lock"), and a
`once` never runs a row a service may run too. Each test counts what reached APSIS One: exactly one
submit per row and one published file."""

import signal
import subprocess
import tempfile
import unittest

from harness import DAEMON, FakeServer, RunningDaemon, Workspace, wait_for

EXIT_SERVICE_RUNNING = 75
EXIT_INTERRUPTED = 130


class OwnershipTest(unittest.TestCase):
    fake_args = ("--ready-after", "300ms", "--size", "2000")

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.fake = FakeServer(self._tmp.name, *self.fake_args)
        self.ws = Workspace(self.fake, exports={"dupes": 'kind: duplicates\n    output: "{export}/{job}.{ext}"'})
        self.processes = []

    def tearDown(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
        self.fake.stop()
        self.ws.cleanup()
        self._tmp.cleanup()

    def start_run(self):
        daemon = RunningDaemon(self.ws)
        self.processes.append(daemon.proc)
        return daemon

    def start_service(self):
        daemon = self.start_run()
        wait_for(lambda: "started:" in daemon.log(), what="the service to start")
        return daemon

    def start_once(self):
        once = subprocess.Popen([DAEMON, "once", "--config", self.ws.config, "dupes"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.processes.append(once)
        return once

    def assert_one_submit_and_one_file_per_row(self, rows):
        # One export at APSIS One per row. (submit_attempts may exceed 1: several processes on one
        # account share its limits at the fake, and a POST refused with 429 is tried again.)
        self.assertEqual(self.fake.stats()["submissions"], len(rows), "one export at APSIS One per row")
        for row in rows:
            self.assertEqual(row["state"], "succeeded", row)
            self.assertGreaterEqual(row["submit_attempts"], 1, row)
        files = self.ws.files()
        self.assertEqual(sorted(self.ws.output_dir + "/" + f for f in files), sorted(r["output_path"] for r in rows))
        self.assertEqual([f for f in files if ".apsis-part-" in f], [])

    def test_a_second_run_on_the_same_state_database_refuses_and_the_first_keeps_working(self):
        first = self.start_service()
        second = self.start_run()
        wait_for(lambda: not second.alive(), timeout=10, what="the second `run` to refuse")
        self.assertEqual(second.stop(), EXIT_SERVICE_RUNNING, second.log())
        refusal = second.log()
        self.assertIn(self.ws.db + ".lock", refusal)
        self.assertIn(f"pid {first.proc.pid}", refusal)
        self.assertNotIn("started:", refusal)

        self.assertTrue(first.alive())
        for _ in range(3):
            self.assertEqual(self.ws.run("trigger", "--config", self.ws.config, "dupes").returncode, 0)
        wait_for(lambda: len(self.ws.rows("state = 'succeeded'")) == 3, timeout=30, what="three triggered jobs")
        self.assertEqual(first.stop(), 0)
        self.assert_one_submit_and_one_file_per_row(self.ws.rows())

        # The lock went with the first service: a new one starts.
        again = self.start_service()
        self.assertEqual(again.stop(), 0)

    def test_once_while_the_service_runs_hands_the_job_to_it_and_follows_it_to_the_end(self):
        service = self.start_service()
        once = self.start_once()
        out, err = once.communicate(timeout=60)
        self.assertEqual(once.returncode, 0, err)
        self.assertIn(f"handed to the running service (pid {service.proc.pid})", err)
        rows = self.ws.rows()
        self.assertEqual(len(rows), 1)
        self.assertEqual(out.strip(), rows[0]["output_path"])
        self.assertIn(f"job={rows[0]['id']} picked up in state pending", service.log())
        self.assertEqual(service.stop(), 0)
        self.assert_one_submit_and_one_file_per_row(rows)

    def test_once_handing_a_failing_job_to_the_service_exits_as_a_failed_once(self):
        service = self.start_service()
        self.fake.faults(submit_400=1)
        once = self.start_once()
        out, err = once.communicate(timeout=60)
        self.assertEqual(once.returncode, 1, err)
        self.assertEqual(out, "")
        self.assertEqual([r["state"] for r in self.ws.rows()], ["failed"])
        self.assertIn("failed", err)
        self.assertEqual(service.stop(), 0)

    def test_ctrl_c_stops_following_and_the_job_goes_on_in_the_service(self):
        self.fake.faults(ready_after_ms=3000)
        service = self.start_service()
        once = self.start_once()
        wait_for(lambda: self.ws.rows("state = 'submitted'"), what="the service to submit")
        once.send_signal(signal.SIGINT)
        out, err = once.communicate(timeout=10)
        self.assertEqual(once.returncode, EXIT_INTERRUPTED, err)
        self.assertIn("continues in the service", err)
        wait_for(lambda: self.ws.rows("state = 'succeeded'"), timeout=30, what="the service to finish the job")
        self.assertEqual(service.stop(), 0)
        self.assert_one_submit_and_one_file_per_row(self.ws.rows())

    def test_a_run_starting_while_once_runs_alone_leaves_its_job_to_it(self):
        self.fake.faults(ready_after_ms=3000)
        once = self.start_once()
        wait_for(lambda: self.ws.rows("state = 'submitted'"), what="the once to submit")
        service = self.start_service()
        out, err = once.communicate(timeout=60)
        self.assertEqual(once.returncode, 0, err)
        self.assertNotIn("handed to the running service", err)
        self.assertIn("left to the `once` running it", service.log())
        self.assertNotIn("picked up", service.log())
        self.assertEqual(service.stop(), 0)
        rows = self.ws.rows()
        self.assertEqual(out.strip(), rows[0]["output_path"])
        self.assert_one_submit_and_one_file_per_row(rows)

    def test_a_once_killed_while_the_service_runs_has_its_job_taken_over(self):
        self.fake.faults(ready_after_ms=4000)
        once = self.start_once()
        wait_for(lambda: self.ws.rows("state = 'submitted'"), what="the once to submit")
        service = self.start_service()
        wait_for(lambda: "left to the `once` running it" in service.log(), what="the service to leave the job alone")
        once.kill()
        once.communicate()
        # The service notices the `once` is gone and finishes the job from its row: no second export.
        wait_for(lambda: self.ws.rows("state = 'succeeded'"), timeout=40, what="the service to finish the job")
        self.assertIn("taken over from a `once` that did not finish", service.log())
        self.assertEqual(service.stop(), 0)
        self.assert_one_submit_and_one_file_per_row(self.ws.rows())

    def test_a_run_starting_among_onces_never_shares_a_row_with_them(self):
        # Each `once` either runs its row alone (its lock taken before `run` can see the row) or hands
        # it to the service: never both.
        onces = [self.start_once() for _ in range(2)]
        service = self.start_run()
        onces += [self.start_once() for _ in range(2)]
        for once in onces:
            out, err = once.communicate(timeout=60)
            self.assertEqual(once.returncode, 0, err)
        wait_for(lambda: "started:" in service.log(), what="the service to start")
        self.assertEqual(service.stop(), 0)
        self.assert_one_submit_and_one_file_per_row(self.ws.rows())

if __name__ == "__main__":
    unittest.main()
