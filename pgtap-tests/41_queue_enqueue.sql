-- enqueue and enqueue_many, as the runtime roles: a job for the caller's
-- tenant (or a system job where the task allows it), queued, with the
-- registry's max_attempts and the correlation id of the argument or else of
-- app.correlation_id. Unknown queues and tasks, bad payloads and a missing
-- tenant are refused with stable SQLSTATEs and write nothing; job_key
-- de-duplicates queued work only; a direct INSERT cannot set a job's state.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
-- Job ids come from a sequence that rollback does not reset, so they are
-- captured with psql's \gset and spliced in with format().
begin;
\ir lib/isolate.sql
select plan(76);

-- An empty queue to start from (rolled back at the end).
delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

-- ingest, tenant A: the positive cases ---------------------------------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
select set_config('app.correlation_id', 'cccccccc-0000-4000-8000-00000000000c', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping') as ping_a \gset
select apportion.enqueue('attribution', 'allocate_event',
  '{"event_id": "aaaaaaaa-0000-4000-8000-0000000e0001", "model_version": "m1"}',
  'dddddddd-0000-4000-8000-00000000000d') as alloc_a \gset
reset role;

select results_eq(
  format($$select tenant_id, queue, task, payload, state, attempts, max_attempts, correlation_id, locked_by, locked_until
             from apportion.jobs where id = %s$$, :ping_a),
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'housekeeping', 'ping', '{}'::jsonb, 'queued', 0, 1,
            'cccccccc-0000-4000-8000-00000000000c'::uuid, null::text, null::timestamptz)$$,
  'ingest, tenant A: enqueue writes a queued job of A with max_attempts from the registry and app.correlation_id');
select results_eq(
  format($$select tenant_id, payload, max_attempts, correlation_id from apportion.jobs where id = %s$$, :alloc_a),
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid,
            '{"event_id": "aaaaaaaa-0000-4000-8000-0000000e0001", "model_version": "m1"}'::jsonb, 5,
            'dddddddd-0000-4000-8000-00000000000d'::uuid)$$,
  'ingest, tenant A: an explicit correlation id wins over app.correlation_id; payload stored as given');
select ok((select run_at = now() from apportion.jobs where id = :alloc_a), 'a job without run_at is runnable now');

