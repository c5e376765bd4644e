-- Up Migration
-- Helpers that no runtime role may call get a schema of their own; db/
-- defines what lives there. Runtime roles get no USAGE on it.
create schema apportion_internal;
alter schema apportion_internal owner to apportion_owner;
revoke all on schema apportion_internal from public;

-- The queue's result columns now name a job and its attempt the same way
-- everywhere (job_id, attempt). CREATE OR REPLACE cannot change a function's
-- result columns, so the old definitions go here; db/ creates the new ones.
drop function if exists apportion.claim_and_run_jobs(text, text[], integer, integer, integer);
drop function if exists apportion.claim_jobs(text, text[], integer, integer);
