-- Fixtures for pgTAP tests: include right after BEGIN with
--   \ir lib/fixtures.sql
-- Everything here lives in schema apportion_test and is rolled back with the
-- test. Fixtures write as the caller (the superuser running the suite,
-- unless a test switched roles), so they set up any state; the behaviour a
-- test proves is then exercised as the real runtime role (as_role).
create schema apportion_test;
grant usage on schema apportion_test to public;

-- A tenant with the default channel taxonomy.
create function apportion_test.make_tenant(p_name text, p_id uuid default gen_random_uuid())
returns uuid
language sql
as $$
  select apportion.create_tenant(p_name, p_id)
$$;

-- Act as a runtime role under a tenant (null: no tenant) for the rest of the
-- transaction, or until as_admin().
create function apportion_test.as_role(p_role text, p_tenant uuid default null)
returns void
language plpgsql
as $$
begin
  perform set_config('app.tenant_id', coalesce(p_tenant::text, ''), true);
  execute format('set local role %I', p_role);
end
$$;

-- Back to the suite's own role, no tenant.
create function apportion_test.as_admin()
returns void
language plpgsql
as $$
begin
  reset role;
  perform set_config('app.tenant_id', '', true);
end
$$;

-- A touchpoint of the tenant's customer.
create function apportion_test.make_touch(
  p_tenant uuid, p_customer text, p_channel text, p_at timestamptz, p_external_id text default null)
returns uuid
language sql
as $$
  insert into apportion.touchpoints (tenant_id, customer_id, channel, occurred_at, external_id)
  values (p_tenant, p_customer, p_channel, p_at, p_external_id)
  returning id
$$;

-- A conversion event (which enqueues allocation for the tenant's active
-- models, as any ingest does).
create function apportion_test.make_event(
  p_tenant uuid, p_customer text, p_at timestamptz, p_revenue_cents bigint,
  p_currency text default 'USD', p_id uuid default gen_random_uuid(), p_external_id text default null)
returns uuid
language sql
as $$
  insert into apportion.attribution_events (tenant_id, id, customer_id, occurred_at, revenue_cents, currency, external_event_id)
  values (p_tenant, p_id, p_customer, p_at, p_revenue_cents, p_currency, p_external_id)
  returning id
$$;

-- A job in any state, written directly (the registry still checks new
-- queued jobs; a failed one is recorded in worker_failed_jobs as the queue
-- records every failure).
create function apportion_test.make_job(
  p_tenant uuid, p_queue text, p_task text,
  p_payload jsonb default '{}',
  p_state text default 'queued',
  p_job_key text default null,
  p_run_at timestamptz default now(),
  p_attempts integer default null,
  p_finished_at timestamptz default null,
  p_error_code text default null,
  p_error_message text default null,
  p_locked_by text default null,
  p_locked_until timestamptz default null,
  p_priority integer default 0)
returns bigint
language sql
as $$
  insert into apportion.jobs (tenant_id, queue, task, payload, state, job_key, run_at, attempts, finished_at,
                              error_code, error_message, locked_by, locked_until, priority, started_at)
  values (p_tenant, p_queue, p_task, p_payload, p_state, p_job_key, p_run_at,
          coalesce(p_attempts, case when p_state = 'queued' then 0 else 1 end),
          coalesce(p_finished_at, case when p_state in ('succeeded', 'failed') then now() end),
          case when p_state = 'failed' then coalesce(p_error_code, 'XX000') else p_error_code end,
          case when p_state = 'failed' then coalesce(p_error_message, 'fixture failure') else p_error_message end,
          p_locked_by, p_locked_until, p_priority,
          case when p_state <> 'queued' then now() end)
  returning id
$$;

grant execute on all functions in schema apportion_test to public;