-- Neither argument nor setting: no correlation id.
select set_config('app.correlation_id', '', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping', '{}', null, now() + interval '1 hour', 7) as later_a \gset
reset role;
select results_eq(
  format($$select correlation_id, run_at, priority from apportion.jobs where id = %s$$, :later_a),
  $$values (null::uuid, now() + interval '1 hour', 7::smallint)$$,
  'without argument or app.correlation_id the correlation id is null; run_at and priority are kept');

-- Unknown queue or task: 22023 naming them; nothing written.
set local role apportion_ingest;
select throws_ok($$select apportion.enqueue('nope', 'ping')$$, '22023',
  'unknown queue ''nope'': queues are attribution, housekeeping, maintenance, llm',
  'unknown queue refused (22023), the message names it and the known queues');
select throws_ok($$select apportion.enqueue(null, 'ping')$$, '22023',
  'unknown queue null: queues are attribution, housekeeping, maintenance, llm',
  'null queue refused (22023)');
select throws_ok($$select apportion.enqueue('attribution', 'nope')$$, '22023',
  'unknown task attribution.nope: tasks of queue attribution are allocate_event, allocate_pending, recompute_window, train_model',
  'unknown task refused (22023), the message names it and the queue''s tasks');
select lives_ok($$select apportion.enqueue('attribution', 'recompute_window',
  '{"window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-02T00:00:00Z", "model_version": "m1"}')$$,
  'twin: a known task of the same queue is accepted');

-- Payloads: a json object of at most 64 KiB (jsonb text of {"x": "<n a>"} is n + 9 bytes).
select throws_ok($$select apportion.enqueue('housekeeping', 'ping', '[1, 2]')$$, '22023',
  'payload must be a json object (got array)', 'a json array payload refused (22023)');
select throws_ok($$select apportion.enqueue('housekeeping', 'ping', '"text"')$$, '22023',
  'payload must be a json object (got string)', 'a json string payload refused (22023)');
select throws_ok($$select apportion.enqueue('housekeeping', 'ping', null)$$, '22023',
  'payload must be a json object (got null)', 'a null payload refused (22023)');
select lives_ok($$select apportion.enqueue('housekeeping', 'ping', jsonb_build_object('x', repeat('a', 65527)))$$,
  'twin: a payload of exactly 65536 bytes is accepted');
select throws_ok($$select apportion.enqueue('housekeeping', 'ping', jsonb_build_object('x', repeat('a', 65528)))$$, '22023',
  'payload too large: 65537 bytes, the limit is 65536', 'a payload of 65537 bytes refused (22023)');
reset role;
select is((select count(*) from apportion.jobs), 5::bigint,
  'the refused calls wrote no job (5 accepted so far)');

-- Tenant tasks need a tenant: 42501 with the way to set one.
select set_config('app.tenant_id', '', true);
set local role apportion_ingest;
select throws_ok($$select apportion.enqueue('attribution', 'allocate_event', '{}')$$, '42501',
  'no tenant set: run select set_config(''app.tenant_id'', ''<tenant uuid>'', true) in this transaction first',
  'ingest, no tenant: a tenant task refused (42501)');
reset role;
set local role apportion_worker;
select throws_ok($$select apportion.enqueue('llm', 'complete', '{}')$$, '42501',
  'no tenant set: run select set_config(''app.tenant_id'', ''<tenant uuid>'', true) in this transaction first',
  'worker, no tenant: a tenant task refused too (42501)');

-- System jobs: the worker enqueues them with no tenant ...
select apportion.enqueue('housekeeping', 'prune', '{"retention": "7 days"}') as prune_sys \gset
select apportion.enqueue('housekeeping', 'ping') as ping_sys \gset
reset role;
select results_eq(
  format($$select id, tenant_id, state, max_attempts from apportion.jobs where id in (%s, %s) order by id$$, :prune_sys, :ping_sys),
  format($$values (%s::bigint, null::uuid, 'queued', 3), (%s, null, 'queued', 1)$$, :prune_sys, :ping_sys),
  'worker, no tenant: a system task and an any-scope task become system jobs (tenant_id null)');
-- ... and a system task stays a system job even when a tenant is set.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_worker;
select apportion.enqueue('maintenance', 'reclaim_leases') as reclaim_sys \gset
reset role;
select is((select tenant_id from apportion.jobs where id = :reclaim_sys), null::uuid,
  'worker, tenant A: a system-scope task is still enqueued with no tenant');

-- ... but ingest cannot enqueue a system job, with or without a tenant.
set local role apportion_ingest;
select throws_ok($$select apportion.enqueue('housekeeping', 'prune', '{}')$$, '42501',
  'new row violates row-level security policy for table "jobs"',
  'ingest, tenant A: a system task (housekeeping.prune) refused (42501)');
select lives_ok($$select apportion.enqueue('housekeeping', 'ping')$$,
  'twin: ingest, tenant A: an any-scope task is accepted (as A''s job)');
select set_config('app.tenant_id', '', true);
select throws_ok($$select apportion.enqueue('housekeeping', 'ping')$$, '42501',
  'new row violates row-level security policy for table "jobs"',
  'ingest, no tenant: an any-scope task (no tenant, so a system job) refused (42501)');
reset role;
select is((select count(*) from apportion.jobs where tenant_id is null), 3::bigint,
  'only the worker''s three system jobs exist');

-- job_key: one queued job per (tenant, queue, task, key) ------------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'noop', '{}', null, null, -10, 'k1') as key_first \gset
select apportion.enqueue('housekeeping', 'noop', '{"other": true}', null, null, -10, 'k1') as key_again \gset
select apportion.enqueue('housekeeping', 'noop', '{}', null, null, -10, 'k2') as key_other \gset
reset role;
select is(:key_again::bigint, :key_first::bigint, 'the same job key while the first is queued returns the same id');
select is((select count(*) from apportion.jobs where job_key = 'k1'), 1::bigint, 'and writes no second row');
select is((select payload from apportion.jobs where id = :key_first), '{}'::jsonb, 'the queued job is kept as it was');
select isnt(:key_other::bigint, :key_first::bigint, 'twin: another job key gets a job of its own');
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'noop', '{}', null, null, -10, 'k1') as key_b \gset
reset role;
select isnt(:key_b::bigint, :key_first::bigint, 'the same job key in tenant B is B''s own job');
select is((select tenant_id from apportion.jobs where id = :key_b), 'bbbbbbbb-0000-4000-8000-00000000000b'::uuid,
  'and belongs to B');

