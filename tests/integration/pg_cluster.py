"""A throw-away PostgreSQL 15 cluster for integration tests (the same as tests/pg/test_cluster.cpp).

initdb in a temporary directory, the server listening only on a Unix socket there, fsync off.
As root (CI) the cluster runs as the `postgres` system user that Debian's package creates, since
initdb refuses root. Missing PostgreSQL raises (a failing test, not a skip): .ci/install-deps
installs postgresql-15.

    with PgCluster() as cluster:
        url = cluster.url()              # postgresql:///apsis?host=<dir>&user=postgres
        cluster.stop(); cluster.start()  # a database outage
        cluster.psql("SELECT count(*) FROM jobs")
"""

import os
import shutil
import subprocess
import tempfile

BIN_DIR = "/usr/lib/postgresql/15/bin"
OWNER = "postgres"


class PgCluster:
    def __init__(self, database="apsis", bin_dir=BIN_DIR):
        self.bin_dir = bin_dir
        if not os.path.exists(os.path.join(bin_dir, "initdb")):
            raise RuntimeError(f"PostgreSQL 15 is not installed: {bin_dir}/initdb is missing "
                               "(.ci/install-deps installs postgresql-15)")
        self.dir = tempfile.mkdtemp(prefix="apsis-pg-")
        self.data = os.path.join(self.dir, "data")
        self.running = False
        try:
            if os.geteuid() == 0:
                shutil.chown(self.dir, user=OWNER)
            self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync")
            self.start()
            self.create_database(database)
        except BaseException:
            self.close()
            raise
        self.database = database

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def url(self, database=None):
        return f"postgresql:///{database or self.database}?host={self.dir}&user=postgres"

    def start(self):
        # Only the Unix socket in our directory (no TCP port to collide with); fsync off (-F).
        options = f"-k {self.dir} -c listen_addresses='' -F -c max_connections=200"
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "60",
                  "-o", options, "start")
        self.running = True

    def stop(self, mode="immediate"):
        """immediate is a crash as clients see it; fast is an orderly shutdown."""
        self._run("pg_ctl", "-D", self.data, "-w", "-m", mode, "stop")
        self.running = False

    def create_database(self, name):
        self._run("createdb", "-h", self.dir, "-U", "postgres", name)
        return self.url(name)

    def psql(self, sql, database=None):
        """The query's rows as lists of strings (psql's unaligned output)."""
        out = self._run("psql", "-h", self.dir, "-U", "postgres", "-d", database or self.database,
                        "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql)
        return [line.split("\t") for line in out.splitlines()]

    def close(self):
        if self.running:
            subprocess.run(self._command("pg_ctl", "-D", self.data, "-m", "immediate", "stop"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def _command(self, tool, *args):
        argv = [os.path.join(self.bin_dir, tool), *args]
        return ["runuser", "-u", OWNER, "--", *argv] if os.geteuid() == 0 else argv

    def _run(self, tool, *args):
        result = subprocess.run(self._command(tool, *args), capture_output=True, text=True)
        if result.returncode != 0:
            log = os.path.join(self.dir, "server.log")
            server = open(log).read()[-2000:] if os.path.exists(log) else ""
            raise RuntimeError(f"test cluster: {tool} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}\nserver log:\n{server}")
        return result.stdout


if __name__ == "__main__":
    # A smoke check of the fixture itself: start, query, outage, query, remove.
    with PgCluster() as cluster:
        print(cluster.url(), cluster.psql("SELECT 1 + 1"))
        cluster.stop()
        cluster.start()
        print("after restart:", cluster.psql("SELECT current_database()"))
        directory = cluster.dir
    print("removed:", not os.path.exists(directory))
