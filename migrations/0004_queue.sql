-- Up Migration
-- The durable job queue. Jobs live in tables; NOTIFY is only a wake-up hint.
--
-- apportion.jobs is partitioned by state: jobs_live holds queued and running
-- jobs (small and hot: the claim index stays clean however much history
-- there is), jobs_done holds succeeded and failed ones until pruned.
-- The claim path is cross-tenant by design, so its index leads with
-- (priority, run_at, id) rather than tenant_id.
set local role apportion_owner;

-- Registry of queues and tasks: what may be enqueued and which SQL function
-- handles it. handler null = accepted and kept waiting (the llm queue has no
-- provider yet).
create table apportion.queue_tasks (
  queue text not null constraint queue_tasks_queue_known check (queue in ('attribution', 'housekeeping', 'maintenance', 'llm')),
  task text not null constraint queue_tasks_task_format check (task ~ '^[a-z][a-z0-9_]{0,62}$'),
  handler text,
  tenant_scope text not null constraint queue_tasks_tenant_scope check (tenant_scope in ('tenant', 'system', 'any')),
  max_attempts integer not null default 5 constraint queue_tasks_max_attempts_positive check (max_attempts between 1 and 100),
  description text not null,
  primary key (queue, task)
);

insert into apportion.queue_tasks (queue, task, handler, tenant_scope, max_attempts, description) values
  ('attribution', 'allocate_event', 'apportion.task_allocate_event', 'tenant', 5,
   'Allocate one event for one model version. Payload {"event_id", "model_version"}.'),
  ('attribution', 'recompute_window', 'apportion.task_recompute_window', 'tenant', 5,
   'Allocate every event in [window_start, window_end). Payload {"window_start", "window_end", "model_version"}.'),
  ('housekeeping', 'ping', 'apportion.task_ping', 'any', 1,
   'Readiness round trip through the queue. Payload {}.'),
  ('housekeeping', 'noop', 'apportion.task_noop', 'any', 1,
   'Does nothing; measures the queue itself. Payload {}.'),
  ('housekeeping', 'prune', 'apportion.task_prune', 'system', 3,
   'Delete finished jobs and settled failures past retention. Payload {"retention": "7 days"} (optional).'),
  ('maintenance', 'reclaim_leases', 'apportion.task_reclaim_leases', 'system', 3,
   'Make jobs whose lease expired runnable again. Payload {}.'),
  ('llm', 'complete', null, 'tenant', 5,
   'Reserved for calls to an external model provider. Accepted and kept waiting until a provider exists.');

-- What running a job came to (run_jobs, run_tenant_jobs, complete_jobs).
create type apportion.job_outcome as (
  job_id bigint,
  outcome text,
  attempt integer,
  ms numeric,
  error_code text,
  error_message text
);

create sequence apportion.jobs_id_seq as bigint;

create table apportion.jobs (
  id bigint not null default nextval('apportion.jobs_id_seq'),
  tenant_id uuid default nullif(current_setting('app.tenant_id', true), '')::uuid,
  queue text not null,
  task text not null,
  payload jsonb not null default '{}'
    constraint jobs_payload_is_object check (jsonb_typeof(payload) = 'object'),
  correlation_id uuid default nullif(current_setting('app.correlation_id', true), '')::uuid,
  job_key text,
  priority smallint not null default 0,
  run_at timestamptz not null default now(),
  state text not null default 'queued'
    constraint jobs_state_known check (state in ('queued', 'running', 'succeeded', 'failed')),
  attempts integer not null default 0,
  max_attempts integer not null default 5 constraint jobs_max_attempts_positive check (max_attempts between 1 and 100),
  locked_by text,
  locked_until timestamptz,
  result jsonb,
  error_code text,
  error_message text,
  -- One entry per attempt: {attempt, worker, started_at, finished_at, outcome, error_code, error_message}.
  attempt_log jsonb not null default '[]',
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  constraint jobs_key primary key (id, state),
  constraint jobs_task_registered foreign key (queue, task) references apportion.queue_tasks (queue, task)
) partition by list (state);

create table apportion.jobs_live partition of apportion.jobs for values in ('queued', 'running')
  with (fillfactor = 70, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
        autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000);
