-- The durable queue: every state change of a job is one function (or, for
-- what must hold on every path, one trigger); the orchestrator only calls
-- them.
--
--   enqueue / enqueue_many      -> queued           db/41_queue_enqueue.sql
--   ingest of events            -> queued           db/46_queue_ingest.sql
--   claim_jobs                  queued  -> running  db/42_queue_claim.sql (lease: locked_by, locked_until)
--   release_jobs                running -> queued   db/42_queue_claim.sql (shutdown: claimed, not started)
--   reclaim_expired_leases      running -> queued | failed (worker died)   db/42_queue_claim.sql
--   run_jobs / run_tenant_jobs  running -> succeeded | queued (retry) | failed   db/45_queue_run.sql
--   claim_and_run_jobs          queued  -> running -> succeeded | ...      db/45_queue_run.sql
--   replay_failed_job           failed  -> a new queued job, same correlation id   db/43_queue_operators.sql
--   prune_jobs                  deletes finished jobs and settled failures  db/43_queue_operators.sql
--
-- Every new job goes through one insert path, whoever inserts it: the
-- triggers below check it against the task registry, take max_attempts from
-- it, and wake listeners once per statement. Every job that fails for good
-- is recorded in worker_failed_jobs by a trigger, so no path can lose one.
--
-- A job being run is row-locked by its run_jobs transaction, and every other
-- transition skips locked rows, so a running job is never reclaimed while its
-- worker is alive, and a job's work and its completion commit together.
--
-- Error codes: 22023 bad input (payload, unknown queue/task); 42501 tenant or
-- privilege; AP001 no handler for the task; AP002 lease expired too often;
-- AP003 the tenant's cap on queued jobs reached.
-- Errors of classes 22, 23, 42 and AP never succeed on retry: the job fails
-- at once.

-- The insert path ---------------------------------------------------------------

-- A new job must name a registered task, fit the task's tenant scope, carry
-- a payload that is a json object of at most 64 KiB, a finite run_at, a
-- priority in [-100, 100] and a job_key of at most 512 bytes; its
-- max_attempts is the registry's, it is parked when its task has no handler
-- and scheduled while its run_at is ahead. (On
-- jobs_live: every new job starts there, and a job that finishes moves to
-- jobs_done without coming through here again.)
create or replace function apportion_internal.prepare_job()
returns trigger
language plpgsql
as $$
declare
  v_task apportion.queue_tasks;
begin
  select * into v_task from apportion.queue_tasks t where t.queue = new.queue and t.task = new.task;
  if not found then
    if not exists (select from apportion.queue_tasks t where t.queue = new.queue) then
      raise exception 'unknown queue %: queues are attribution, housekeeping, maintenance, llm', coalesce(quote_literal(new.queue), 'null')
        using errcode = '22023';
    end if;
    raise exception 'unknown task %.%: tasks of queue % are %', new.queue, coalesce(new.task, 'null'), new.queue,
      (select string_agg(t.task, ', ' order by t.task) from apportion.queue_tasks t where t.queue = new.queue)
      using errcode = '22023';
  end if;
  if v_task.tenant_scope = 'tenant' and new.tenant_id is null then
    perform apportion.require_tenant();
    raise exception 'task %.% needs a tenant: its job must carry a tenant_id', new.queue, new.task using errcode = '42501';
  end if;
  if v_task.tenant_scope = 'system' and new.tenant_id is not null then
    raise exception 'task %.% is a system task: its jobs carry no tenant', new.queue, new.task using errcode = '42501';
  end if;
  if new.payload is null or jsonb_typeof(new.payload) <> 'object' then
    raise exception 'payload must be a json object (got %)', coalesce(jsonb_typeof(new.payload), 'null') using errcode = '22023';
  end if;
  if octet_length(new.payload::text) > 65536 then
    raise exception 'payload too large: % bytes, the limit is 65536', octet_length(new.payload::text) using errcode = '22023';
  end if;
  if not isfinite(new.run_at) then
    raise exception 'run_at must be a finite timestamp (got %)', new.run_at using errcode = '22023';
  end if;
  if new.priority not between -100 and 100 then
    raise exception 'priority must be between -100 and 100 (got %)', new.priority using errcode = '22023';
  end if;
  if octet_length(new.job_key) > 512 then
    raise exception 'job_key too long: % bytes, the limit is 512', octet_length(new.job_key) using errcode = '22023';
  end if;
  new.max_attempts := v_task.max_attempts;
  -- No handler: kept waiting outside the claim index (queue_tasks_changed
  -- unparks the task's jobs when it gets one).
  new.parked := v_task.handler is null;
  -- Not yet due: kept outside the claim index too (a claim moves it in when
  -- it is due, db/42_queue_claim.sql).
  new.scheduled := new.run_at > now();
  return new;
end
$$;

create or replace trigger jobs_live_prepare
  before insert on apportion.jobs_live
  for each row execute function apportion_internal.prepare_job();

-- Whoever moves a queued job's run_at (a retry's backoff, a release, an
-- operator) moves it in or out of the claim index with it.
create or replace function apportion_internal.reschedule_job()
returns trigger
language plpgsql
as $$
begin
  if not isfinite(new.run_at) then
    raise exception 'run_at must be a finite timestamp (got %)', new.run_at using errcode = '22023';
  end if;
  new.scheduled := new.state = 'queued' and new.run_at > now();
  return new;
