-- apsis-exportd job table, schema version 3: APSIS One's documented poll contract.

-- Which submit-answer field the poll URL came from: 'file_download_url' answers 404 while the export
-- is being made, 'file_download_url_v2' answers 202 (and 404 for an unknown export). A resumed job
-- reads its answers by this, whatever the configuration says now.
ALTER TABLE jobs ADD COLUMN poll_url_field TEXT
  CHECK (poll_url_field IN ('file_download_url','file_download_url_v2'));
-- 503 answers in a row on the current poll URL: a few mean the export failed at APSIS.
ALTER TABLE jobs ADD COLUMN polls_503_in_a_row INTEGER NOT NULL DEFAULT 0;
-- A job that requested a new export (after an expired URL or a failed export) keeps the URL it
-- gave up on and why; `resubmits` counts them.
ALTER TABLE jobs ADD COLUMN previous_poll_url TEXT;
ALTER TABLE jobs ADD COLUMN resubmit_reason TEXT;
-- Event exports with `window:`: the start_at/end_at this job asks for, fixed at its first submit so
-- that a resubmit asks for the same window.
ALTER TABLE jobs ADD COLUMN window_start TEXT;
ALTER TABLE jobs ADD COLUMN window_end TEXT;

DROP VIEW job_summary;
CREATE VIEW job_summary AS
SELECT id, export, scheduled_for, state, polls, last_http_status, resubmits,
       CASE WHEN finished_at IS NOT NULL AND submitted_at IS NOT NULL
            THEN round((julianday(finished_at) - julianday(submitted_at)) * 86400, 1) END AS seconds,
       bytes, output_path, error, resubmit_reason, hook_result, file_removed_at
FROM jobs ORDER BY id;
