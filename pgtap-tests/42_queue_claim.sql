-- claim_jobs: the one cross-tenant way into the queue, for apportion_worker
-- only. It claims runnable jobs of every tenant and of the system in
-- (priority, run_at, id) order, up to the limit, never a job whose run_at is
-- still ahead, never a job of a queue without a handler (llm), and never a
-- job already running; each claimed job becomes running with one more attempt
-- and a lease.
--
-- Not tested here: that a row locked by another transaction is skipped (FOR
-- UPDATE SKIP LOCKED). A pgTAP file is one session, and a session never
-- blocks on its own locks; dblink is not installed. The vitest resilience
-- suite runs two orchestrators against one queue; here only the presence of
-- SKIP LOCKED in the claim is pinned.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
\ir lib/isolate.sql
select plan(41);

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

-- Jobs of A, of B and of the system, enqueued by the real roles -------------------
-- Expected claim order: a_urgent (priority -5), s_old (run_at -3 min),
-- a_alloc (-2 min), b_ping1 then b_ping2 (-1 min, by id).
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('attribution', 'allocate_event', '{"event_id": "aaaaaaaa-0000-4000-8000-0000000e0001", "model_version": "m1"}',
  'cccccccc-0000-4000-8000-00000000000c', now() - interval '2 minutes') as a_alloc \gset
select apportion.enqueue('housekeeping', 'noop', '{}', null, now(), -5) as a_urgent \gset
select apportion.enqueue('housekeeping', 'ping', '{}', null, now() + interval '1 hour') as a_future \gset
select apportion.enqueue('llm', 'complete', '{"prompt": "hello"}', null, now() - interval '1 day') as a_llm \gset
reset role;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping', '{}', null, now() - interval '1 minute') as b_ping1 \gset
select apportion.enqueue('housekeeping', 'ping', '{}', null, now() - interval '1 minute') as b_ping2 \gset
reset role;
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select apportion.enqueue('maintenance', 'reclaim_leases', '{}', null, now() - interval '3 minutes') as s_old \gset
reset role;

-- Who may claim ----------------------------------------------------------------
set local role apportion_ingest;
select throws_ok($$select * from apportion.claim_jobs('w-evil', array['housekeeping'])$$,
  '42501', 'permission denied for function claim_jobs', 'ingest cannot execute claim_jobs (42501)');
reset role;
set local role apportion_reader;
select throws_ok($$select * from apportion.claim_jobs('w-evil', array['housekeeping'])$$,
  '42501', 'permission denied for function claim_jobs', 'reader cannot execute claim_jobs (42501)');
reset role;
select is((select count(*) from apportion.jobs where state = 'queued'), 7::bigint, 'the refused claims claimed nothing');

-- The worker, no tenant set: RLS alone would show it only system jobs ...
set local role apportion_worker;
select is((select count(*) from apportion.jobs), 1::bigint, 'worker, no tenant: a plain SELECT sees only the system job');

-- ... claim_jobs crosses tenants, in (priority, run_at, id) order, up to the limit.
select set_eq($$select job_id from apportion.claim_jobs('w1', array['attribution', 'housekeeping', 'maintenance', 'llm'], 2, 30)$$,
  format('values (%s::bigint), (%s)', :a_urgent, :s_old),
  'limit 2: the priority -5 job, then the oldest run_at');
select results_eq($$select job_id, tenant_id, queue, task, correlation_id, attempt
                      from apportion.claim_jobs('w1', array['attribution', 'housekeeping', 'maintenance', 'llm'], 1, 30)$$,
  format($$values (%s::bigint, 'aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'attribution', 'allocate_event',
                   'cccccccc-0000-4000-8000-00000000000c'::uuid, 1)$$, :a_alloc),
  'limit 1: the next oldest run_at, A''s job, returned with its tenant, queue, task, correlation id and attempt');
select results_eq($$select job_id, tenant_id from apportion.claim_jobs('w1', array['attribution', 'housekeeping', 'maintenance', 'llm'], 1, 30)$$,
  format($$values (%s::bigint, 'bbbbbbbb-0000-4000-8000-00000000000b'::uuid)$$, :b_ping1),
  'limit 1: then B''s job with the lower id of two equal run_ats');
select results_eq($$select job_id from apportion.claim_jobs('w1', array['attribution', 'housekeeping', 'maintenance', 'llm'], 100, 30)$$,
  format('values (%s::bigint)', :b_ping2),
  'limit 100: only the last runnable job is left');
select is_empty($$select job_id from apportion.claim_jobs('w1', array['attribution', 'housekeeping', 'maintenance', 'llm'], 100, 30)$$,
  'nothing runnable is left: running jobs are not claimed again, nor the future or the llm job');
select is_empty($$select job_id from apportion.claim_jobs('w2', array['attribution', 'housekeeping', 'maintenance', 'llm'], 100, 30)$$,
  'a second worker claims none of the running jobs either');
