-- The durable queue: every state change of a job is one of these functions;
-- the orchestrator only calls them.
--
--   enqueue / enqueue_many      queued       (caller's tenant; NOTIFY once per call)
--   claim_jobs                  queued  -> running   (lease: locked_by, locked_until)
--   run_jobs / run_tenant_jobs  running -> succeeded | queued (retry) | failed
--   release_jobs                running -> queued    (shutdown: claimed, not started)
--   reclaim_expired_leases      running -> queued | failed (worker died)
--   replay_failed_job(s)        failed  -> a new queued job, same correlation id
--   prune_jobs                  deletes finished jobs and settled failures
--
-- A job being run is row-locked by its run_jobs transaction, and every other
-- transition skips locked rows, so a running job is never reclaimed while its
-- worker is alive, and a job's work and its completion commit together.
--
-- Error codes: 22023 bad input (payload, unknown queue/task); 42501 tenant or
-- privilege; AP001 no handler for the task; AP002 lease expired too often.
-- Errors of classes 22, 23, 42 and AP never succeed on retry: the job fails
-- at once.

-- One entry of a job's attempt_log: when, who, how it ended, and why.
-- (A plain SQL expression: inlined where it is used. Without an error, built
-- without the null keys rather than stripped of them: a third cheaper on the
-- path every succeeded job takes.)
create or replace function apportion.attempt_entry(
  p_attempt integer, p_worker text, p_started_at timestamptz, p_finished_at timestamptz,
  p_outcome text, p_error_code text default null, p_error_message text default null)
returns jsonb
language sql stable
as $$
  select case when p_error_code is null and p_error_message is null
    then jsonb_build_object('attempt', p_attempt, 'worker', p_worker, 'started_at', p_started_at,
                            'finished_at', p_finished_at, 'outcome', p_outcome)
    else jsonb_strip_nulls(jsonb_build_object(
      'attempt', p_attempt, 'worker', p_worker, 'started_at', p_started_at, 'finished_at', p_finished_at,
      'outcome', p_outcome, 'error_code', p_error_code, 'error_message', p_error_message))
  end
$$;

-- Wake listeners; one notification per statement, never per row.
create or replace function apportion.notify_jobs(p_queue text)
returns void
language sql
as $$
  select pg_notify('apportion_jobs', p_queue)
$$;

-- Enqueue one job for the current tenant (or a system job when the task
-- allows it and no tenant is set). Returns the job id; with p_job_key, an
-- equal job still queued is reused and its id returned.
create or replace function apportion.enqueue(
  p_queue text,
  p_task text,
  p_payload jsonb default '{}',
  p_correlation_id uuid default null,
  p_run_at timestamptz default null,
  p_priority integer default 0,
  p_job_key text default null
)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_task apportion.queue_tasks;
  v_tenant uuid := apportion.current_tenant_id();
  v_id bigint;
begin
  v_task := apportion.require_task(p_queue, p_task, v_tenant);
  perform apportion.check_payload(p_payload);
  if v_task.tenant_scope = 'system' then
    v_tenant := null;
  end if;
  if p_job_key is not null then
    select j.id into v_id from apportion.jobs j
     where j.state = 'queued' and j.job_key = p_job_key and j.queue = p_queue and j.task = p_task
       and j.tenant_id is not distinct from v_tenant;
    if found then
      return v_id;
    end if;
  end if;
  begin
    insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id, job_key, priority, run_at, max_attempts)
    values (v_tenant, p_queue, p_task, p_payload,
            coalesce(p_correlation_id, nullif(current_setting('app.correlation_id', true), '')::uuid),
            p_job_key, coalesce(p_priority, 0), coalesce(p_run_at, now()), v_task.max_attempts)
    returning id into v_id;
  exception when unique_violation then
    -- A concurrent enqueue with the same job key won.
    select j.id into v_id from apportion.jobs j
     where j.state = 'queued' and j.job_key = p_job_key and j.queue = p_queue and j.task = p_task
       and j.tenant_id is not distinct from v_tenant;
    return v_id;
  end;
  perform apportion.notify_jobs(p_queue);
  return v_id;
