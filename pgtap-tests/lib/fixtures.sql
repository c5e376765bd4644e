-- Fixtures for apportion's own pgTAP tests: include right after BEGIN with
--   \ir lib/fixtures.sql
-- The helpers services use (sql/test_helpers.sql: tenants, roles, touches,
-- events, draining pending allocations), plus what only the queue's own
-- tests need. Everything lives in schema apportion_test and is rolled back
-- with the test.
\ir ../../sql/test_helpers.sql

\ir isolate.sql

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