reset role;

-- What a claim writes.
select results_eq(
  format($$select state, attempts, locked_by, locked_until, started_at from apportion.jobs
            where id in (%s, %s, %s, %s, %s) order by id$$, :a_alloc, :a_urgent, :b_ping1, :b_ping2, :s_old),
  $$select 'running', 1, 'w1', now() + interval '30 seconds', now() from generate_series(1, 5)$$,
  'each claimed job: running, attempts 1, locked_by the worker, locked_until now() + lease, started_at now()');
select results_eq(format($$select state, attempts, locked_by from apportion.jobs where id = %s$$, :a_future),
  $$values ('queued', 0, null::text)$$, 'the job whose run_at is an hour ahead is still queued, untouched');
select results_eq(format($$select state, attempts, locked_by from apportion.jobs where id = %s$$, :a_llm),
  $$values ('queued', 0, null::text)$$, 'the llm job (no handler) is still queued, untouched, though its run_at is a day old');

-- run_at reached: the future job becomes claimable (its twin).
update apportion.jobs set run_at = now() - interval '1 second' where id = :a_future;
set local role apportion_worker;
select results_eq($$select job_id from apportion.claim_jobs('w1', array['housekeeping'], 10)$$,
  format('values (%s::bigint)', :a_future), 'once its run_at has passed, the job is claimed');
reset role;
select results_eq(format($$select locked_until from apportion.jobs where id = %s$$, :a_future),
  $$values (now() + interval '15 seconds')$$, 'the default lease is 15 seconds');

-- Only the queues asked for; llm never.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping') as a_hk \gset
select apportion.enqueue('attribution', 'recompute_window', '{}') as a_attr \gset
reset role;
set local role apportion_worker;
select is_empty($$select job_id from apportion.claim_jobs('w1', array['llm'], 10)$$,
  'asked for the llm queue alone, the worker claims nothing');
select is_empty($$select job_id from apportion.claim_jobs('w1', array['nope'], 10)$$,
  'asked for an unknown queue, the worker claims nothing');
select results_eq($$select job_id from apportion.claim_jobs('w1', array['attribution', 'llm'], 10)$$,
  format('values (%s::bigint)', :a_attr), 'asked for attribution and llm, it claims the attribution job only');
select results_eq($$select job_id from apportion.claim_jobs('w1', array['housekeeping'], 10)$$,
  format('values (%s::bigint)', :a_hk), 'asked for housekeeping, it claims the housekeeping job');
reset role;
select is((select state from apportion.jobs where id = :a_llm), 'queued', 'the llm job is still queued after all the claims');

-- Bad arguments: 22023.
set local role apportion_worker;
select throws_ok($$select * from apportion.claim_jobs('', array['housekeeping'])$$, '22023',
  'claim_jobs: worker id is required', 'an empty worker id refused (22023)');
select throws_ok($$select * from apportion.claim_jobs(null, array['housekeeping'])$$, '22023',
  'claim_jobs: worker id is required', 'a null worker id refused (22023)');
select throws_ok($$select * from apportion.claim_jobs('w1', array['housekeeping'], 0)$$, '22023',
  'claim_jobs: limit must be between 1 and 10000 (got 0)', 'limit 0 refused (22023)');
select throws_ok($$select * from apportion.claim_jobs('w1', array['housekeeping'], 10001)$$, '22023',
  'claim_jobs: limit must be between 1 and 10000 (got 10001)', 'limit 10001 refused (22023)');
select lives_ok($$select * from apportion.claim_jobs('w1', array['housekeeping'], 10000)$$,
  'twin: limit 10000 accepted');
select throws_ok($$select * from apportion.claim_jobs('w1', array['housekeeping'], 10, 0)$$, '22023',
  'claim_jobs: lease must be at least 1 second (got 0)', 'a lease of 0 seconds refused (22023)');
select lives_ok($$select * from apportion.claim_jobs('w1', array['housekeeping'], 10, 1)$$,
  'twin: a lease of 1 second accepted');
reset role;

-- Structure: SECURITY DEFINER, EXECUTE for the worker alone, and SKIP LOCKED
-- (the part that cannot be exercised from one session).
select ok((select prosecdef from pg_proc where oid = 'apportion.claim_jobs(text, text[], integer, integer)'::regprocedure),
  'claim_jobs is SECURITY DEFINER');
select is(
  (select array_agg(r.rolname::text order by r.rolname::text) from pg_roles r
    where r.rolname in ('apportion_ingest', 'apportion_worker', 'apportion_reader')
      and has_function_privilege(r.oid, 'apportion.claim_jobs(text, text[], integer, integer)', 'execute')),
  array['apportion_worker'], 'of the runtime roles only apportion_worker may execute claim_jobs');
