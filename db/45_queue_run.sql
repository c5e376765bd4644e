-- running -> succeeded | queued (retry) | failed: run claimed jobs in one
-- transaction per tenant batch, work and completion together.

-- Run claimed jobs in the caller's transaction, as the caller (the worker
-- role), under the tenant the caller set. Each job's handler runs in its own
-- savepoint with app.correlation_id set to the job's; successes are marked
-- succeeded in one statement at the end, in the same transaction, so work and
-- completion commit together. A failed handler rolls back alone: the job is
-- rescheduled with exponential backoff and jitter, or fails for good
-- (non-retryable error, or out of attempts; the insert into jobs_done records
-- it in worker_failed_jobs). Jobs not visible under the current tenant, or no
-- longer running for this worker, are skipped. A handler canceled (57014:
-- the orchestrator's job timeout, a statement_timeout, pg_cancel_backend) is
-- retried like any error, and the jobs after it are given back unstarted.
-- The outcomes returned carry error messages without payload values
-- (mask_payload_values): the caller logs them; the job keeps the message
-- whole.
create or replace function apportion.run_jobs(p_worker_id text, p_job_ids bigint[])
returns setof apportion.job_outcome
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_outcome text;
  v_job record;
  v_result jsonb;
  v_started timestamptz;
  v_state text;
  v_message text;
  v_entry jsonb;
  v_ok_ids bigint[] := '{}'::bigint[];
  v_ok_results jsonb[] := '{}'::jsonb[];
  v_ok_started timestamptz[] := '{}'::timestamptz[];
  v_ok_finished timestamptz[] := '{}'::timestamptz[];
  v_tenant text := coalesce(current_setting('app.tenant_id', true), '');
  v_nestloop text := current_setting('enable_nestloop');
  v_want text;
  v_canceled boolean := false;
begin
  for v_job in
    select j.id, j.tenant_id, j.queue, j.task, j.payload, j.correlation_id, j.attempts, j.max_attempts
      from apportion.jobs j
     where j.id = any (p_job_ids) and j.state = 'running' and j.locked_by = p_worker_id
     order by j.priority, j.run_at, j.id
       for update of j
  loop
    -- The tenant stays the caller's (RLS showed only its jobs and system
    -- jobs); system jobs run with no tenant. Each setting is compared with
    -- the live one, not the previous job's, so a handler that changed it
    -- cannot hand its value on to the next job.
    v_want := case when v_job.tenant_id is null then '' else v_tenant end;
    if current_setting('app.tenant_id', true) is distinct from v_want then
      perform set_config('app.tenant_id', v_want, true);
    end if;
    v_want := coalesce(v_job.correlation_id::text, '');
    if current_setting('app.correlation_id', true) is distinct from v_want then
      perform set_config('app.correlation_id', v_want, true);
    end if;
    v_started := clock_timestamp();
    begin
      v_result := apportion.run_task(v_job.queue, v_job.task, v_job.payload);
      v_ok_ids := v_ok_ids || v_job.id;
      v_ok_results := v_ok_results || v_result;
      v_ok_started := v_ok_started || v_started;
      v_ok_finished := v_ok_finished || clock_timestamp();
      continue;
    exception when others or query_canceled then
      -- (OTHERS alone does not catch a statement timeout or cancel.)
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
    end;
    -- The handler's work is rolled back; record the attempt. Errors of
    -- classes 22, 23, 42 and AP would fail the same way again.
    v_outcome := case when left(v_state, 2) not in ('22', '23', '42', 'AP') and v_job.attempts < v_job.max_attempts
                      then 'retry' else 'failed' end;
    v_entry := jsonb_build_object('attempt', v_job.attempts, 'worker', p_worker_id, 'started_at', v_started,
                                  'finished_at', clock_timestamp(), 'outcome', v_outcome,
                                  'error_code', v_state, 'error_message', v_message);
    update apportion.jobs j
       set state = case v_outcome when 'retry' then 'queued' else 'failed' end,
           run_at = case v_outcome when 'retry'
                      then now() + least(interval '1 hour',
                                         interval '1 second' * power(2, v_job.attempts - 1) * (0.75 + random() * 0.5))
                      else j.run_at end,
           finished_at = case v_outcome when 'retry' then null else clock_timestamp() end,
           locked_by = null,
           locked_until = null,
           error_code = v_state,
           error_message = v_message,
           attempt_log = j.attempt_log || v_entry
     where j.id = v_job.id and j.state = 'running';
    return next row(v_job.id, v_outcome, v_job.attempts,
                    round(extract(epoch from clock_timestamp() - v_started) * 1000, 3),
                    v_state, apportion.mask_payload_values(v_message, v_job.payload))::apportion.job_outcome;
    if v_state = '57014' then
      -- Canceled (the orchestrator's job timeout, or an operator's
      -- pg_cancel_backend): this job is retried or failed as above, and the
      -- batch stops here, so the statement ends and the runner is free.
      v_canceled := true;
      exit;
    end if;
  end loop;
  if v_canceled then
    -- The jobs not started go back, unstarted: the attempt is not counted.
    update apportion.jobs j
       set state = 'queued', attempts = j.attempts - 1, locked_by = null, locked_until = null, run_at = now()
     where j.id = any (p_job_ids) and j.state = 'running' and j.locked_by = p_worker_id and not j.id = any (v_ok_ids);
  end if;
  perform set_config('app.tenant_id', v_tenant, true), set_config('app.correlation_id', '', true);

  -- Every success in one statement. Nested loops are off for it: right
  -- after autovacuum analyzed a momentarily empty jobs_live, the planner
  -- would join the batch by scanning every running job once per success.
  perform set_config('enable_nestloop', 'off', true);
  return query
  update apportion.jobs j
     set state = 'succeeded',
         result = r.result,
         finished_at = r.finished_at,
         locked_by = null,
         locked_until = null,
         error_code = null,
         error_message = null,
         attempt_log = j.attempt_log
                       || jsonb_build_object('attempt', j.attempts, 'worker', p_worker_id, 'started_at', r.started_at,
                                             'finished_at', r.finished_at, 'outcome', 'succeeded')
    from unnest(v_ok_ids, v_ok_results, v_ok_started, v_ok_finished) as r (id, result, started_at, finished_at)
   -- (j.id = any too: an index condition, so a small batch probes its rows.)
   where j.id = r.id and j.id = any (v_ok_ids) and j.state = 'running'
  returning j.id, 'succeeded'::text, j.attempts, round(extract(epoch from r.finished_at - r.started_at) * 1000, 3),
            null::text, null::text;
  perform set_config('enable_nestloop', v_nestloop, true);
