-- queued: enqueue and enqueue_many, for the current tenant (or as system
-- jobs, for system tasks). The insert path (db/40_queue.sql) checks each job
-- against the registry and wakes listeners.

-- Enqueue one job. Returns the job id; with p_job_key, an equal job still
-- queued is reused and its id returned.
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
  v_tenant uuid;
  v_id bigint;
begin
  -- (Checked here too: the column is a smallint, and a value past its range
  -- would fail as 22003 before the insert path's check.)
  if p_priority not between -100 and 100 then
    raise exception 'priority must be between -100 and 100 (got %)', p_priority using errcode = '22023';
  end if;
  -- System tasks run as system jobs: no tenant, whoever enqueues them.
  select case when t.tenant_scope = 'system' then null else apportion.current_tenant_id() end into v_tenant
    from apportion.queue_tasks t where t.queue = p_queue and t.task = p_task;
  if p_job_key is null then
    -- (No savepoint: nothing to catch without a key.)
    insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id, priority, run_at)
    values (v_tenant, p_queue, p_task, p_payload,
            coalesce(p_correlation_id, nullif(current_setting('app.correlation_id', true), '')::uuid),
            coalesce(p_priority, 0), coalesce(p_run_at, now()))
    returning id into v_id;
    return v_id;
  end if;
  select j.id into v_id from apportion.jobs j
   where j.state = 'queued' and j.job_key = p_job_key and j.queue = p_queue and j.task = p_task
     and j.tenant_id is not distinct from v_tenant;
  if found then
    return v_id;
  end if;
  begin
    insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id, job_key, priority, run_at)
    values (v_tenant, p_queue, p_task, p_payload,
            coalesce(p_correlation_id, nullif(current_setting('app.correlation_id', true), '')::uuid),
            p_job_key, coalesce(p_priority, 0), coalesce(p_run_at, now()))
    returning id into v_id;
  exception when unique_violation then
    -- A concurrent enqueue with the same job key won.
    select j.id into v_id from apportion.jobs j
     where j.state = 'queued' and j.job_key = p_job_key and j.queue = p_queue and j.task = p_task
       and j.tenant_id is not distinct from v_tenant;
  end;
  return v_id;
end
$$;
grant execute on function apportion.enqueue(text, text, jsonb, uuid, timestamptz, integer, text) to apportion_ingest, apportion_worker;
comment on function apportion.enqueue(text, text, jsonb, uuid, timestamptz, integer, text) is
  'Enqueues one job for the current tenant (a system task: with no tenant), wakes listeners, and returns its id; with p_job_key, an equal job still queued is reused and its id returned. The job goes through the insert path of apportion.jobs. Errors: 22023 for an unknown queue or task, a payload that is not a json object of at most 64 KiB, a run_at that is not finite, a priority outside -100 to 100, or a job_key over 512 bytes; 42501 for a tenant task without a tenant; AP003 when the tenant''s cap on queued jobs is reached.';

-- Enqueue one job per element of a json array of payloads, in one statement
-- (so one notification). Returns the job ids in payload order.
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
  v_tenant uuid;
begin
  if p_payloads is null or jsonb_typeof(p_payloads) <> 'array' then
    raise exception 'enqueue_many: payloads must be a json array of objects' using errcode = '22023';
  end if;
  if jsonb_array_length(p_payloads) = 0 then
    return;  -- no job, nothing to check
  end if;
  if jsonb_array_length(p_payloads) > 10000 then
    raise exception 'enqueue_many: at most 10000 payloads per call (got %)', jsonb_array_length(p_payloads) using errcode = '22023';
  end if;
  if p_priority not between -100 and 100 then
    raise exception 'priority must be between -100 and 100 (got %)', p_priority using errcode = '22023';
  end if;
  select case when t.tenant_scope = 'system' then null else apportion.current_tenant_id() end into v_tenant
    from apportion.queue_tasks t where t.queue = p_queue and t.task = p_task;
  return query
    insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id, priority)
    select v_tenant, p_queue, p_task, p.value,
           coalesce(p_correlation_id, nullif(current_setting('app.correlation_id', true), '')::uuid),
           coalesce(p_priority, 0)
      from jsonb_array_elements(p_payloads) with ordinality p
     order by p.ordinality
    returning id;
end
$$;
grant execute on function apportion.enqueue_many(text, text, jsonb, uuid, integer) to apportion_ingest, apportion_worker;
comment on function apportion.enqueue_many(text, text, jsonb, uuid, integer) is
  'Enqueues one job per element of a json array of payloads in one statement, with one notification, and returns their ids in payload order. Errors: 22023 when p_payloads is not a json array or holds more than 10,000 payloads, for a payload the insert path of apportion.jobs refuses, an unknown queue or task, or a priority outside -100 to 100; 42501 for a tenant task without a tenant; AP003 when the tenant''s cap on queued jobs is reached.';