end
$$;

-- Enqueue one job per element of a json array of payloads, in one statement
-- and with one notification. Returns the job ids in payload order.
create or replace function apportion.enqueue_many(
  p_queue text,
  p_task text,
  p_payloads jsonb,
  p_correlation_id uuid default null,
  p_priority integer default 0
)
returns setof bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_task apportion.queue_tasks;
  v_tenant uuid := apportion.current_tenant_id();
begin
  v_task := apportion.require_task(p_queue, p_task, v_tenant);
  if p_payloads is null or jsonb_typeof(p_payloads) <> 'array' then
    raise exception 'enqueue_many: payloads must be a json array of objects' using errcode = '22023';
  end if;
  if exists (select from jsonb_array_elements(p_payloads) p where jsonb_typeof(p) <> 'object') then
    raise exception 'enqueue_many: every payload must be a json object' using errcode = '22023';
  end if;
  if exists (select from jsonb_array_elements(p_payloads) p where octet_length(p::text) > 65536) then
    raise exception 'enqueue_many: payload too large: an element exceeds the limit of 65536 bytes' using errcode = '22023';
  end if;
  if v_task.tenant_scope = 'system' then
    v_tenant := null;
  end if;
  return query
    insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id, priority, max_attempts)
    select v_tenant, p_queue, p_task, p.value,
           coalesce(p_correlation_id, nullif(current_setting('app.correlation_id', true), '')::uuid),
           coalesce(p_priority, 0), v_task.max_attempts
      from jsonb_array_elements(p_payloads) with ordinality p
     order by p.ordinality
    returning id;
  perform apportion.notify_jobs(p_queue);
end
$$;

-- The registry row of a task; 22023 for an unknown one, 42501 when a
-- tenant task is enqueued without a tenant.
create or replace function apportion.require_task(p_queue text, p_task text, p_tenant uuid)
returns apportion.queue_tasks
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_task apportion.queue_tasks;
begin
  select * into v_task from apportion.queue_tasks t where t.queue = p_queue and t.task = p_task;
  if not found then
    if not exists (select from apportion.queue_tasks t where t.queue = p_queue) then
      raise exception 'unknown queue %: queues are attribution, housekeeping, maintenance, llm', coalesce(quote_literal(p_queue), 'null')
        using errcode = '22023';
    end if;
    raise exception 'unknown task %.%: tasks of queue % are %', p_queue, coalesce(p_task, 'null'), p_queue,
      (select string_agg(t.task, ', ' order by t.task) from apportion.queue_tasks t where t.queue = p_queue)
      using errcode = '22023';
  end if;
  if v_task.tenant_scope = 'tenant' and p_tenant is null then
    perform apportion.require_tenant();
  end if;
  return v_task;
end
$$;

-- Payloads are json objects of at most 64 KiB.
create or replace function apportion.check_payload(p_payload jsonb)
returns void
language plpgsql immutable
as $$
begin
  if p_payload is null or jsonb_typeof(p_payload) <> 'object' then
    raise exception 'payload must be a json object (got %)', coalesce(jsonb_typeof(p_payload), 'null') using errcode = '22023';
  end if;
  if octet_length(p_payload::text) > 65536 then
    raise exception 'payload too large: % bytes, the limit is 65536', octet_length(p_payload::text) using errcode = '22023';
  end if;
end
$$;

-- Cross-tenant (the point of the queue): claim up to p_limit runnable jobs of
-- p_queues for p_worker_id with a lease. Jobs whose lease expired are
-- reclaimed first. Only queues with handlers are claimed.
create or replace function apportion.claim_jobs(
  p_worker_id text,
  p_queues text[],
  p_limit integer default 100,
  p_lease_seconds integer default 15
)
returns table (
  id bigint,
  tenant_id uuid,
  queue text,
  task text,
  correlation_id uuid,
  attempts integer
)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  v_queues text[];
  v_ids bigint[] := '{}'::bigint[];
  v_tenants uuid[];
  v_job_queues text[];
  v_tasks text[];
  v_correlations uuid[];
  v_attempts integer[];
