-- open_failures and queue_overview: the operators' cross-tenant views, for
-- apportion_worker only. open_failures lists open failures of every tenant
-- and of the system, newest first, without payloads and with messages
-- stripped of payload values (so do the outcomes run_jobs returns to the
-- orchestrator, which logs them); queue_overview gives
-- per-queue depths and open failure counts, aggregates only.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
-- Fixtures are written as the superuser.
begin;
select plan(18);
\ir lib/fixtures.sql

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

select count(apportion_test.make_job(t, q, task, p_state => st, p_attempts => n, p_run_at => at, p_locked_by => w, p_locked_until => lu))
  from (values
  ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'attribution', 'allocate_event', 'queued', 0, now() - interval '60 seconds', null, null::timestamptz),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'attribution', 'allocate_event', 'queued', 0, now() - interval '10 seconds', null, null),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'attribution', 'allocate_event', 'queued', 1, now() + interval '1 hour', null, null),
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'attribution', 'recompute_window', 'running', 1, now(), 'w1', now() + interval '15 seconds'),
  (null, 'maintenance', 'reclaim_leases', 'running', 1, now(), 'w1', now() + interval '15 seconds'),
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'llm', 'complete', 'queued', 0, now() - interval '1 day', null, null),
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping', 'succeeded', 1, now(), null, null)
  ) j (t, q, task, st, n, at, w, lu) \g /dev/null
insert into apportion.worker_failed_jobs (tenant_id, job_id, queue, task, payload, error_code, error_message, attempts, correlation_id, failed_at, status) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', 901, 'attribution', 'allocate_event', '{"secret": "a"}', '22023', 'bad a', 1,
   'cccccccc-0000-4000-8000-00000000000c', now() - interval '3 minutes', 'open'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 902, 'attribution', 'allocate_event', '{"secret": "b"}', '40001', 'retries spent', 5,
   null, now() - interval '2 minutes', 'open'),
  (null, 903, 'maintenance', 'reclaim_leases', '{}', 'AP002', 'lease expired', 3,
   null, now() - interval '1 minute', 'open'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 904, 'attribution', 'allocate_event', '{}', '22023', 'replayed already', 1,
   'cccccccc-0000-4000-8000-00000000000c', now(), 'replayed');

-- Who may call them.
set local role apportion_ingest;
select throws_ok($$select * from apportion.open_failures()$$, '42501',
  'permission denied for function open_failures', 'ingest cannot execute open_failures (42501)');
select throws_ok($$select * from apportion.queue_overview()$$, '42501',
  'permission denied for function queue_overview', 'ingest cannot execute queue_overview (42501)');
reset role;
set local role apportion_reader;
select throws_ok($$select * from apportion.open_failures()$$, '42501',
  'permission denied for function open_failures', 'reader cannot execute open_failures (42501)');
select throws_ok($$select * from apportion.queue_overview()$$, '42501',
  'permission denied for function queue_overview', 'reader cannot execute queue_overview (42501)');
reset role;

-- The worker, tenant A set: RLS would show it A's failure and the system's ...
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_worker;
select is((select count(*) from apportion.worker_failed_jobs), 2::bigint, 'worker, tenant A: a plain SELECT sees 2 of the 4 failures');

-- ... open_failures shows every tenant's open failures, newest first.
select results_eq($$select job_id, tenant_id, queue, task, error_code, error_message, attempts, correlation_id from apportion.open_failures()$$,
  $$values (903::bigint, null::uuid, 'maintenance', 'reclaim_leases', 'AP002', 'lease expired', 3, null::uuid),
           (902, 'bbbbbbbb-0000-4000-8000-00000000000b', 'attribution', 'allocate_event', '40001', 'retries spent', 5, null),
           (901, 'aaaaaaaa-0000-4000-8000-00000000000a', 'attribution', 'allocate_event', '22023', 'bad a', 1, 'cccccccc-0000-4000-8000-00000000000c')$$,
  'worker: open_failures lists the open failures of A, B and the system, newest first; the replayed one is not listed');