-- Once the first is no longer queued (claimed), the key enqueues again.
set local role apportion_worker;
select is((select array_agg(tenant_id is null) from apportion.claim_jobs('w-key', array['housekeeping'], 2)),
  array[true, true], 'the two housekeeping system jobs are claimed first, ahead of priority -10');
select ok((select array_agg(job_id) from apportion.claim_jobs('w-key', array['housekeeping'], 4)) @> array[:key_first, :key_other, :key_b]::bigint[],
  'then the keyed jobs');
reset role;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'noop', '{}', null, null, 0, 'k1') as key_after \gset
reset role;
select isnt(:key_after::bigint, :key_first::bigint, 'the same job key after the first was claimed gets a new job');
select results_eq($$select state from apportion.jobs where job_key = 'k1' and tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a' order by id$$,
  array['running', 'queued'], 'A now has the running keyed job and a new queued one');

-- enqueue_many: one job per payload, ids in payload order -------------------------
select set_config('app.correlation_id', 'eeeeeeee-0000-4000-8000-00000000000e', true);
set local role apportion_ingest;
select array_agg(m.id order by m.ord)::text as many_ids
  from apportion.enqueue_many('housekeeping', 'noop', '[{"n": 1}, {"n": 2}, {"n": 3}]') with ordinality as m (id, ord) \gset
reset role;
select is(cardinality(:'many_ids'::bigint[]), 3, 'enqueue_many returns one id per payload');
select results_eq(
  format($$select (j.payload ->> 'n')::int from unnest(%L::bigint[]) with ordinality u (id, ord)
             join apportion.jobs j on j.id = u.id order by u.ord$$, :'many_ids'),
  array[1, 2, 3], 'the returned ids are in payload order');
select results_eq(
  format($$select count(*), count(distinct id), min(tenant_id::text), min(state), min(correlation_id::text), min(max_attempts)
             from apportion.jobs where id = any (%L::bigint[])$$, :'many_ids'),
  $$values (3::bigint, 3::bigint, 'aaaaaaaa-0000-4000-8000-00000000000a', 'queued', 'eeeeeeee-0000-4000-8000-00000000000e', 1)$$,
  'each is a distinct queued job of A with app.correlation_id and the registry''s max_attempts');
set local role apportion_ingest;
select results_eq($$select count(*) from apportion.enqueue_many('housekeeping', 'noop', '[{"n": 4}]', 'dddddddd-0000-4000-8000-00000000000d')$$,
  array[1::bigint], 'enqueue_many of one payload returns one row');
select throws_ok($$select apportion.enqueue_many('housekeeping', 'noop', '{"n": 1}')$$, '22023',
  'enqueue_many: payloads must be a json array of objects', 'enqueue_many of an object, not an array, refused (22023)');
select throws_ok($$select apportion.enqueue_many('housekeeping', 'noop', null)$$, '22023',
  'enqueue_many: payloads must be a json array of objects', 'enqueue_many of null refused (22023)');
select throws_ok($$select apportion.enqueue_many('housekeeping', 'noop', '[{"n": 1}, 2]')$$, '22023',
  'payload must be a json object (got number)', 'enqueue_many with one element not an object refused (22023)');
select throws_ok($$select apportion.enqueue_many('nope', 'noop', '[{}]')$$, '22023',
  'unknown queue ''nope'': queues are attribution, housekeeping, maintenance, llm', 'enqueue_many to an unknown queue refused (22023)');
select throws_ok(format($$select apportion.enqueue_many('housekeeping', 'noop', %L)$$,
                        jsonb_build_array(jsonb_build_object('x', repeat('a', 65528)))), '22023', null,
  'enqueue_many with an element over 64 KiB refused (22023), like enqueue');
select set_config('app.tenant_id', '', true);
select throws_ok($$select apportion.enqueue_many('attribution', 'allocate_event', '[{}]')$$, '42501',
  'no tenant set: run select set_config(''app.tenant_id'', ''<tenant uuid>'', true) in this transaction first',
  'enqueue_many of a tenant task without a tenant refused (42501)');
reset role;
select is((select count(*) from apportion.jobs where task = 'noop' and payload ? 'n'), 4::bigint,
  'the refused enqueue_many calls wrote nothing (4 accepted)');

-- A direct INSERT may set only the enqueue columns ---------------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select lives_ok($$insert into apportion.jobs (queue, task, payload, correlation_id, job_key, priority, run_at)
  values ('housekeeping', 'ping', '{}', null, 'direct', 0, now())$$,
  'ingest, tenant A: a direct INSERT of the enqueue columns succeeds');
