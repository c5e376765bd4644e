-- claim_and_run_jobs: the idle path in one round trip. A claim that finds at
-- most p_run_max jobs runs the first tenant's of them in the claim's own
-- transaction, as the worker, under that tenant set locally; the others stay
-- claimed under the lease for the runners. The commit is durable when work
-- ran; the caller's tenant setting comes back afterwards.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
\ir lib/isolate.sql
select plan(20);

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

-- A task that reports who ran it, under which tenant and correlation id, and
-- one that always fails with a retryable error.
create schema t42;
grant usage on schema t42 to apportion_worker;
create function t42.whoami(p_payload jsonb) returns jsonb language sql as $$
  select jsonb_build_object('role', current_user, 'tenant', current_setting('app.tenant_id', true),
                            'correlation', current_setting('app.correlation_id', true))
$$;
create function t42.flaky(p_payload jsonb) returns jsonb language plpgsql as $$
begin
  raise exception 'try again later' using errcode = '40P01';
end
$$;
-- And one that changes the tenant and correlation settings and succeeds.
create function t42.tamper(p_payload jsonb) returns jsonb language sql as $$
  select jsonb_build_object('tenant', set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true),
                            'correlation', set_config('app.correlation_id', 'eeeeeeee-0000-4000-8000-00000000000e', true))
$$;
grant execute on function t42.whoami(jsonb), t42.flaky(jsonb), t42.tamper(jsonb) to apportion_worker;
insert into apportion.queue_tasks (queue, task, handler, tenant_scope, max_attempts, description) values
  ('housekeeping', 't42_whoami', 't42.whoami', 'any', 3, 'test only'),
  ('housekeeping', 't42_flaky', 't42.flaky', 'any', 3, 'test only'),
  ('housekeeping', 't42_tamper', 't42.tamper', 'any', 3, 'test only');

-- One job of tenant A: claimed and run in one call. ------------------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 't42_whoami', '{}', 'cccccccc-0000-4000-8000-00000000000c') as a1 \gset
reset role;

