-- apsis-exportd job table, schema version 1.
-- Applied by the daemon at start (PRAGMA user_version tracks the version); never edit a
-- released migration: add schema/NNN_*.sql instead.
-- Times are ISO-8601 UTC text with milliseconds ("2026-11-29T06:30:00.000Z") so they read
-- well in sqlite3 and sort correctly as text.

CREATE TABLE jobs (
  id               INTEGER PRIMARY KEY,      -- job id, also in logs as job=<id>
  export           TEXT    NOT NULL,         -- export name from the YAML file
  scheduled_for    TEXT    NOT NULL,         -- the slot this job fills (for `once`/`trigger`: when it was asked for)
  state            TEXT    NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending','submitted','downloading','succeeded','failed','expired','skipped')),
  definition       TEXT    NOT NULL,         -- the export definition the job runs with (JSON, no secrets)
  created_at       TEXT    NOT NULL,
  submit_attempts  INTEGER NOT NULL DEFAULT 0, -- POSTs sent for this job
  submitted_at     TEXT,                     -- when APSIS One accepted the export
  poll_url         TEXT,
  poll_expires_at  TEXT,                     -- submitted_at + the poll URL's validity (1 day)
  polls            INTEGER NOT NULL DEFAULT 0, -- GETs on the poll URL
  last_http_status INTEGER,                  -- status of the last APSIS One answer for this job
  next_poll_at     TEXT,                     -- when the next poll is due (back-off with jitter)
  download_attempts INTEGER NOT NULL DEFAULT 0,
  resubmits        INTEGER NOT NULL DEFAULT 0, -- new submits after the poll URL expired (on_expired: resubmit)
  content_type     TEXT,
  content_encoding TEXT,
  finished_at      TEXT,                     -- set with a final state
  error            TEXT,                     -- why the job failed or expired, for humans
  output_path      TEXT,                     -- the published file, absolute
  bytes            INTEGER,                  -- size of the published file
  sha256           TEXT,                     -- hex SHA-256 of the published file
  UNIQUE (export, scheduled_for)
);

CREATE INDEX jobs_unfinished ON jobs (state) WHERE state IN ('pending','submitted','downloading');
CREATE INDEX jobs_by_export ON jobs (export, scheduled_for);

-- A readable summary for sqlite3: `SELECT * FROM job_summary;`
CREATE VIEW job_summary AS
SELECT id, export, scheduled_for, state, polls, last_http_status,
       CASE WHEN finished_at IS NOT NULL AND submitted_at IS NOT NULL
            THEN round((julianday(finished_at) - julianday(submitted_at)) * 86400, 1) END AS seconds,
       bytes, output_path, error
FROM jobs ORDER BY id;
