-- job_status: a tenant reads its own job through its life (queued, running,
-- succeeded or failed) and never another tenant's; the worker also reads
-- system jobs.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
\ir lib/isolate.sql
select plan(13);

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping', '{}', 'cccccccc-0000-4000-8000-00000000000c') as ok_job \gset
select apportion.enqueue('housekeeping', 'ping', '{"x": 1}') as bad_job \gset

select results_eq(format('select * from apportion.job_status(%s)', :ok_job),
  $$values ('queued', 0, null::jsonb, null::text, null::text, 'cccccccc-0000-4000-8000-00000000000c'::uuid)$$,
  'ingest, tenant A: its new job is queued, 0 attempts, with its correlation id');
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
select is_empty(format('select * from apportion.job_status(%s)', :ok_job), 'ingest, tenant B: A''s job is not visible (0 rows)');
select set_config('app.tenant_id', '', true);
select is_empty(format('select * from apportion.job_status(%s)', :ok_job), 'ingest, no tenant: no job is visible');
reset role;
set local role apportion_reader;
select throws_ok(format('select * from apportion.job_status(%s)', :ok_job), '42501',
  'permission denied for function job_status', 'reader cannot execute job_status (42501)');
reset role;

set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w1', array['housekeeping'])), 2::bigint, 'the worker claims both jobs');
reset role;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select results_eq(format('select state, attempts, result from apportion.job_status(%s)', :ok_job),
  $$values ('running', 1, null::jsonb)$$, 'ingest, tenant A: claimed, the job is running on attempt 1');
reset role;
set local role apportion_worker;
select is((select count(*) from apportion.run_jobs('w1', array[:ok_job, :bad_job]::bigint[])), 2::bigint, 'the worker runs both under A');
reset role;

set local role apportion_ingest;
select results_eq(format($$select state, attempts, result ->> 'status', error_code, error_message from apportion.job_status(%s)$$, :ok_job),
  $$values ('succeeded', 1, 'ok', null::text, null::text)$$, 'ingest, tenant A: the ping job succeeded with its result');
select results_eq(format('select state, attempts, result, error_code, error_message from apportion.job_status(%s)', :bad_job),
  $$values ('failed', 1, null::jsonb, '22023', 'housekeeping.ping: unexpected payload field(s) x; allowed: none')$$,
  'ingest, tenant A: the job with a bad payload failed at once, 22023, with the handler''s message');
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
select is_empty(format('select * from apportion.job_status(%s)', :bad_job), 'ingest, tenant B: A''s failed job is not visible either');
reset role;

-- System jobs: the worker sees them with or without a tenant; ingest does not.
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select apportion.enqueue('maintenance', 'reclaim_leases') as sys_job \gset
select results_eq(format('select state, attempts from apportion.job_status(%s)', :sys_job),
  $$values ('queued', 0)$$, 'worker, no tenant: a system job is visible');
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
select is_empty(format('select * from apportion.job_status(%s)', :ok_job), 'worker, tenant B: A''s job is not visible');
reset role;
set local role apportion_ingest;
select is_empty(format('select * from apportion.job_status(%s)', :sys_job), 'ingest, tenant B: the system job is not visible');
reset role;

select * from finish();
rollback;
