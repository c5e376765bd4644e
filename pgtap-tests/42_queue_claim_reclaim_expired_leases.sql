-- reclaim_expired_leases: a running job whose lease ran out (its worker died)
-- is queued again with the lost attempt logged as lease_expired, or, out of
-- attempts, fails for good with AP002 into worker_failed_jobs. A running job
-- with a live lease is left alone. Cross-tenant, for apportion_worker only;
-- claim_jobs reclaims before it claims.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
-- Leases are expired by moving locked_until back as the superuser.
begin;
\ir lib/isolate.sql
select plan(15);

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('attribution', 'allocate_event', '{"event_id": "aaaaaaaa-0000-4000-8000-0000000e0001", "model_version": "m1"}') as live \gset
select apportion.enqueue('attribution', 'allocate_event', '{"event_id": "aaaaaaaa-0000-4000-8000-0000000e0002", "model_version": "m1"}') as expired \gset
-- housekeeping.ping has max_attempts 1: its first lost lease is its last.
select apportion.enqueue('housekeeping', 'ping', '{}', 'cccccccc-0000-4000-8000-00000000000c') as expired_last \gset
reset role;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
select apportion.enqueue('attribution', 'recompute_window', '{}') as expired_b \gset
reset role;
set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w1', array['attribution', 'housekeeping'], 10, 30)), 4::bigint,
  'four jobs of A and B claimed by w1');
reset role;
update apportion.jobs set locked_until = now() - interval '1 second' where id in (:expired, :expired_last, :expired_b);

set local role apportion_ingest;
select throws_ok($$select apportion.reclaim_expired_leases()$$, '42501',
  'permission denied for function reclaim_expired_leases', 'ingest cannot execute reclaim_expired_leases (42501)');
reset role;
select is((select count(*) from apportion.jobs where state = 'running'), 4::bigint, 'the refused call reclaimed nothing');

-- The worker, tenant A set: reclaims B's job too.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_worker;
select is(apportion.reclaim_expired_leases(), 3, 'worker: the three expired leases are reclaimed, B''s among them');
reset role;

select results_eq(format($$select id, state, attempts, locked_by, locked_until, run_at, error_code from apportion.jobs
                            where id in (%s, %s) order by id$$, :expired, :expired_b),
  format($$values (%s::bigint, 'queued', 1, null::text, null::timestamptz, now(), 'AP002'),
                  (%s, 'queued', 1, null, null, now(), 'AP002')$$, :expired, :expired_b),
  'attempt 1 of 5 lost: queued again, runnable now, lease cleared, AP002 recorded, the attempt still counted');
select results_eq(format($$select jsonb_array_length(attempt_log), attempt_log -> 0 ->> 'outcome', attempt_log -> 0 ->> 'worker',
                                  attempt_log -> 0 ->> 'attempt'
                             from apportion.jobs where id = %s$$, :expired),
  $$values (1, 'lease_expired', 'w1', '1')$$, 'its attempt_log entry: attempt 1 by w1, lease_expired');
select is((select error_message from apportion.jobs where id = :expired), 'lease expired: worker w1 stopped before finishing',
  'its error message names the worker');
select is((select count(*) from apportion.worker_failed_jobs where job_id in (:expired, :expired_b)), 0::bigint,
  'a reclaimed job with attempts left is not a failure');

select results_eq(format($$select state, attempts, error_code, error_message, locked_by, attempt_log -> -1 ->> 'outcome'
                             from apportion.jobs where id = %s$$, :expired_last),
  $$values ('failed', 1, 'AP002', 'lease expired on attempt 1 of 1: worker w1 stopped before finishing', null::text, 'failed')$$,
  'attempt 1 of 1 lost: failed for good with AP002');
select results_eq(format($$select tenant_id, queue, task, payload, error_code, error_message, attempts, correlation_id, status
                             from apportion.worker_failed_jobs where job_id = %s$$, :expired_last),
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'housekeeping', 'ping', '{}'::jsonb, 'AP002',
            'lease expired on attempt 1 of 1: worker w1 stopped before finishing', 1, 'cccccccc-0000-4000-8000-00000000000c'::uuid, 'open')$$,
  'and lands in worker_failed_jobs exactly once, with its tenant, payload, attempts and correlation id');

select results_eq(format($$select state, attempts, locked_by, locked_until, attempt_log from apportion.jobs where id = %s$$, :live),
  $$values ('running', 1, 'w1', now() + interval '30 seconds', '[]'::jsonb)$$,
  'the job with a live lease is untouched');

set local role apportion_worker;
select is(apportion.reclaim_expired_leases(), 0, 'reclaiming again finds nothing');
reset role;

-- claim_jobs reclaims expired leases before it claims.
update apportion.jobs set locked_until = now() - interval '1 second' where id = :live;
set local role apportion_worker;
select set_eq($$select job_id, attempt from apportion.claim_jobs('w2', array['attribution'], 10)$$,
  format('values (%s::bigint, 2), (%s, 2), (%s, 2)', :live, :expired, :expired_b),
  'claim_jobs by w2 reclaims the newly expired lease and claims it with the reclaimed jobs, each on attempt 2');
reset role;
select results_eq(format($$select locked_by, attempt_log -> 0 ->> 'outcome' from apportion.jobs where id = %s$$, :live),
  $$values ('w2', 'lease_expired')$$, 'the job is now w2''s, its lost attempt logged');

-- Only the worker may execute it.
select is(
  (select array_agg(r.rolname::text order by r.rolname::text) from pg_roles r
    where r.rolname in ('apportion_ingest', 'apportion_worker', 'apportion_reader')
      and has_function_privilege(r.oid, 'apportion.reclaim_expired_leases(integer)', 'execute')),
  array['apportion_worker'], 'of the runtime roles only apportion_worker may execute reclaim_expired_leases');

select * from finish();
rollback;
