-- replay_failed_job and resolve_failed_job: settling a failure, for
-- apportion_worker under the failed job's tenant. A replay is a new queued
-- job with the same tenant, queue, task, payload and correlation id, and
-- marks the failure replayed; a failure is settled once. Another tenant can
-- neither replay nor resolve it.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
\ir lib/isolate.sql
select plan(18);

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

-- Two failures of A and one system failure, through the real queue: payloads
-- the handlers refuse (22023) fail at once.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping', '{"x": 1}', 'cccccccc-0000-4000-8000-00000000000c') as to_replay \gset
select apportion.enqueue('housekeeping', 'ping', '{"x": 2}', 'dddddddd-0000-4000-8000-00000000000d') as to_resolve \gset
reset role;
set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w1', array['housekeeping'])), 2::bigint, 'A''s two jobs claimed');
select is((select count(*) from apportion.run_jobs('w1', array[:to_replay, :to_resolve]::bigint[]) where outcome = 'failed'), 2::bigint,
  'both fail at once');
select set_config('app.tenant_id', '', true);
select apportion.enqueue('maintenance', 'reclaim_leases', '{"x": 3}') as sys_failed \gset
select is((select count(*) from apportion.claim_jobs('w1', array['maintenance'])), 1::bigint, 'the system job claimed');
select is((select outcome from apportion.run_jobs('w1', array[:sys_failed]::bigint[])), 'failed', 'and it fails');
reset role;

-- Who may replay.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select throws_ok(format('select apportion.replay_failed_job(%s)', :to_replay), '42501',
  'permission denied for function replay_failed_job', 'ingest cannot execute replay_failed_job (42501)');
reset role;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_worker;
select throws_ok(format('select apportion.replay_failed_job(%s)', :to_replay), '22023',
  format('replay_failed_job: no open failure for job %s visible to the current tenant', :to_replay),
  'worker, tenant B: replaying A''s failed job refused (22023)');
reset role;
select is((select status from apportion.worker_failed_jobs where job_id = :to_replay), 'open', 'the failure is still open');

-- Replay under A.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_worker;
select apportion.replay_failed_job(:to_replay) as replayed \gset
reset role;
select isnt(:replayed::bigint, :to_replay::bigint, 'worker, tenant A: the replay is a new job');
select results_eq(format($$select tenant_id, queue, task, payload, correlation_id, state, attempts, max_attempts, attempt_log
                             from apportion.jobs where id = %s$$, :replayed),
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'housekeeping', 'ping', '{"x": 1}'::jsonb,
            'cccccccc-0000-4000-8000-00000000000c'::uuid, 'queued', 0, 1, '[]'::jsonb)$$,
  'the new job: same tenant, queue, task, payload and correlation id; queued with fresh attempts');
select results_eq(format($$select status, replayed_job_id, settled_at from apportion.worker_failed_jobs where job_id = %s$$, :to_replay),
  format($$values ('replayed', %s::bigint, now())$$, :replayed), 'the failure is marked replayed, pointing at the new job');
select is((select state from apportion.jobs where id = :to_replay), 'failed', 'the failed job itself stays failed');
set local role apportion_worker;
select throws_ok(format('select apportion.replay_failed_job(%s)', :to_replay), '22023',
  format('replay_failed_job: no open failure for job %s visible to the current tenant', :to_replay),
  'replaying it a second time refused (22023)');
reset role;
select is((select count(*) from apportion.jobs where correlation_id = 'cccccccc-0000-4000-8000-00000000000c'), 2::bigint,
  'one replay, one new job');

-- Resolve: B cannot, A can, once.
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_worker;
select throws_ok(format('select apportion.resolve_failed_job(%s)', :to_resolve), '22023',
  format('resolve_failed_job: no open failure for job %s visible to the current tenant', :to_resolve),
  'worker, tenant B: resolving A''s failure refused (22023)');
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
select lives_ok(format('select apportion.resolve_failed_job(%s)', :to_resolve), 'worker, tenant A: resolving it succeeds');
select throws_ok(format('select apportion.resolve_failed_job(%s)', :to_resolve), '22023',
  format('resolve_failed_job: no open failure for job %s visible to the current tenant', :to_resolve),
  'resolving it a second time refused (22023)');
reset role;
select results_eq(format($$select status, replayed_job_id, settled_at from apportion.worker_failed_jobs where job_id = %s$$, :to_resolve),
  $$values ('resolved', null::bigint, now())$$, 'the failure is marked resolved, nothing replayed');

-- A system failure is replayed by the worker with no tenant, as a system job.
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select apportion.replay_failed_job(:sys_failed) as sys_replayed \gset
reset role;
select results_eq(format($$select tenant_id, queue, task, payload, state from apportion.jobs where id = %s$$, :sys_replayed),
  $$values (null::uuid, 'maintenance', 'reclaim_leases', '{"x": 3}'::jsonb, 'queued')$$,
  'worker, no tenant: a system failure is replayed as a system job');

select * from finish();
rollback;