begin
  if p_worker_id is null or p_worker_id = '' then
    raise exception 'claim_jobs: worker id is required' using errcode = '22023';
  end if;
  if p_limit is null or p_limit < 1 or p_limit > 10000 then
    raise exception 'claim_jobs: limit must be between 1 and 10000 (got %)', p_limit using errcode = '22023';
  end if;
  if p_lease_seconds is null or p_lease_seconds < 1 then
    raise exception 'claim_jobs: lease must be at least 1 second (got %)', p_lease_seconds using errcode = '22023';
  end if;
  select array_agg(distinct t.queue) into v_queues
    from apportion.queue_tasks t where t.queue = any (p_queues) and t.handler is not null;

  -- A claim lost in a crash only leaves its jobs queued, so the claim's
  -- commit need not wait for the WAL flush (this transaction only).
  perform set_config('synchronous_commit', 'off', true);
  -- (Looked for first: most claims find no expired lease, and the probe
  -- costs a fraction of the call.)
  if exists (select from apportion.jobs_live j where j.state = 'running' and j.locked_until < now()) then
    perform apportion.reclaim_expired_leases(p_limit);
  end if;

  for v_try in 1..5 loop
    begin
      -- Lock by ctid, update by ctid: the claim touches only the rows it takes.
      with picked as (
        select j.ctid as tid
          from apportion.jobs_live j
         where j.state = 'queued' and j.run_at <= now() and j.queue = any (v_queues)
         order by j.priority, j.run_at, j.id
         limit p_limit
           for update skip locked
      ),
      claimed as (
        update apportion.jobs_live j
           set state = 'running',
               attempts = j.attempts + 1,
               locked_by = p_worker_id,
               locked_until = now() + make_interval(secs => p_lease_seconds),
               started_at = now()
         where j.ctid = any (array(select tid from picked))
        returning j.id, j.tenant_id, j.queue, j.task, j.correlation_id, j.attempts
      )
      -- Collected, not returned as they come: rows already returned would
      -- stay in the result if the statement then failed and is retried.
      select array_agg(c.id), array_agg(c.tenant_id), array_agg(c.queue), array_agg(c.task),
             array_agg(c.correlation_id), array_agg(c.attempts)
        into v_ids, v_tenants, v_job_queues, v_tasks, v_correlations, v_attempts
        from claimed c;
      exit;
    exception when serialization_failure then
      -- A job this statement saw as queued was claimed, run and moved to
      -- jobs_done meanwhile (Postgres cannot follow a row into another
      -- partition). Nothing was claimed; look again.
      v_ids := null;
    end;
  end loop;

  return query
    select * from unnest(v_ids, v_tenants, v_job_queues, v_tasks, v_correlations, v_attempts);
end
$$;

-- Cross-tenant: running jobs whose lease expired (their worker died before
-- finishing) become runnable again, or fail for good after max_attempts.
-- Jobs locked by a live run_jobs transaction are skipped.
create or replace function apportion.reclaim_expired_leases(p_limit integer default 1000)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_job record;
  v_count integer := 0;
begin
  for v_job in
    select j.id, j.attempts, j.max_attempts, j.locked_by
      from apportion.jobs_live j
     where j.state = 'running' and j.locked_until < now()
     order by j.locked_until
     limit p_limit
       for update skip locked
  loop
    if v_job.attempts < v_job.max_attempts then
      update apportion.jobs_live j
         set state = 'queued',
             run_at = now(),
             locked_by = null,
             locked_until = null,
             error_code = 'AP002',
             error_message = format('lease expired: worker %s stopped before finishing', j.locked_by),
             attempt_log = j.attempt_log
                           || apportion.attempt_entry(j.attempts, j.locked_by, j.started_at, now(), 'lease_expired')
       where j.id = v_job.id;
    else
      perform apportion.fail_job_for_good(v_job.id, 'AP002',
        format('lease expired on attempt %s of %s: worker %s stopped before finishing',
               v_job.attempts, v_job.max_attempts, v_job.locked_by),
        v_job.locked_by);
    end if;
    v_count := v_count + 1;
  end loop;
  if v_count > 0 then
    perform apportion.notify_jobs('reclaimed');
  end if;
  return v_count;