select throws_ok($$insert into apportion.jobs (queue, task, max_attempts) values ('housekeeping', 'ping', 100)$$,
  '42501', 'permission denied for table jobs', 'ingest: a direct INSERT setting max_attempts refused (42501): it is the registry''s');
select throws_ok($$insert into apportion.jobs (queue, task, state) values ('housekeeping', 'ping', 'succeeded')$$,
  '42501', 'permission denied for table jobs', 'ingest: a direct INSERT setting state refused (42501)');
select throws_ok($$insert into apportion.jobs (queue, task, attempts) values ('housekeeping', 'ping', 99)$$,
  '42501', 'permission denied for table jobs', 'ingest: a direct INSERT setting attempts refused (42501)');
select throws_ok($$insert into apportion.jobs (queue, task, locked_by, locked_until) values ('housekeeping', 'ping', 'me', now() + interval '1 day')$$,
  '42501', 'permission denied for table jobs', 'ingest: a direct INSERT setting a lease refused (42501)');
select throws_ok($$insert into apportion.jobs (queue, task, result) values ('housekeeping', 'ping', '{}')$$,
  '42501', 'permission denied for table jobs', 'ingest: a direct INSERT setting result refused (42501)');
select throws_ok($$update apportion.jobs set state = 'succeeded' where job_key = 'direct'$$,
  '42501', 'permission denied for table jobs', 'ingest: UPDATE of a job refused (42501)');
-- The scope rule of enqueue (system tasks only as system jobs) must hold for
-- a direct INSERT too: otherwise a tenant queues housekeeping.prune with any
-- retention and the worker runs the cross-tenant prune_jobs for it.
select throws_ok($$insert into apportion.jobs (queue, task, payload) values ('housekeeping', 'prune', '{"retention": "0 seconds"}')$$,
  '42501', null, 'ingest, tenant A: a direct INSERT of a system task (housekeeping.prune) refused (42501)');
reset role;
select results_eq($$select state, attempts, locked_by, max_attempts from apportion.jobs where job_key = 'direct'$$,
  $$values ('queued', 0, null::text, 1)$$, 'the directly inserted job kept the defaults of state, attempts and lease, and took max_attempts from the registry');

-- Bounds that hold on every insert path ----------------------------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select throws_ok($$select apportion.enqueue('housekeeping', 'noop', '{}', null, '-infinity')$$, '22023',
  'run_at must be a finite timestamp (got -infinity)', 'enqueue with run_at -infinity refused (22023)');
select throws_ok($$select apportion.enqueue('housekeeping', 'noop', '{}', null, 'infinity')$$, '22023',
  'run_at must be a finite timestamp (got infinity)', 'enqueue with run_at infinity refused (22023)');
select throws_ok($$insert into apportion.jobs (queue, task, run_at) values ('housekeeping', 'noop', 'infinity')$$, '22023',
  'run_at must be a finite timestamp (got infinity)', 'a direct INSERT with run_at infinity refused (22023)');
select throws_ok($$select apportion.enqueue('housekeeping', 'noop', '{}', null, null, -32768)$$, '22023',
  'priority must be between -100 and 100 (got -32768)', 'enqueue with priority -32768 refused (22023)');
select throws_ok($$select apportion.enqueue_many('housekeeping', 'noop', '[{}]', null, 101)$$, '22023',
  'priority must be between -100 and 100 (got 101)', 'enqueue_many with priority 101 refused (22023)');
select throws_ok($$insert into apportion.jobs (queue, task, priority) values ('housekeeping', 'noop', -101)$$, '22023',
  'priority must be between -100 and 100 (got -101)', 'a direct INSERT with priority -101 refused (22023)');
select lives_ok($$select apportion.enqueue('housekeeping', 'noop', '{"bound": "low"}', null, null, -100)$$,
  'twin: priority -100, the bound, is accepted');
select throws_ok($$select apportion.enqueue('housekeeping', 'noop', '{}', null, null, 70000)$$, '22023',
  'priority must be between -100 and 100 (got 70000)', 'enqueue with priority 70000, past smallint, refused (22023, not 22003)');
select throws_ok($$select count(*) from apportion.enqueue_many('housekeeping', 'noop', '[{}]', null, -70000)$$, '22023',
  'priority must be between -100 and 100 (got -70000)', 'enqueue_many with priority -70000 refused (22023, not 22003)');
