-- The ingest queue's state changes, one function each, so every worker (Python or not)
-- follows the same rules. A job moves queued -> running -> done | failed; a running job
-- whose lease expired (its worker died) is claimed again; a failed attempt returns to the
-- queue after an exponential backoff until max_attempts is spent.

-- Claim up to max_jobs jobs, of one run (only_run) and/or among some jobs (only_jobs) if
-- given: a run waiting on another run's jobs helps with those jobs alone.
CREATE OR REPLACE FUNCTION pgcontext.claim_ingest_jobs_among(
    worker text,
    max_jobs integer,
    lease_seconds double precision,
    only_run text,
    only_jobs bigint[]
) RETURNS SETOF pgcontext.ingest_queue
LANGUAGE plpgsql
AS $fn$
BEGIN
    -- A job whose worker died on its last allowed attempt will not be tried again.
    UPDATE pgcontext.ingest_queue q
    SET status = 'failed', lease_owner = NULL, leased_until = NULL, updated_at = now(),
        last_error = coalesce(q.last_error || E'\n', '') || format(
            'lease of %s expired on attempt %s of %s (the worker stopped or was killed)',
            q.lease_owner, q.attempts, q.max_attempts)
    WHERE q.id IN (
        SELECT id FROM pgcontext.ingest_queue
        WHERE status = 'running' AND leased_until < now() AND attempts >= max_attempts
          AND (only_run IS NULL OR run_id = only_run)
          AND (only_jobs IS NULL OR id = ANY(only_jobs))
        FOR UPDATE SKIP LOCKED);

    RETURN QUERY
    UPDATE pgcontext.ingest_queue q
    SET status = 'running', lease_owner = worker, attempts = q.attempts + 1,
        leased_until = now() + make_interval(secs => lease_seconds),
        heartbeat_at = now(), updated_at = now()
    WHERE q.id IN (
        SELECT id FROM pgcontext.ingest_queue
        WHERE ((status = 'queued' AND run_after <= now())
               OR (status = 'running' AND leased_until < now()))
          AND (only_run IS NULL OR run_id = only_run)
          AND (only_jobs IS NULL OR id = ANY(only_jobs))
        ORDER BY run_after, id
        LIMIT max_jobs
        FOR UPDATE SKIP LOCKED)
    RETURNING q.*;
END
$fn$;

CREATE OR REPLACE FUNCTION pgcontext.claim_ingest_jobs(
    worker text,
    max_jobs integer DEFAULT 1,
    lease_seconds double precision DEFAULT 60,
    only_run text DEFAULT NULL
) RETURNS SETOF pgcontext.ingest_queue
LANGUAGE sql
AS $fn$
    SELECT * FROM pgcontext.claim_ingest_jobs_among(worker, max_jobs, lease_seconds, only_run, NULL);
$fn$;

CREATE OR REPLACE FUNCTION pgcontext.heartbeat_ingest_jobs(
    worker text, job_ids bigint[], lease_seconds double precision DEFAULT 60
) RETURNS integer
LANGUAGE sql
AS $fn$
    WITH renewed AS (
        UPDATE pgcontext.ingest_queue
        SET leased_until = now() + make_interval(secs => lease_seconds), heartbeat_at = now()
        WHERE id = ANY(job_ids) AND lease_owner = worker AND status = 'running'
        RETURNING 1)
    SELECT count(*)::integer FROM renewed;
$fn$;

-- Called inside the transaction that wrote the job's chunks: false means the lease was lost
-- (another worker took the job over), and the caller must roll back. (A done job no longer
-- lists its documents as queued: a trigger of sql/035 sees to it, so this function works
-- at every revision.)
CREATE OR REPLACE FUNCTION pgcontext.finish_ingest_job(
    job_id bigint, worker text, job_result jsonb
) RETURNS boolean
LANGUAGE sql
AS $fn$
    WITH finished AS (
        UPDATE pgcontext.ingest_queue
        SET status = 'done', payload = '{}', result = job_result, lease_owner = NULL,
            leased_until = NULL, updated_at = now()
        WHERE id = job_id AND lease_owner = worker AND status = 'running'
        RETURNING 1)
    SELECT count(*) = 1 FROM finished;
$fn$;

-- A failed attempt: back to the queue after base * 2^(attempts-1) seconds (at most an
-- hour), or failed for good once max_attempts is spent. Returns the new status.
CREATE OR REPLACE FUNCTION pgcontext.fail_ingest_job(
    job_id bigint, worker text, error text, backoff_seconds double precision DEFAULT 5
) RETURNS text
LANGUAGE sql
AS $fn$
    UPDATE pgcontext.ingest_queue
    SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
        run_after = now() + make_interval(
            secs => least(3600, backoff_seconds * power(2, greatest(attempts - 1, 0)))),
        last_error = error, lease_owner = NULL, leased_until = NULL, updated_at = now()
    WHERE id = job_id AND lease_owner = worker AND status = 'running'
    RETURNING status;
$fn$;

-- A graceful stop: give claimed but unfinished jobs back without counting the attempt.
CREATE OR REPLACE FUNCTION pgcontext.release_ingest_jobs(worker text, job_ids bigint[])
RETURNS integer
LANGUAGE sql
AS $fn$
    WITH released AS (
        UPDATE pgcontext.ingest_queue
        SET status = 'queued', attempts = greatest(attempts - 1, 0), lease_owner = NULL,
            leased_until = NULL, run_after = now(), updated_at = now()
        WHERE id = ANY(job_ids) AND lease_owner = worker AND status = 'running'
        RETURNING 1)
    SELECT count(*)::integer FROM released;
$fn$;

-- `pgcontext retry`: failed jobs of a collection (or all) go back to the queue, fresh.
CREATE OR REPLACE FUNCTION pgcontext.retry_failed_ingest_jobs(collection_name text DEFAULT NULL)
RETURNS integer
LANGUAGE sql
AS $fn$
    WITH retried AS (
        UPDATE pgcontext.ingest_queue q
        SET status = 'queued', attempts = 0, run_after = now(), updated_at = now()
        WHERE q.status = 'failed'
          AND (collection_name IS NULL OR q.collection_id =
               (SELECT id FROM pgcontext.collection WHERE name = collection_name))
        RETURNING 1)
    SELECT count(*)::integer FROM retried;
$fn$;