end
$$;
grant execute on function apportion.run_jobs(text, bigint[]) to apportion_worker;
comment on function apportion.run_jobs(text, bigint[]) is
  'Runs jobs p_worker_id claimed, in the caller''s transaction and under the tenant the caller set, each handler in its own savepoint with the job''s correlation id; successes are marked in the same transaction, so work and completion commit together. A failed handler rolls back alone: errors of classes 22, 23, 42 and AP, and a job out of attempts, fail for good (recorded in worker_failed_jobs), others are retried with exponential backoff and jitter. Jobs it cannot see or that are no longer running for the worker are skipped. Returns one outcome per job run, messages without payload values.';

-- One round trip for a tenant's batch: in the calling statement's
-- transaction, set app.tenant_id (and nothing else) transaction-locally to
-- p_tenant_id ('' for system jobs) and run_jobs. Called on its own, the
-- statement is the transaction: begin, set the tenant locally, run each job
-- in its savepoint, mark them done, commit; the tenant is gone afterwards.
create or replace function apportion.run_tenant_jobs(p_worker_id text, p_tenant_id uuid, p_job_ids bigint[])
returns setof apportion.job_outcome
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  perform set_config('app.tenant_id', coalesce(p_tenant_id::text, ''), true);
  return query select * from apportion.run_jobs(p_worker_id, p_job_ids);