end
$$;

create or replace trigger jobs_live_reschedule
  before update of run_at on apportion.jobs_live
  for each row execute function apportion_internal.reschedule_job();

-- No tenant may have more jobs queued (parked ones included) than its cap,
-- tenants.max_queued_jobs: an inserting statement that passes it is refused
-- whole (AP003). Counted only up to the cap, on the tenant's own queued jobs.
create or replace function apportion_internal.enforce_queued_job_caps()
returns trigger
language plpgsql
as $$
declare
  v_over record;
begin
  select t.id, t.max_queued_jobs into v_over
    from (select distinct n.tenant_id from new_jobs n where n.tenant_id is not null) n
    join apportion.tenants t on t.id = n.tenant_id
   where (select count(*) from (select from apportion.jobs j
                                 where j.tenant_id = t.id and j.state = 'queued'
                                 limit t.max_queued_jobs + 1) q) > t.max_queued_jobs
   limit 1;
  if found then
    raise exception 'tenant % has more than % queued jobs, its limit: wait for them to run, or ask the operator to raise tenants.max_queued_jobs', v_over.id, v_over.max_queued_jobs
      using errcode = 'AP003';
  end if;
  return null;
end
$$;

create or replace trigger jobs_cap
  after insert on apportion.jobs
  referencing new table as new_jobs
  for each statement execute function apportion_internal.enforce_queued_job_caps();

-- Wake listeners: one notification per queue and statement, never per row.
create or replace function apportion_internal.notify_new_jobs()
returns trigger
language plpgsql
as $$
begin
  perform pg_notify('apportion_jobs', q.queue) from (select distinct j.queue from new_jobs j) q;
  return null;
end
$$;

create or replace trigger jobs_notify
  after insert on apportion.jobs
  referencing new table as new_jobs
  for each statement execute function apportion_internal.notify_new_jobs();

-- A job that reaches state failed (run_jobs, reclaim_expired_leases) lands
-- in worker_failed_jobs in the same transaction.
create or replace function apportion_internal.record_failure()
returns trigger
language plpgsql
as $$
begin
  insert into apportion.worker_failed_jobs
    (tenant_id, job_id, queue, task, payload, error_code, error_message, attempts, correlation_id)
  values (new.tenant_id, new.id, new.queue, new.task, new.payload, new.error_code,
          new.error_message, new.attempts, new.correlation_id);
  return null;
end
$$;

create or replace trigger jobs_done_record_failure
  after insert on apportion.jobs_done
  for each row when (new.state = 'failed')
  execute function apportion_internal.record_failure();

-- Tables -----------------------------------------------------------------------
-- Tenant-facing roles see their tenant's jobs; the worker also sees system
-- jobs (no tenant), which carry no tenant data.

alter table apportion.jobs alter column tenant_id set default apportion.current_tenant_id();

do $$
declare
  t text;
begin
  foreach t in array array['jobs', 'jobs_live', 'jobs_done', 'worker_failed_jobs'] loop
    perform apportion_internal.define_tenant_policies(format('apportion.%I', t)::regclass);
    execute format('drop policy if exists system_jobs on apportion.%I', t);
    execute format('create policy system_jobs on apportion.%I to apportion_worker using (tenant_id is null) with check (tenant_id is null)', t);
  end loop;
end
$$;

grant select on apportion.queue_tasks to apportion_ingest, apportion_worker, apportion_reader;
grant usage on type apportion.job_outcome to apportion_worker;
-- Enqueue runs as the caller: it may set only these columns; state, attempts
-- and leases keep their defaults, max_attempts comes from the registry.
grant select, insert (tenant_id, queue, task, payload, correlation_id, job_key, priority, run_at)
  on apportion.jobs to apportion_ingest, apportion_worker;