select throws_ok($$select apportion.enqueue('housekeeping', 'noop', '{}', null, null, 0, repeat('k', 6000))$$, '22023',
  'job_key too long: 6000 bytes, the limit is 512', 'enqueue with a 6 KB job key refused (22023, not 54000 from the index)');
select throws_ok($$insert into apportion.jobs (queue, task, job_key) values ('housekeeping', 'noop', repeat('k', 513))$$, '22023',
  'job_key too long: 513 bytes, the limit is 512', 'a direct INSERT with a 513-byte job key refused (22023)');
select lives_ok($$select apportion.enqueue('housekeeping', 'noop', '{}', null, null, 0, repeat('k', 512))$$,
  'twin: a 512-byte job key, the bound, is accepted');
select throws_ok($$insert into apportion.jobs (queue, task, payload) values ('housekeeping', 'noop', jsonb_build_object('x', repeat('a', 5242880)))$$,
  '22023', 'payload too large: 5242889 bytes, the limit is 65536', 'a direct INSERT of a 5 MB payload refused (22023)');
select throws_ok(format($$select count(*) from apportion.enqueue_many('housekeeping', 'noop', %L)$$,
                        (select jsonb_agg('{}'::jsonb) from generate_series(1, 10001))),
  '22023', 'enqueue_many: at most 10000 payloads per call (got 10001)', 'enqueue_many of 10,001 payloads refused (22023)');
select is((select count(*) from apportion.enqueue_many('housekeeping', 'noop', (select jsonb_agg('{}'::jsonb) from generate_series(1, 10000))))::bigint,
  10000::bigint, 'twin: 10,000 payloads, the bound, are accepted');
reset role;
set local role apportion_worker;
select lives_ok($$select * from apportion.queue_overview()$$, 'queue_overview still answers for everyone');
reset role;

-- A tenant's cap on queued jobs (tenants.max_queued_jobs), on every insert path
select set_config('app.tenant_id', '', true);
select apportion.create_tenant('capped', 'cccccccc-0000-4000-8000-0000000000cc') \g /dev/null
update apportion.tenants set max_queued_jobs = 3 where id = 'cccccccc-0000-4000-8000-0000000000cc';
select set_config('app.tenant_id', 'cccccccc-0000-4000-8000-0000000000cc', true);
set local role apportion_ingest;
select lives_ok($$select apportion.enqueue('housekeeping', 'noop', '{}'), apportion.enqueue('housekeeping', 'noop', '{}'),
                        apportion.enqueue('llm', 'complete', '{}')$$,
  'a tenant capped at 3 queued jobs enqueues 3 (a parked one counts too)');
select throws_ok($$select apportion.enqueue('housekeeping', 'noop', '{}')$$, 'AP003',
  'tenant cccccccc-0000-4000-8000-0000000000cc has more than 3 queued jobs, its limit: wait for them to run, or ask the operator to raise tenants.max_queued_jobs',
  'the 4th is refused with AP003');
select throws_ok($$insert into apportion.jobs (queue, task) values ('housekeeping', 'noop')$$, 'AP003', null,
  'so is a direct INSERT');
reset role;
update apportion.jobs set state = 'running', attempts = 1, locked_by = 'w-cap', locked_until = now() + interval '1 minute'
 where id = (select min(id) from apportion.jobs where tenant_id = 'cccccccc-0000-4000-8000-0000000000cc' and task = 'noop');
select is((select count(*) from apportion.jobs where tenant_id = 'cccccccc-0000-4000-8000-0000000000cc' and state = 'queued'), 2::bigint,
  'one of its jobs is running: 2 are queued');
set local role apportion_ingest;
select throws_ok($$select count(*) from apportion.enqueue_many('housekeeping', 'noop', '[{}, {}]')$$, 'AP003', null,
  'with 2 queued, a call that would make 4 is refused whole');
select lives_ok($$select apportion.enqueue('housekeeping', 'noop', '{}')$$, 'twin: one more, the third, is accepted');
select is((select count(*) from apportion.jobs where state = 'queued'), 3::bigint, 'and the tenant has exactly its 3 queued jobs');
reset role;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select lives_ok($$select apportion.enqueue('housekeeping', 'noop', '{}')$$, 'another tenant is not held by that cap');
reset role;

select * from finish();
rollback;