end
$$;
grant execute on function apportion.run_tenant_jobs(text, uuid, bigint[]) to apportion_worker;
comment on function apportion.run_tenant_jobs(text, uuid, bigint[]) is
  'run_jobs under p_tenant_id (null for system jobs), set for this transaction only: one tenant''s claimed jobs in one round trip and, called on its own, one transaction.';

-- The idle path in one round trip: claim as claim_jobs does, and when the
-- claim found at most p_run_max jobs, run the first tenant's of them (in
-- claim order) in this same transaction, as run_tenant_jobs would: tenant set
-- locally, each job in its savepoint, completion with the work. Returns every
-- claimed job; those run here carry their outcome, the others (other
-- tenants, or a claim bigger than p_run_max) have a null outcome and are
-- running under the lease, for the caller to run as usual.
-- A job run here needs no lease: if the transaction dies, its claim dies with
-- it and the job is runnable again at once. The commit is durable whenever
-- work ran (claim_jobs turns synchronous_commit off for a bare claim only).
-- Saves the second round trip between a job's arrival and its handler when
-- workers are idle.
create or replace function apportion.claim_and_run_jobs(
  p_worker_id text,
  p_queues text[],
  p_limit integer default 100,
  p_lease_seconds integer default 15,
  p_run_max integer default 1
)
returns table (
  job_id bigint,
  tenant_id uuid,
  queue text,
  task text,
  correlation_id uuid,
  attempt integer,
  outcome text,
  ms numeric,
  error_code text,
  error_message text
)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  v_synchronous_commit text := current_setting('synchronous_commit');
  v_tenant_before text := current_setting('app.tenant_id', true);
  v_ids bigint[];
  v_tenants uuid[];
  v_job_queues text[];
  v_tasks text[];
  v_correlations uuid[];
  v_attempts integer[];
  v_run_ids bigint[];
  v_outcomes apportion.job_outcome[];
begin
  if p_run_max is null or p_run_max < 0 then
    raise exception 'claim_and_run_jobs: run_max must be 0 or more (got %)', p_run_max using errcode = '22023';
  end if;
  select array_agg(c.job_id), array_agg(c.tenant_id), array_agg(c.queue), array_agg(c.task),
         array_agg(c.correlation_id), array_agg(c.attempt)
    into v_ids, v_tenants, v_job_queues, v_tasks, v_correlations, v_attempts
    from apportion.claim_jobs(p_worker_id, p_queues, p_limit, p_lease_seconds) c;

  if cardinality(v_ids) between 1 and p_run_max then
    -- (A lone job, the usual case here, needs no statement to pick it.)
    v_run_ids := case when cardinality(v_ids) = 1 then v_ids
                      else array(select c.id from unnest(v_ids, v_tenants) as c (id, tenant_id)
                                  where c.tenant_id is not distinct from v_tenants[1]) end;
    perform set_config('synchronous_commit', v_synchronous_commit, true),
            set_config('app.tenant_id', coalesce(v_tenants[1]::text, ''), true);
    select array_agg(o) into v_outcomes from apportion.run_jobs(p_worker_id, v_run_ids) o;
    perform set_config('app.tenant_id', coalesce(v_tenant_before, ''), true);
  end if;

  return query
    select c.id, c.tenant_id, c.queue, c.task, c.correlation_id, c.attempts,
           o.outcome, o.ms, o.error_code, o.error_message
      from unnest(v_ids, v_tenants, v_job_queues, v_tasks, v_correlations, v_attempts)
             as c (id, tenant_id, queue, task, correlation_id, attempts)
      left join unnest(v_outcomes) o on o.job_id = c.id;
end
$$;
grant execute on function apportion.claim_and_run_jobs(text, text[], integer, integer, integer) to apportion_worker;
comment on function apportion.claim_and_run_jobs(text, text[], integer, integer, integer) is
  'The idle path in one round trip: claims as claim_jobs does and, when it found at most p_run_max jobs, runs the first tenant''s of them in the same transaction as run_tenant_jobs would. Returns every claimed job: those run here with their outcome, the rest (outcome null) claimed under the lease for the caller to run. Errors: 22023 for a negative or null p_run_max, and those of claim_jobs.';
