-- run_tenant_jobs: the orchestrator's one-statement unit of work. It sets
-- app.tenant_id transaction-locally to the given tenant and runs the claimed
-- jobs; jobs of other tenants stay invisible and untouched.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
\ir lib/isolate.sql
select plan(8);

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping') as a_ping \gset
reset role;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping') as b_ping \gset
reset role;
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w1', array['housekeeping'], 10)), 2::bigint, 'w1 claims both tenants'' jobs');

set local role apportion_ingest;
select throws_ok(format('select * from apportion.run_tenant_jobs(%L, %L, array[%s]::bigint[])', 'w1', 'aaaaaaaa-0000-4000-8000-00000000000a', :a_ping),
  '42501', 'permission denied for function run_tenant_jobs', 'ingest cannot execute run_tenant_jobs (42501)');
reset role;

set local role apportion_worker;
select results_eq(format($$select job_id, outcome from apportion.run_tenant_jobs('w1', 'aaaaaaaa-0000-4000-8000-00000000000a', array[%s, %s]::bigint[])$$, :a_ping, :b_ping),
  format($$values (%s::bigint, 'succeeded'::text)$$, :a_ping),
  'run as tenant A: A''s job succeeds, B''s job is not even visible');
select is(current_setting('app.tenant_id', true), 'aaaaaaaa-0000-4000-8000-00000000000a',
  'the tenant was set in this transaction (set_config(..., true): gone at commit)');
select is((select database_user from (select result->>'database_user' as database_user from apportion.jobs where id = :a_ping) x), session_user::text,
  'the handler ran (its result names the database user)');
reset role;
select results_eq(format($$select state, locked_by from apportion.jobs where id = %s$$, :b_ping),
  $$values ('running', 'w1')$$, 'B''s job is untouched, still running for w1');

set local role apportion_worker;
select results_eq(format($$select job_id, outcome from apportion.run_tenant_jobs('w1', 'bbbbbbbb-0000-4000-8000-00000000000b', array[%s]::bigint[])$$, :b_ping),
  format($$values (%s::bigint, 'succeeded'::text)$$, :b_ping), 'twin: run as tenant B, B''s job succeeds');
select is(current_setting('app.tenant_id', true), 'bbbbbbbb-0000-4000-8000-00000000000b', 'now the transaction''s tenant is B');
reset role;

select * from finish();
rollback;
