-- apsis-exportd job table, schema version 4: the account each job runs under.

-- With several daemons on one PostgreSQL table, an account is leased to one of them and its owner
-- resumes that account's jobs; SQLite keeps the same column so queries carry over. Filled from the
-- definition the job runs with (its "account"), here for existing rows, at insert for new ones.
ALTER TABLE jobs ADD COLUMN account TEXT;
UPDATE jobs SET account = json_extract(definition, '$.account');
CREATE INDEX jobs_unfinished_by_account ON jobs (account, id) WHERE state IN ('pending','submitted','downloading');
