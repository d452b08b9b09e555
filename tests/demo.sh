#!/usr/bin/env bash
# The demo: starts the built-in fake APSIS One server on 127.0.0.1, runs two exports with
# `apsis-exportd once` against config/demo.yaml, and shows the files and the job table.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
workdir=$(mktemp -d)
trap 'kill "$fake_pid" 2>/dev/null || true; rm -rf "$workdir"' EXIT

"$build/tests/fake/apsis-fake" --port 0 --port-file "$workdir/port" --ready-after 2s --size 5000000 --quiet &
fake_pid=$!
for _ in $(seq 100); do [ -s "$workdir/port" ] && break; sleep 0.05; done
[ -s "$workdir/port" ] || { echo "demo: apsis-fake did not start" >&2; exit 1; }
export APSIS_FAKE_PORT=$(cat "$workdir/port")
echo "== fake APSIS One server on http://127.0.0.1:$APSIS_FAKE_PORT"

echo "== apsis-exportd check"
"$build/apsis-exportd" check --config config/demo.yaml

echo "== apsis-exportd once duplicate-emails   (CSV, gzip)"
csv=$("$build/apsis-exportd" once --config config/demo.yaml duplicate-emails)
echo "== apsis-exportd once consents-sms       (Excel)"
xlsx=$("$build/apsis-exportd" once --config config/demo.yaml consents-sms)

echo "== published files"
ls -l "$csv" "$xlsx"
echo "== first lines of $csv"
zcat "$csv" | head -n 4 || true  # head closes the pipe early
echo "== its manifest, $csv.json (written after the file, atomically)"
cat "$csv.json"
echo "== apsis-exportd jobs"
"$build/apsis-exportd" jobs --config config/demo.yaml --limit 5
echo "== sqlite3 demo/state/jobs.sqlite3 'SELECT * FROM job_summary'"
sqlite3 -header -column demo/state/jobs.sqlite3 'SELECT id, export, state, polls, seconds, bytes FROM job_summary ORDER BY id DESC LIMIT 5'
echo "== apsis-exportd status"
"$build/apsis-exportd" status --config config/demo.yaml