grant update (state, attempts, run_at, locked_by, locked_until, result, error_code, error_message,
              attempt_log, started_at, finished_at)
  on apportion.jobs to apportion_worker;
grant usage on sequence apportion.jobs_id_seq to apportion_ingest, apportion_worker;
grant select on apportion.worker_failed_jobs to apportion_ingest, apportion_worker;
grant insert on apportion.worker_failed_jobs to apportion_worker;
grant update (status, replayed_job_id, settled_at) on apportion.worker_failed_jobs to apportion_worker;

comment on table apportion.queue_tasks is
  'The task registry: each queue and task that may be enqueued, its SQL handler (null: accepted and kept parked until it has one), its tenant scope and max attempts. The one place that maps a task to its handler: changing it (as the owner, in a migration) regenerates run_task.';

comment on table apportion.jobs is
  'The durable queue, partitioned by state. Every new job, from enqueue, enqueue_many, a replay, ingest or a direct insert, goes through one insert path: its queue and task must be registered and its payload a json object of at most 64 KiB, its run_at finite, its priority between -100 and 100, its job_key at most 512 bytes. Errors: 22023 for a job that breaks those rules; 42501 for a tenant task without a tenant or a system task with one; AP003 when a tenant would have more queued jobs than its max_queued_jobs.';
comment on column apportion.jobs.id is 'The job''s id.';
comment on column apportion.jobs.tenant_id is 'The tenant (defaults to the current one); null for system jobs.';
comment on column apportion.jobs.queue is 'attribution, housekeeping, maintenance or llm.';
comment on column apportion.jobs.task is 'The task, registered in queue_tasks.';
comment on column apportion.jobs.payload is 'The task''s input, a json object of at most 64 KiB.';
comment on column apportion.jobs.correlation_id is
  'The correlation id (defaults to the inserting transaction''s app.correlation_id); the job runs with app.correlation_id set to it.';
comment on column apportion.jobs.attempts is 'The attempts started.';
comment on column apportion.jobs.state is 'queued, running, succeeded or failed.';
comment on column apportion.jobs.run_at is 'When it may run at the earliest (scheduled jobs, retries'' backoff).';
comment on column apportion.jobs.priority is 'Between -100 and 100; lower runs first.';
comment on column apportion.jobs.result is 'What the handler returned.';
comment on column apportion.jobs.error_code is 'The SQLSTATE (or AP code) of the last failed attempt.';
comment on column apportion.jobs.error_message is 'The message of the last failed attempt.';
comment on column apportion.jobs.attempt_log is 'One entry per attempt: when, worker, outcome, error.';

comment on table apportion.jobs_live is
  'The partition of apportion.jobs with the queued and running jobs, which the claim index covers; every new job starts here.';
comment on table apportion.jobs_done is
  'The partition of apportion.jobs with the succeeded and failed jobs, until prune_jobs deletes them.';

comment on table apportion.worker_failed_jobs is
  'Every job that failed for good, recorded by a trigger in the transaction that failed it: tenant, payload, SQLSTATE, message, attempts and correlation id, to replay (replay_failed_job) or settle (resolve_failed_job).';
comment on column apportion.worker_failed_jobs.id is 'The failure''s id.';
comment on column apportion.worker_failed_jobs.tenant_id is 'The job''s tenant; null for system jobs.';
comment on column apportion.worker_failed_jobs.job_id is 'The failed job.';
comment on column apportion.worker_failed_jobs.queue is 'The job''s queue.';
comment on column apportion.worker_failed_jobs.task is 'The job''s task.';
comment on column apportion.worker_failed_jobs.payload is 'The job''s payload.';
comment on column apportion.worker_failed_jobs.error_code is 'The SQLSTATE, or an AP code of ours.';
comment on column apportion.worker_failed_jobs.error_message is 'The error message, whole (open_failures shows it without payload values).';
comment on column apportion.worker_failed_jobs.attempts is 'The attempts made.';
comment on column apportion.worker_failed_jobs.correlation_id is 'The job''s correlation id.';
comment on column apportion.worker_failed_jobs.failed_at is 'When it failed for good.';
comment on column apportion.worker_failed_jobs.status is 'open, replayed (replay_failed_job) or resolved (resolve_failed_job).';