create table apportion.jobs_done partition of apportion.jobs for values in ('succeeded', 'failed');

-- The claim: runnable jobs in claim order.
create index jobs_runnable_idx on apportion.jobs_live (priority, run_at, id) where state = 'queued';
-- Lease expiry.
create index jobs_lease_idx on apportion.jobs_live (locked_until) where state = 'running';
-- De-duplication of queued work by job key.
create unique index jobs_queued_key_idx on apportion.jobs_live
  (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), queue, task, job_key)
  where state = 'queued' and job_key is not null;
create index jobs_correlation_idx on apportion.jobs (correlation_id) where correlation_id is not null;
-- Retention scans by age; BRIN costs almost nothing to maintain on the
-- append-mostly history.
create index jobs_done_finished_idx on apportion.jobs_done using brin (finished_at);

-- Every job that failed for good. Nothing else is lost.
create table apportion.worker_failed_jobs (
  id bigint generated always as identity primary key,
  tenant_id uuid,
  job_id bigint not null,
  queue text not null,
  task text not null,
  payload jsonb not null,
  error_code text not null,
  error_message text not null,
  attempts integer not null,
  correlation_id uuid,
  failed_at timestamptz not null default now(),
  status text not null default 'open' constraint worker_failed_jobs_status_known check (status in ('open', 'replayed', 'resolved')),
  replayed_job_id bigint,
  settled_at timestamptz
);
create index worker_failed_jobs_tenant_idx on apportion.worker_failed_jobs (tenant_id, failed_at);
create index worker_failed_jobs_correlation_idx on apportion.worker_failed_jobs (correlation_id) where correlation_id is not null;
create index worker_failed_jobs_job_idx on apportion.worker_failed_jobs (job_id);

-- Row level security: tenant-facing roles see their tenant's rows; the worker
-- also sees system jobs (no tenant), which carry no tenant data. New jobs
-- must also fit their task's scope: a tenant cannot queue a system task
-- (e.g. the cross-tenant prune) by inserting it directly.
do $$
declare
  t text;
  v_scope_ok text;
begin
  foreach t in array array['jobs', 'jobs_live', 'jobs_done', 'worker_failed_jobs'] loop
    v_scope_ok := case when t = 'worker_failed_jobs' then 'true' else format($s$exists (
        select from apportion.queue_tasks q where q.queue = %1$I.queue and q.task = %1$I.task
           and q.tenant_scope <> case when %1$I.tenant_id is null then 'tenant' else 'system' end)$s$, t) end;
    execute format('alter table apportion.%I enable row level security', t);
    execute format('alter table apportion.%I force row level security', t);
    execute format($p$create policy tenant_isolation on apportion.%I
      to apportion_ingest, apportion_worker, apportion_reader
      using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
      with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid and %s)$p$, t, v_scope_ok);
    execute format($p$create policy system_jobs on apportion.%I to apportion_worker
      using (tenant_id is null) with check (tenant_id is null and %s)$p$, t, v_scope_ok);
    execute format('create policy owner_admin on apportion.%I to apportion_owner using (true) with check (true)', t);
  end loop;
end
$$;

revoke all on apportion.queue_tasks, apportion.jobs, apportion.jobs_live, apportion.jobs_done,
  apportion.worker_failed_jobs, apportion.jobs_id_seq from public;
grant select on apportion.queue_tasks to apportion_ingest, apportion_worker, apportion_reader;
grant usage on type apportion.job_outcome to apportion_worker;
-- Enqueue runs as the caller: it may set only these columns; state, attempts
-- and leases keep their defaults.
grant select, insert (tenant_id, queue, task, payload, correlation_id, job_key, priority, run_at, max_attempts)
  on apportion.jobs to apportion_ingest, apportion_worker;
grant update (state, attempts, run_at, locked_by, locked_until, result, error_code, error_message,
              attempt_log, started_at, finished_at)
  on apportion.jobs to apportion_worker;
grant usage on sequence apportion.jobs_id_seq to apportion_ingest, apportion_worker;
grant select on apportion.worker_failed_jobs to apportion_ingest, apportion_worker;
grant insert on apportion.worker_failed_jobs to apportion_worker;
grant update (status, replayed_job_id, settled_at) on apportion.worker_failed_jobs to apportion_worker;

reset role;
