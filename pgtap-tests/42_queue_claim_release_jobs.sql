-- release_jobs: a worker shutting down gives back jobs it claimed but did not
-- run. They are queued again and runnable now, the attempt not counted;
-- jobs of another worker, or no longer running, are not touched.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
\ir lib/isolate.sql
select plan(10);

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping') as a_ping \gset
select apportion.enqueue('housekeeping', 'noop') as a_noop \gset
reset role;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping') as b_ping \gset
reset role;
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w1', array['housekeeping'], 2)), 2::bigint, 'w1 claims two jobs');
select is((select count(*) from apportion.claim_jobs('w2', array['housekeeping'], 2)), 1::bigint, 'w2 claims the third');
reset role;
select id as w2_job from apportion.jobs where locked_by = 'w2' \gset

set local role apportion_ingest;
select throws_ok(format('select apportion.release_jobs(%L, array[%s, %s, %s]::bigint[])', 'w1', :a_ping, :a_noop, :b_ping),
  '42501', 'permission denied for function release_jobs', 'ingest cannot execute release_jobs (42501)');
reset role;

-- w1 releases all three ids, no tenant set: its own two, across tenants; not w2's.
set local role apportion_worker;
select is(apportion.release_jobs('w1', array[:a_ping, :a_noop, :b_ping]::bigint[]), 2, 'worker w1 releases the two jobs it claimed');
reset role;
select results_eq(format($$select state, attempts, locked_by, locked_until, run_at, attempt_log from apportion.jobs
                            where id <> %s order by id$$, :w2_job),
  $$values ('queued', 0, null::text, null::timestamptz, now(), '[]'::jsonb), ('queued', 0, null, null, now(), '[]')$$,
  'they are queued, runnable now, lease cleared, attempts back to 0, no attempt logged');
select results_eq(format($$select state, attempts, locked_by from apportion.jobs where id = %s$$, :w2_job),
  $$values ('running', 1, 'w2')$$, 'the job w2 claimed is untouched by w1''s release');

set local role apportion_worker;
select is(apportion.release_jobs('w1', array[:a_ping, :a_noop]::bigint[]), 0, 'releasing them again does nothing: they are not running');
select is(apportion.release_jobs('w2', array[:w2_job]::bigint[]), 1, 'twin: w2 releases its own job');
select is((select count(*) from apportion.claim_jobs('w3', array['housekeeping'], 10)), 3::bigint,
  'all three released jobs can be claimed again');
reset role;
select is((select array_agg(distinct attempts) from apportion.jobs), array[1],
  'claimed again, each is on attempt 1: the released claims did not count');

select * from finish();
rollback;