select results_eq($$select job_id from apportion.open_failures('cccccccc-0000-4000-8000-00000000000c')$$,
  array[901::bigint], 'filtered by correlation id: the open failure with it only');
select results_eq($$select job_id from apportion.open_failures(null, 2)$$,
  array[903::bigint, 902], 'limit 2: the two newest');
select is((select count(*) from apportion.open_failures(null, 0)), 1::bigint, 'a limit below 1 is raised to 1');
select ok(not exists (select from pg_proc p, unnest(p.proargnames) n
                      where p.oid = 'apportion.open_failures(uuid, integer)'::regprocedure and n = 'payload'),
  'open_failures has no payload column (tenant data stays behind the tenant''s own transaction)');

-- queue_overview: one row per queue, every tenant counted.
select results_eq($$select queue, queued, queued_runnable, running, oldest_runnable_seconds, open_failures from apportion.queue_overview()$$,
  $$values ('attribution', 3::bigint, 2::bigint, 1::bigint, 60.000::numeric, 2::bigint),
           ('housekeeping', 0, 0, 0, null, 0),
           ('llm', 1, 1, 0, 86400.000, 0),
           ('maintenance', 0, 0, 1, null, 1)$$,
  'worker, tenant A: queue_overview counts A''s, B''s and system jobs and open failures per queue; finished jobs not counted');
reset role;
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select results_eq($$select sum(queued + running), sum(open_failures) from apportion.queue_overview()$$,
  $$values (6::numeric, 3::numeric)$$, 'worker, no tenant: the same totals');
reset role;

-- Messages without payload values ---------------------------------------------
-- A real failure: tenant B's job names an event id that is no uuid; the
-- handler's message repeats it.
select apportion.create_tenant('tenant b', 'bbbbbbbb-0000-4000-8000-00000000000b') \g /dev/null
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_worker;
select apportion.enqueue('attribution', 'allocate_event', '{"event_id": "b-secret-4711", "model_version": "m-secret-model"}') as secret_job \gset
reset role;
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select count(*) from apportion.claim_jobs('w-mask', '{attribution}', 100) \g /dev/null
create temp table mask_outcomes on commit drop as
  select * from apportion.run_tenant_jobs('w-mask', 'bbbbbbbb-0000-4000-8000-00000000000b', array[:secret_job::bigint]);
select results_eq($$select outcome, error_code, error_message from mask_outcomes$$,
  $$values ('failed'::text, '22023'::text, 'attribution.allocate_event: payload.event_id must be a uuid (got ''…'')'::text)$$,
  'the outcome run_jobs returns to the orchestrator (which logs it) names the field, not the value');
select results_eq(format($$select error_code, error_message from apportion.open_failures() where job_id = %s$$, :secret_job),
  $$values ('22023'::text, 'attribution.allocate_event: payload.event_id must be a uuid (got ''…'')'::text)$$,
  'open_failures shows the code and the message without the payload''s value');
select ok(not exists (select from apportion.open_failures() where error_message like '%secret%'),
  'no open failure shown to operators repeats a payload value');
reset role;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_worker;
select is((select error_message from apportion.job_status(:secret_job)),
  'attribution.allocate_event: payload.event_id must be a uuid (got ''b-secret-4711'')',
  'the tenant itself reads the message whole (job_status, under its RLS)');
reset role;
select set_config('app.tenant_id', '', true);

-- The masking rule itself.
select is(apportion.mask_payload_values('event 4711abc does not exist for model m-secret-model',
                                        '{"event_id": "4711abc", "model_version": "m-secret-model", "n": 12345, "short": "ab"}'),
  'event … does not exist for model …', 'unquoted payload strings are masked, longest first');
select is(apportion.mask_payload_values('got 12345 and "quoted" and ''single'' but ab stays', '{"n": 12345, "short": "ab", "deep": {"x": ["single"]}}'),
  'got … and "…" and ''…'' but ab stays', 'numbers and nested values are masked, quoted segments always; values under 3 characters are kept');

select * from finish();
rollback;