-- (The test cluster runs with synchronous_commit off; a worker's is on.)
set local synchronous_commit = on;
set local role apportion_worker;
select set_config('app.tenant_id', '', true);
select is(current_setting('synchronous_commit'), 'on', 'the transaction commits durably to start with');
select results_eq(
  $$select job_id, tenant_id, outcome, attempt, error_code from apportion.claim_and_run_jobs('w1', array['housekeeping'], 10, 60, 1)$$,
  format($$values (%s::bigint, 'aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'succeeded'::text, 1, null::text)$$, :a1),
  'a claim that finds one job runs it and returns its outcome');
select is(current_setting('app.tenant_id', true), '', 'the caller''s tenant setting is back afterwards');
select is(current_setting('synchronous_commit'), 'on', 'work ran: the transaction still commits durably');
reset role;
select results_eq(format($$select state, attempts, locked_by, locked_until, result from apportion.jobs where id = %s$$, :a1),
  $$values ('succeeded', 1, null::text, null::timestamptz,
            '{"role": "apportion_worker", "tenant": "aaaaaaaa-0000-4000-8000-00000000000a", "correlation": "cccccccc-0000-4000-8000-00000000000c"}'::jsonb)$$,
  'it ran as the worker role, under its tenant and correlation id, and is done, no lease left');
select is((select jsonb_array_length(attempt_log) from apportion.jobs where id = :a1), 1, 'one attempt recorded');
select is((select attempt_log->0->>'outcome' from apportion.jobs where id = :a1), 'succeeded', 'the attempt succeeded');

-- Two tenants and a system job, run_max 10: only the first tenant's run. ---------
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 't42_whoami', '{}', null, null, -5) as b1 \gset
select apportion.enqueue('housekeeping', 't42_whoami', '{}', null, null, -5) as b2 \gset
reset role;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 't42_whoami') as a2 \gset
reset role;
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select apportion.enqueue('housekeeping', 't42_whoami') as s1 \gset
reset role;

set local role apportion_worker;
select set_config('app.tenant_id', 'not-a-tenant-just-a-marker', true);
select results_eq(
  $$select job_id, outcome from apportion.claim_and_run_jobs('w2', array['housekeeping'], 10, 60, 10) order by job_id$$,
  format($$values (%s::bigint, 'succeeded'::text), (%s, 'succeeded'), (%s, null), (%s, null)$$, :b1, :b2, :a2, :s1),
  'tenant B''s jobs (first in claim order: priority -5) ran; A''s and the system job are returned unrun');
select is(current_setting('app.tenant_id', true), 'not-a-tenant-just-a-marker', 'the caller''s tenant setting is restored');
reset role;
select results_eq(format($$select id, state, locked_by from apportion.jobs where id in (%s, %s) order by id$$, :a2, :s1),
  format($$values (%s::bigint, 'running', 'w2'), (%s, 'running', 'w2')$$, :a2, :s1),
  'the unrun jobs stay claimed by w2 under the lease, for its runners');
select is((select result->>'tenant' from apportion.jobs where id = :b1), 'bbbbbbbb-0000-4000-8000-00000000000b', 'B''s job ran under B');

-- A bigger claim than run_max: nothing runs, it is a plain claim. ----------------
delete from apportion.jobs;
set local role apportion_worker;
select set_config('app.tenant_id', '', true);
select apportion.enqueue('housekeeping', 't42_whoami') as s2 \gset
select apportion.enqueue('housekeeping', 't42_whoami') as s3 \gset
select results_eq(
  $$select count(*), count(outcome) from apportion.claim_and_run_jobs('w3', array['housekeeping'], 10, 60, 1)$$,
  $$values (2::bigint, 0::bigint)$$, 'two jobs found with run_max 1: both claimed, neither run');
select is(current_setting('synchronous_commit'), 'off', 'a bare claim commits without waiting for the WAL flush, as claim_jobs does');
reset role;
select results_eq(format($$select count(*) from apportion.jobs where id in (%s, %s) and state = 'running' and locked_until > now()$$, :s2, :s3),
  $$values (2::bigint)$$, 'both are running under a lease');

-- A failing job run inline: the attempt is recorded and the job rescheduled. -----
delete from apportion.jobs;
set local role apportion_worker;
select apportion.enqueue('housekeeping', 't42_flaky') as f1 \gset
select results_eq(
  $$select outcome, error_code, error_message from apportion.claim_and_run_jobs('w4', array['housekeeping'], 10, 60, 1)$$,
  $$values ('retry'::text, '40P01'::text, 'try again later'::text)$$,
  'a retryable failure is returned as a retry with its SQLSTATE and message');
reset role;
select results_eq(format($$select state, attempts, attempt_log->0->>'outcome' from apportion.jobs where id = %s$$, :f1),
  $$values ('queued', 1, 'retry')$$, 'the job is queued again with the attempt logged');

-- A handler that changes the settings cannot hand them on: the next job of
-- the same batch runs under its own tenant and correlation id again.
delete from apportion.jobs;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 't42_tamper', '{}', 'cccccccc-0000-4000-8000-00000000000c', null, -1) as t1 \gset
select apportion.enqueue('housekeeping', 't42_whoami', '{}', 'cccccccc-0000-4000-8000-00000000000c') as t2 \gset
reset role;
set local role apportion_worker;
select set_config('app.tenant_id', '', true);
select results_eq(
  $$select outcome from apportion.claim_and_run_jobs('w6', array['housekeeping'], 10, 60, 10) order by job_id$$,
  $$values ('succeeded'::text), ('succeeded')$$, 'tamper, then whoami, both run in one batch');
reset role;
select results_eq(format($$select result from apportion.jobs where id = %s$$, :t2),
  $$values ('{"role": "apportion_worker", "tenant": "aaaaaaaa-0000-4000-8000-00000000000a", "correlation": "cccccccc-0000-4000-8000-00000000000c"}'::jsonb)$$,
  'the job after the tampering handler still ran under tenant A and its own correlation id');

-- Bad input, and who may call it. ---------------------------------------------------
set local role apportion_worker;
select throws_ok($$select * from apportion.claim_and_run_jobs('w5', array['housekeeping'], 10, 60, -1)$$,
  '22023', 'claim_and_run_jobs: run_max must be 0 or more (got -1)', 'a negative run_max is refused (22023)');
reset role;
set local role apportion_ingest;
select throws_ok($$select * from apportion.claim_and_run_jobs('w5', array['housekeeping'], 10, 60, 1)$$,
  '42501', null, 'ingest cannot call it (42501)');
reset role;

select * from finish();
rollback;
