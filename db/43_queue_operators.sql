-- For operators and tenants: a job's status, replaying or settling a
-- failure, cross-tenant views without payloads, and retention.

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
grant execute on function apportion.job_status(bigint) to apportion_ingest, apportion_worker;
comment on function apportion.job_status(bigint) is
  'A job''s state, attempts, result, error and correlation id: of the current tenant''s jobs (the worker also sees system jobs). No row for a job it cannot see.';

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
  insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id)
  values (v_failure.tenant_id, v_failure.queue, v_failure.task, v_failure.payload, v_failure.correlation_id)
  returning id into v_new_id;
  update apportion.worker_failed_jobs f
     set status = 'replayed', replayed_job_id = v_new_id, settled_at = now()
   where f.id = v_failure.id;
  return v_new_id;
end
$$;
grant execute on function apportion.replay_failed_job(bigint) to apportion_worker;
comment on function apportion.replay_failed_job(bigint) is
  'Replays a failed job as a new queued job with the same tenant, queue, task, payload and correlation id, marks the failure replayed, and returns the new job''s id. Runs under the failed job''s tenant, set by the caller. Errors: 22023 when the job has no open failure visible to the current tenant; AP003 when the tenant''s cap on queued jobs is reached.';

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
grant execute on function apportion.resolve_failed_job(bigint) to apportion_worker;
comment on function apportion.resolve_failed_job(bigint) is
  'Marks a job''s open failure as dealt with; prune_jobs deletes it after retention. Errors: 22023 when the job has no open failure visible to the current tenant.';

-- An error message as operators see it: without the values of the job's
-- payload. Every scalar of the payload (string or number, 3 characters or
-- more) and every quoted segment ('...' or "...": PostgreSQL and the
-- handlers quote the values they repeat) becomes an ellipsis. The tenant
-- reads the message whole under its own RLS (job_status, worker_failed_jobs);
-- open_failures and the outcomes run_jobs returns to the orchestrator (which
-- logs them) carry it masked.
create or replace function apportion.mask_payload_values(p_message text, p_payload jsonb)
returns text
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_message text := p_message;
  v_value text;
begin
  if v_message is null then
    return null;
  end if;
  if jsonb_typeof(p_payload) in ('object', 'array') then
    for v_value in
      -- Longest first, so that no value is masked only in part.
      select v.value from (
        select distinct s.value #>> '{}' as value
          from jsonb_path_query(p_payload, 'strict $.** ? (@.type() == "string" || @.type() == "number")') s (value)
      ) v
       where length(v.value) >= 3
       order by length(v.value) desc, v.value
    loop
      v_message := replace(v_message, v_value, '…');
    end loop;
  end if;
  v_message := regexp_replace(v_message, '''[^'']*''', '''…''', 'g');
  return regexp_replace(v_message, '"[^"]*"', '"…"', 'g');
end
$$;
grant execute on function apportion.mask_payload_values(text, jsonb) to apportion_worker;
comment on function apportion.mask_payload_values(text, jsonb) is
  'A message without the payload''s values: every string or number of the payload of 3 characters or more, and every quoted segment, becomes an ellipsis. What operators'' views and the worker''s logs show.';

-- Cross-tenant, for operators: open failures (newest first), to find what
-- to replay. Tenant data stays behind the tenant's own transaction: payloads
-- are not shown here, and messages are shown without payload values.
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
  select f.job_id, f.tenant_id, f.queue, f.task, f.error_code,
         apportion.mask_payload_values(f.error_message, f.payload), f.attempts, f.correlation_id, f.failed_at
    from apportion.worker_failed_jobs f
   where f.status = 'open' and (p_correlation_id is null or f.correlation_id = p_correlation_id)
   order by f.failed_at desc, f.id desc
   limit least(greatest(coalesce(p_limit, 50), 1), 1000)
$$;
grant execute on function apportion.open_failures(uuid, integer) to apportion_worker;
comment on function apportion.open_failures(uuid, integer) is
  'Cross-tenant, for operators: open failures, newest first (of one correlation id, when given; at most p_limit, 1 to 1,000), to find what to replay. No payloads, and messages without payload values.';

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
grant execute on function apportion.queue_overview() to apportion_worker;
comment on function apportion.queue_overview() is
  'Cross-tenant aggregates, for health and status: per queue the jobs queued, queued and due, and running, the age of the oldest due job in seconds, and the open failures.';

-- Cross-tenant, aggregates only: the live path's backlog per model version
-- (events ingested or restated, not yet allocated) and how long the oldest
-- has waited. For metrics and status.
create or replace function apportion.pending_allocations_overview()
returns table (
  model_version text,
  pending bigint,
  oldest_pending_seconds numeric
)
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select p.model_version, count(*), round(extract(epoch from now() - min(p.enqueued_at)), 3)
    from apportion.pending_allocations p
   group by p.model_version
   order by p.model_version
$$;
grant execute on function apportion.pending_allocations_overview() to apportion_worker;
comment on function apportion.pending_allocations_overview() is
  'Cross-tenant aggregates, for metrics and status: the live path''s backlog per model version (events ingested or restated, not yet allocated) and how long the oldest has waited, in seconds.';

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
grant execute on function apportion.prune_jobs(interval) to apportion_worker;
comment on function apportion.prune_jobs(interval) is
  'Cross-tenant retention: deletes succeeded jobs, failed jobs whose failure is settled, and settled failures, all older than p_retention; returns how many of each. Errors: 22023 for a null or negative retention.';
