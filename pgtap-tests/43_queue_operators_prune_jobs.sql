-- prune_jobs: retention, across tenants. Succeeded jobs, failed jobs whose
-- failure is settled, and settled failures older than the retention are
-- deleted; open failures and their jobs, recent rows and queued or running
-- jobs are kept. A negative or null retention is refused.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
-- Fixtures are written as the superuser, aged by finished_at / settled_at.
begin;
select plan(12);
\ir lib/fixtures.sql

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

\o /dev/null
select apportion_test.make_job(t, q, task, p_state => st, p_job_key => k, p_run_at => at, p_finished_at => fin)
  from (values
    ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'housekeeping', 'ping', 'old_ok', 'succeeded', now() - interval '10 days', now() - interval '10 days'),
    ('bbbbbbbb-0000-4000-8000-00000000000b', 'housekeeping', 'ping', 'old_ok_b', 'succeeded', now() - interval '10 days', now() - interval '10 days'),
    (null, 'maintenance', 'reclaim_leases', 'old_ok_sys', 'succeeded', now() - interval '10 days', now() - interval '10 days'),
    ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping', 'new_ok', 'succeeded', now() - interval '1 day', now() - interval '1 day'),
    ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping', 'old_fail_open', 'failed', now() - interval '10 days', now() - interval '10 days'),
    ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping', 'old_fail_resolved', 'failed', now() - interval '10 days', now() - interval '10 days'),
    ('bbbbbbbb-0000-4000-8000-00000000000b', 'housekeeping', 'ping', 'old_fail_replayed_lately', 'failed', now() - interval '10 days', now() - interval '10 days'),
    ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping', 'old_queued', 'queued', now() - interval '10 days', null),
    ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping', 'old_running', 'running', now() - interval '10 days', null)
  ) j (t, q, task, k, st, at, fin);
\o
-- Each failed job was recorded by the queue; age and settle its failure.
update apportion.worker_failed_jobs f
   set failed_at = now() - interval '10 days', status = x.status, settled_at = x.settled_at
  from apportion.jobs j
  join (values ('old_fail_open', 'open', null::timestamptz),
               ('old_fail_resolved', 'resolved', now() - interval '10 days'),
               ('old_fail_replayed_lately', 'replayed', now() - interval '1 day')) x (job_key, status, settled_at)
    on x.job_key = j.job_key
 where f.job_id = j.id;

-- Who may prune; bad retention.
set local role apportion_ingest;
select throws_ok($$select * from apportion.prune_jobs('7 days')$$, '42501',
  'permission denied for function prune_jobs', 'ingest cannot execute prune_jobs (42501)');
reset role;
set local role apportion_worker;
select throws_ok($$select * from apportion.prune_jobs('-1 day')$$, '22023',
  'prune_jobs: retention must be a non-negative interval (got -1 days)', 'a negative retention refused (22023)');
select throws_ok($$select * from apportion.prune_jobs(null)$$, '22023',
  'prune_jobs: retention must be a non-negative interval (got <NULL>)', 'a null retention refused (22023)');
reset role;
select is((select count(*) from apportion.jobs), 9::bigint, 'the refused calls deleted no job');

-- 7 days, as the worker with tenant A set: prunes every tenant's history.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_worker;
select results_eq($$select jobs_deleted, failures_deleted from apportion.prune_jobs('7 days')$$,
  $$values (5::bigint, 1::bigint)$$, 'worker: prune_jobs(7 days) deletes 5 jobs and 1 failure');
reset role;
select set_eq($$select job_key from apportion.jobs$$,
  array['new_ok', 'old_fail_open', 'old_queued', 'old_running'],
  'kept: the recent success, the job of the open failure, the queued and the running job');
select ok((select count(*) = 0 from apportion.jobs where job_key in ('old_ok', 'old_ok_b', 'old_ok_sys')),
  'deleted: old successes of A, of B and of the system');
select ok((select count(*) = 0 from apportion.jobs where job_key in ('old_fail_resolved', 'old_fail_replayed_lately')),
  'deleted: old failed jobs whose failure is settled (resolved, or replayed lately)');
select set_eq($$select status from apportion.worker_failed_jobs$$, array['open', 'replayed'],
  'kept: the open failure and the failure settled only a day ago; deleted: the failure settled 10 days ago');

set local role apportion_worker;
select results_eq($$select jobs_deleted, failures_deleted from apportion.prune_jobs('7 days')$$,
  $$values (0::bigint, 0::bigint)$$, 'pruning again with the same retention deletes nothing');
select results_eq($$select jobs_deleted, failures_deleted from apportion.prune_jobs('0 seconds')$$,
  $$values (1::bigint, 1::bigint)$$, 'retention 0 deletes the day-old success and the day-old settled failure');
reset role;
select results_eq($$select j.job_key, f.status from apportion.jobs j join apportion.worker_failed_jobs f on f.job_id = j.id$$,
  $$values ('old_fail_open', 'open')$$, 'an open failure and its job survive any retention');

select * from finish();
rollback;