end
$$;

-- Move a job to failed, log the attempt and record it in worker_failed_jobs.
-- Internal: called by run_jobs and reclaim_expired_leases.
create or replace function apportion.fail_job_for_good(p_job_id bigint, p_error_code text, p_error_message text, p_worker_id text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_job record;
begin
  update apportion.jobs j
     set state = 'failed',
         finished_at = clock_timestamp(),
         locked_by = null,
         locked_until = null,
         error_code = p_error_code,
         error_message = p_error_message,
         attempt_log = j.attempt_log
                       || apportion.attempt_entry(j.attempts, p_worker_id, j.started_at, clock_timestamp(), 'failed',
                                                  p_error_code, p_error_message)
   where j.id = p_job_id and j.state = 'running'
  returning j.tenant_id, j.id, j.queue, j.task, j.payload, j.attempts, j.correlation_id into v_job;
  if found then
    insert into apportion.worker_failed_jobs
      (tenant_id, job_id, queue, task, payload, error_code, error_message, attempts, correlation_id)
    values (v_job.tenant_id, v_job.id, v_job.queue, v_job.task, v_job.payload, p_error_code, p_error_message,
            v_job.attempts, v_job.correlation_id);
  end if;
end
$$;

-- Does an error with this SQLSTATE deserve another attempt?
create or replace function apportion.is_retryable(p_sqlstate text)
returns boolean
language sql immutable parallel safe
as $$
  select left(p_sqlstate, 2) not in ('22', '23', '42', 'AP')
$$;

-- Run claimed jobs in the caller's transaction, as the caller (the worker
-- role), under the tenant the caller set. Each job's handler runs in its own
-- savepoint with app.correlation_id set to the job's; successes are marked
-- succeeded in the same transaction, so work and completion commit together.
-- A failed handler rolls back alone: the job is rescheduled with exponential
-- backoff and jitter, or fails for good (non-retryable error, or out of
-- attempts) and is recorded in worker_failed_jobs. Jobs not visible under the
-- current tenant, or no longer running for this worker, are skipped.
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
  v_ok_ids bigint[] := '{}'::bigint[];
  v_ok_results jsonb[] := '{}'::jsonb[];
  v_ok_started timestamptz[] := '{}'::timestamptz[];
  v_ok_finished timestamptz[] := '{}'::timestamptz[];
  v_tenant text := coalesce(current_setting('app.tenant_id', true), '');
  v_want text;
begin
  for v_job in
    select j.id, j.tenant_id, j.queue, j.task, j.payload, j.correlation_id, j.attempts, j.max_attempts
      from apportion.jobs j
     where j.id = any (p_job_ids) and j.state = 'running' and j.locked_by = p_worker_id
     order by j.priority, j.run_at, j.id
       for update of j
  loop
    -- The tenant stays the caller's (RLS showed only its jobs and system
    -- jobs); system jobs run with no tenant.
    -- (Set only when they differ from what is set now: two set_config calls
    -- per job were a third of a no-op job's run. Compared with the live
    -- settings, not with the previous job's, so a handler that changed them
    -- cannot hand its values on to the next job.)
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
    -- The handler's work is rolled back; record the attempt.
    if apportion.is_retryable(v_state) and v_job.attempts < v_job.max_attempts then
      update apportion.jobs j
         set state = 'queued',
             run_at = now() + least(interval '1 hour',
                        interval '1 second' * power(2, v_job.attempts - 1) * (0.75 + random() * 0.5)),
             locked_by = null,
             locked_until = null,
             error_code = v_state,
             error_message = v_message,
             attempt_log = j.attempt_log
                           || apportion.attempt_entry(v_job.attempts, p_worker_id, v_started, clock_timestamp(), 'retry',
                                                      v_state, v_message)
       where j.id = v_job.id and j.state = 'running';
      v_outcome := 'retry';
    else
      perform apportion.fail_job_for_good(v_job.id, v_state, v_message, p_worker_id);
      v_outcome := 'failed';
    end if;
    return next row(v_job.id, v_outcome, v_job.attempts,
                    round(extract(epoch from clock_timestamp() - v_started) * 1000, 3),
                    v_state, v_message)::apportion.job_outcome;
  end loop;
  perform set_config('app.tenant_id', v_tenant, true), set_config('app.correlation_id', '', true);

  -- Mark every success in one statement.
  return query select * from apportion.complete_jobs(p_worker_id, v_ok_ids, v_ok_results, v_ok_started, v_ok_finished);