select matches((select prosrc from pg_proc where oid = 'apportion.claim_jobs(text, text[], integer, integer)'::regprocedure),
  '(?i)for\s+update\s+skip\s+locked', 'claim_jobs locks what it picks with FOR UPDATE SKIP LOCKED');

-- System jobs go first, whatever a tenant's priority.
delete from apportion.worker_failed_jobs;
delete from apportion.jobs;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping', '{}', null, now() - interval '1 hour', -100) as eager \gset
reset role;
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select apportion.enqueue('maintenance', 'reclaim_leases', '{}') as system_job \gset
select results_eq($$select job_id, tenant_id from apportion.claim_jobs('w-first', array['housekeeping', 'maintenance'], 1, 30)$$,
  format($$values (%s::bigint, null::uuid)$$, :system_job),
  'a system job enqueued later, at priority 0, is claimed before a tenant''s older job at priority -100');
select results_eq($$select job_id from apportion.claim_jobs('w-first', array['housekeeping', 'maintenance'], 1, 30)$$,
  format($$values (%s::bigint)$$, :eager), 'then the tenant''s job');
reset role;

-- Jobs not yet due never slow a claim, whatever their priority: they wait
-- outside the claim index (scheduled) until a claim finds them due.
delete from apportion.jobs;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
insert into apportion.jobs (queue, task, payload, priority, run_at)
select 'housekeeping', 'ping', '{}', -100, now() + interval '1 year' + g * interval '1 second'
  from generate_series(1, 5000) g;
reset role;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping', '{}') as b_due \gset
reset role;
select is((select count(*) from apportion.jobs_live where scheduled), 5000::bigint,
  'jobs whose run_at is ahead are scheduled');
-- Rebuilt, the claim index holds no dead entries of jobs earlier tests
-- deleted, so the pages a claim reads are the ones its jobs fill.
reindex index apportion.jobs_runnable_idx;
select pg_stat_get_xact_blocks_fetched('apportion.jobs_runnable_idx'::regclass) as idx_before \gset
set local role apportion_worker;
select results_eq($$select job_id from apportion.claim_jobs('w-far', array['housekeeping'], 1, 30)$$,
  format('values (%s::bigint)', :b_due), 'a due job is claimed past 5000 jobs a year ahead at priority -100');
reset role;
-- (Jobs ahead in the index would cost a claim the pages it walks past them:
-- 5000 fill about 25.)
select cmp_ok(pg_stat_get_xact_blocks_fetched('apportion.jobs_runnable_idx'::regclass) - :idx_before, '<=', 4::bigint,
  'and the claim read at most 4 pages of the claim index, not the 5000 jobs ahead');
-- Moving run_at moves a job into or out of the claim index.
update apportion.jobs_live set run_at = now() - interval '1 minute'
 where id = (select min(id) from apportion.jobs_live where scheduled);
select is((select count(*) from apportion.jobs_live where scheduled), 4999::bigint,
  'a job whose run_at is moved back is no longer scheduled');
set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w-far', array['housekeeping'], 10, 30)), 1::bigint,
  'and is claimed');
reset role;
-- A scheduled job that has fallen due (here: its flag left set by hand, as a
-- job scheduled a moment ago is when its time comes) joins the claim index
-- on the next claim.
set local session_replication_role = replica;
update apportion.jobs_live set run_at = now() - interval '1 minute'
 where id in (select id from apportion.jobs_live where scheduled order by id limit 3);
reset session_replication_role;
set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w-far', array['housekeeping'], 10, 30)), 3::bigint,
  'due scheduled jobs are moved into the claim index and claimed');
reset role;
select is((select count(*) from apportion.jobs_live where scheduled), 4996::bigint, 'the rest stay scheduled');
select throws_ok($$update apportion.jobs_live set run_at = 'infinity' where scheduled$$, '22023',
  'run_at must be a finite timestamp (got infinity)', 'run_at cannot be moved to infinity either');

-- A job that goes back to queued after its queue lost every handler waits
-- too: the registry parks only the jobs queued when it changes, and a job
-- running then comes back (released here; a retry or an expired lease
-- alike) unparked.
delete from apportion.jobs;
update apportion.queue_tasks set handler = 'apportion.task_noop' where queue = 'llm' and task = 'complete';
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('llm', 'complete', '{"prompt": "again"}') as llm_again \gset
reset role;
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select count(*) as llm_claimed from apportion.claim_jobs('w-llm', array['llm'], 10, 30) \gset
reset role;
update apportion.queue_tasks set handler = null where queue = 'llm' and task = 'complete';
set local role apportion_worker;
select apportion.release_jobs('w-llm', array[:llm_again]::bigint[]) as llm_released \gset
select is_empty($$select job_id from apportion.claim_jobs('w-llm', array['attribution', 'housekeeping', 'maintenance', 'llm'], 10, 30)$$,
  'a job given back after its queue lost its only handler is not claimed again');
reset role;

select * from finish();
rollback;