end
$$;

-- Mark a batch of jobs succeeded (internal: run_jobs calls it in the same
-- transaction as their work). Nested loops are off for this statement only:
-- right after autovacuum analyzed a momentarily empty jobs_live, the planner
-- believes it holds one row and joins the batch by scanning every running
-- job once per succeeded job, which was seen to take 300-500 ms for 1,000
-- jobs (a burn-down at 8k instead of 50k jobs/s). A hash join is linear
-- whatever the statistics say.
create or replace function apportion.complete_jobs(
  p_worker_id text, p_ids bigint[], p_results jsonb[], p_started timestamptz[], p_finished timestamptz[])
returns setof apportion.job_outcome
language plpgsql
set search_path = pg_catalog, pg_temp
set enable_nestloop = off
as $$
begin
  -- (PL/pgSQL, not SQL, so the plan is cached for the session: a SQL
  -- function is planned on every call, ~0.4 ms for this cross-partition
  -- update under RLS, which dominated single-job batches.)
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
                       || apportion.attempt_entry(j.attempts, p_worker_id, r.started_at, r.finished_at, 'succeeded')
    from unnest(p_ids, p_results, p_started, p_finished) as r (id, result, started_at, finished_at)
   -- (id = any (p_ids) too: an index condition on the jobs side, so a small
   -- batch probes its rows instead of the hash join scanning jobs_live.)
   where j.id = r.id and j.id = any (p_ids) and j.state = 'running'
  returning j.id, 'succeeded'::text, j.attempts, round(extract(epoch from r.finished_at - r.started_at) * 1000, 3),
            null::text, null::text;
end
$$;

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
  id bigint,
  tenant_id uuid,
  queue text,
  task text,
  correlation_id uuid,
  attempts integer,
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
  select array_agg(c.id), array_agg(c.tenant_id), array_agg(c.queue), array_agg(c.task),
         array_agg(c.correlation_id), array_agg(c.attempts)
    into v_ids, v_tenants, v_job_queues, v_tasks, v_correlations, v_attempts
    from apportion.claim_jobs(p_worker_id, p_queues, p_limit, p_lease_seconds) c;

  if cardinality(v_ids) between 1 and p_run_max then
    select array_agg(c.id) into v_run_ids
      from unnest(v_ids, v_tenants) as c (id, tenant_id)
     where c.tenant_id is not distinct from v_tenants[1];
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

-- Cross-tenant: give back jobs this worker claimed but did not run (graceful
-- shutdown). The attempt is not counted.
create or replace function apportion.release_jobs(p_worker_id text, p_job_ids bigint[])
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count integer;
begin
  with released as (
    update apportion.jobs_live j
       set state = 'queued',
           attempts = j.attempts - 1,
           locked_by = null,
           locked_until = null,
           run_at = now()
     where j.id in (select l.id from apportion.jobs_live l
                     where l.id = any (p_job_ids) and l.state = 'running' and l.locked_by = p_worker_id
                       for update skip locked)
    returning 1
  )
  select count(*) into v_count from released;
  if v_count > 0 then
    perform apportion.notify_jobs('released');
  end if;
  return v_count;
end
$$;

-- A job of the current tenant (or a system job, for the worker).
create or replace function apportion.job_status(p_job_id bigint)
returns table (
  state text,
  attempts integer,
  result jsonb,
  error_code text,
  error_message text,
  correlation_id uuid
)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select j.state, j.attempts, j.result, j.error_code, j.error_message, j.correlation_id
    from apportion.jobs j
   where j.id = p_job_id
$$;

-- Replay a failed job: a new queued job with the same tenant, queue, task,
-- payload and correlation id; the failure is marked replayed. Runs under the
-- failed job's tenant (set by the caller). Returns the new job id.
create or replace function apportion.replay_failed_job(p_job_id bigint)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_failure apportion.worker_failed_jobs;
  v_new_id bigint;
begin
  select * into v_failure from apportion.worker_failed_jobs f
   where f.job_id = p_job_id and f.status = 'open'
   order by f.id desc limit 1
     for update;
  if not found then
    raise exception 'replay_failed_job: no open failure for job % visible to the current tenant', p_job_id
      using errcode = '22023';
  end if;
  insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id, max_attempts)
  select v_failure.tenant_id, v_failure.queue, v_failure.task, v_failure.payload, v_failure.correlation_id, t.max_attempts
    from apportion.queue_tasks t where t.queue = v_failure.queue and t.task = v_failure.task
  returning id into v_new_id;
  update apportion.worker_failed_jobs f
     set status = 'replayed', replayed_job_id = v_new_id, settled_at = now()
   where f.id = v_failure.id;
  perform apportion.notify_jobs(v_failure.queue);
  return v_new_id;
end
$$;

-- Mark a failure as dealt with (it is then pruned after retention).
create or replace function apportion.resolve_failed_job(p_job_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  update apportion.worker_failed_jobs f
     set status = 'resolved', settled_at = now()
   where f.job_id = p_job_id and f.status = 'open';
  if not found then
    raise exception 'resolve_failed_job: no open failure for job % visible to the current tenant', p_job_id
      using errcode = '22023';
  end if;
end
$$;

-- Cross-tenant, for operators: open failures (newest first), to find what
-- to replay. Tenant data stays behind the tenant's own transaction: payloads
-- are not shown here.
create or replace function apportion.open_failures(p_correlation_id uuid default null, p_limit integer default 50)
returns table (
  job_id bigint,
  tenant_id uuid,
  queue text,
  task text,
  error_code text,
  error_message text,
  attempts integer,
  correlation_id uuid,
  failed_at timestamptz
)
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select f.job_id, f.tenant_id, f.queue, f.task, f.error_code, f.error_message, f.attempts, f.correlation_id, f.failed_at
    from apportion.worker_failed_jobs f
   where f.status = 'open' and (p_correlation_id is null or f.correlation_id = p_correlation_id)
   order by f.failed_at desc, f.id desc
   limit least(greatest(coalesce(p_limit, 50), 1), 1000)
$$;

-- Cross-tenant, aggregates only: depths per queue and state, oldest waiting
-- job, open failures. For health and status.
create or replace function apportion.queue_overview()
returns table (
  queue text,
  queued bigint,
  queued_runnable bigint,
  running bigint,
  oldest_runnable_seconds numeric,
  open_failures bigint
)
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select q.queue,
         count(j.id) filter (where j.state = 'queued'),
         count(j.id) filter (where j.state = 'queued' and j.run_at <= now()),
         count(j.id) filter (where j.state = 'running'),
         round(extract(epoch from now() - min(j.run_at) filter (where j.state = 'queued' and j.run_at <= now())), 3),
         (select count(*) from apportion.worker_failed_jobs f where f.queue = q.queue and f.status = 'open')
    from (select distinct t.queue from apportion.queue_tasks t) q
    left join apportion.jobs_live j on j.queue = q.queue
   group by q.queue
   order by q.queue
$$;

-- Cross-tenant retention: delete succeeded jobs, failed jobs whose failure
-- is settled, and settled failures, all older than p_retention.
create or replace function apportion.prune_jobs(p_retention interval default '7 days')
returns table (jobs_deleted bigint, failures_deleted bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_retention is null or p_retention < interval '0' then
    raise exception 'prune_jobs: retention must be a non-negative interval (got %)', p_retention using errcode = '22023';
  end if;
  return query
  with settled as (
    delete from apportion.worker_failed_jobs f
     where f.status <> 'open' and f.settled_at < now() - p_retention
    returning f.job_id
  ),
  done as (
    delete from apportion.jobs_done j
     where j.finished_at < now() - p_retention
       and (j.state = 'succeeded'
            or not exists (select from apportion.worker_failed_jobs f where f.job_id = j.id and f.status = 'open'))
    returning 1
  )
  select (select count(*) from done), (select count(*) from settled);
end
$$;

-- Ingest enqueues allocation work by itself: each new event, once for each
-- of its tenant's active models, in the inserting transaction, with one
-- notification per statement.
create or replace function apportion.enqueue_new_events()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count bigint;
begin
  insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id, max_attempts)
  select e.tenant_id, 'attribution', 'allocate_event',
         jsonb_build_object('event_id', e.id, 'model_version', m.model_version),
         nullif(current_setting('app.correlation_id', true), '')::uuid,
         (select t.max_attempts from apportion.queue_tasks t where t.queue = 'attribution' and t.task = 'allocate_event')
    from new_events e
    join apportion.tenant_models m on m.tenant_id = e.tenant_id;
  get diagnostics v_count = row_count;
  if v_count > 0 then
    perform apportion.notify_jobs('attribution');
  end if;
  return null;
end
$$;

create or replace trigger attribution_events_enqueue_allocation
  after insert on apportion.attribution_events
  referencing new table as new_events
  for each statement execute function apportion.enqueue_new_events();

revoke all on function
  apportion.attempt_entry(integer, text, timestamptz, timestamptz, text, text, text),
  apportion.notify_jobs(text),
  apportion.enqueue(text, text, jsonb, uuid, timestamptz, integer, text),
  apportion.enqueue_many(text, text, jsonb, uuid, integer),
  apportion.require_task(text, text, uuid),
  apportion.check_payload(jsonb),
  apportion.claim_jobs(text, text[], integer, integer),
  apportion.reclaim_expired_leases(integer),
  apportion.fail_job_for_good(bigint, text, text, text),
  apportion.is_retryable(text),
  apportion.run_jobs(text, bigint[]),
  apportion.complete_jobs(text, bigint[], jsonb[], timestamptz[], timestamptz[]),
  apportion.run_tenant_jobs(text, uuid, bigint[]),
  apportion.claim_and_run_jobs(text, text[], integer, integer, integer),
  apportion.release_jobs(text, bigint[]),
  apportion.job_status(bigint),
  apportion.replay_failed_job(bigint),
  apportion.resolve_failed_job(bigint),
  apportion.open_failures(uuid, integer),
  apportion.queue_overview(),
  apportion.prune_jobs(interval),
  apportion.enqueue_new_events()
from public;

grant execute on function
  apportion.notify_jobs(text),
  apportion.enqueue(text, text, jsonb, uuid, timestamptz, integer, text),
  apportion.enqueue_many(text, text, jsonb, uuid, integer),
  apportion.require_task(text, text, uuid),
  apportion.check_payload(jsonb),
  apportion.job_status(bigint),
  apportion.enqueue_new_events()
to apportion_ingest, apportion_worker;

grant execute on function
  apportion.attempt_entry(integer, text, timestamptz, timestamptz, text, text, text),
  apportion.claim_jobs(text, text[], integer, integer),
  apportion.reclaim_expired_leases(integer),
  apportion.fail_job_for_good(bigint, text, text, text),
  apportion.is_retryable(text),
  apportion.run_jobs(text, bigint[]),
  apportion.complete_jobs(text, bigint[], jsonb[], timestamptz[], timestamptz[]),
  apportion.run_tenant_jobs(text, uuid, bigint[]),
  apportion.claim_and_run_jobs(text, text[], integer, integer, integer),
  apportion.release_jobs(text, bigint[]),
  apportion.replay_failed_job(bigint),
  apportion.resolve_failed_job(bigint),
  apportion.open_failures(uuid, integer),
  apportion.queue_overview(),
  apportion.prune_jobs(interval)
to apportion_worker;
