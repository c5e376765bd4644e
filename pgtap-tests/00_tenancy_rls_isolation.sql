-- Row level security: every tenant table, as every runtime role that can
-- read it. With tenant A set, A's rows are visible and B's are not, and rows
-- for B cannot be written; with no tenant (unset, or '') nothing is visible
-- and nothing can be written. apportion_worker also sees the system rows
-- (tenant_id null) of jobs and worker_failed_jobs, by design, and may add
-- system jobs in every phase (so their count grows by one per phase).
-- Refusals are 42501: row level security's own message where RLS refuses,
-- the tenant-check trigger's on touchpoints and attribution_events (whose
-- wording 06_ingest_validation.sql checks). Every refusal has a twin that
-- succeeds for tenant A.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
select plan(148);
\ir lib/fixtures.sql

-- Fixtures, as the superuser ----------------------------------------------------
select apportion.create_tenant('tenant a', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.create_tenant('tenant b', 'bbbbbbbb-0000-4000-8000-00000000000b');
select apportion.register_model('rls-last-touch', 'last_touch');
select apportion.register_model('rls-first-touch', 'first_touch');
select apportion.register_model('rls-linear', 'linear');

-- The rows are loaded with triggers off: the tenant-check trigger on the
-- ingest tables would need app.tenant_id set, and once set in a transaction
-- it can only go back to '' -- never to unset, the first phase below.
-- (Constraints still apply; the rows are consistent.)
set local session_replication_role = replica;
insert into apportion.touchpoints (tenant_id, customer_id, channel, occurred_at) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'cust-a', 'email', '2026-01-01 00:00Z'),
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'cust-a', 'direct', '2026-01-01 12:00Z'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'cust-b', 'email', '2026-01-01 00:00Z'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'cust-b', 'referral', '2026-01-01 06:00Z'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'cust-b', 'display', '2026-01-01 12:00Z');
insert into apportion.attribution_events (tenant_id, id, customer_id, occurred_at, revenue_cents, currency) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'aaaaaaaa-0000-4000-8000-0000000e0001', 'cust-a', '2026-01-02 00:00Z', 1000, 'EUR'),
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'aaaaaaaa-0000-4000-8000-0000000e0002', 'cust-a', '2026-01-02 01:00Z', 2000, 'EUR'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'bbbbbbbb-0000-4000-8000-0000000e0001', 'cust-b', '2026-01-02 00:00Z', 3000, 'EUR'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'bbbbbbbb-0000-4000-8000-0000000e0002', 'cust-b', '2026-01-02 01:00Z', 4000, 'EUR'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'bbbbbbbb-0000-4000-8000-0000000e0003', 'cust-b', '2026-01-02 02:00Z', 5000, 'EUR');
insert into apportion.tenant_models (tenant_id, model_version) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'rls-last-touch'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'rls-last-touch'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'rls-first-touch');
insert into apportion.attribution_allocations
  (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, currency, event_occurred_at) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'aaaaaaaa-0000-4000-8000-0000000e0001', 'rls-last-touch', 'direct', 1000, 1, 1, 'EUR', '2026-01-02 00:00Z'),
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'aaaaaaaa-0000-4000-8000-0000000e0002', 'rls-last-touch', 'direct', 2000, 1, 1, 'EUR', '2026-01-02 01:00Z'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'bbbbbbbb-0000-4000-8000-0000000e0001', 'rls-last-touch', 'display', 3000, 1, 1, 'EUR', '2026-01-02 00:00Z'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'bbbbbbbb-0000-4000-8000-0000000e0002', 'rls-last-touch', 'display', 4000, 1, 1, 'EUR', '2026-01-02 01:00Z'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'bbbbbbbb-0000-4000-8000-0000000e0003', 'rls-last-touch', 'display', 5000, 1, 1, 'EUR', '2026-01-02 02:00Z');
-- Queue rows directly (the queue functions are tested elsewhere): A has a
-- queued and a finished job, B three queued ones; one system job.
select count(apportion_test.make_job(t, q, task, p_state => st)) from (values
  ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'housekeeping', 'ping', 'queued'),
  ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping', 'succeeded'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'housekeeping', 'ping', 'queued'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'housekeeping', 'ping', 'queued'),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 'housekeeping', 'ping', 'queued'),
  (null, 'maintenance', 'reclaim_leases', 'queued')) j (t, q, task, st) \g /dev/null
insert into apportion.worker_failed_jobs (tenant_id, job_id, queue, task, payload, error_code, error_message, attempts) values
  ('aaaaaaaa-0000-4000-8000-00000000000a', 101, 'attribution', 'allocate_event', '{}', '22023', 'bad payload', 1),
  ('aaaaaaaa-0000-4000-8000-00000000000a', 102, 'attribution', 'allocate_event', '{}', '22023', 'bad payload', 1),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 201, 'attribution', 'allocate_event', '{}', '22023', 'bad payload', 1),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 202, 'attribution', 'allocate_event', '{}', '22023', 'bad payload', 1),
  ('bbbbbbbb-0000-4000-8000-00000000000b', 203, 'attribution', 'allocate_event', '{}', '22023', 'bad payload', 1),
  (null, 301, 'maintenance', 'reclaim_leases', '{}', '57014', 'timeout', 3);
set local session_replication_role = origin;

-- The superuser (no RLS) sees both tenants' rows and the system rows, so
-- every 'invisible' below is a real row hidden, not an empty table.
select results_eq(
  $$ select 'tenants', count(*) filter (where id = 'aaaaaaaa-0000-4000-8000-00000000000a'), count(*) filter (where id = 'bbbbbbbb-0000-4000-8000-00000000000b'), count(*) filter (where id is null) from apportion.tenants
  union all select 'channels', count(*) filter (where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), count(*) filter (where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), count(*) filter (where tenant_id is null) from apportion.channels
  union all select 'touchpoints', count(*) filter (where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), count(*) filter (where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), count(*) filter (where tenant_id is null) from apportion.touchpoints
  union all select 'attribution_events', count(*) filter (where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), count(*) filter (where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), count(*) filter (where tenant_id is null) from apportion.attribution_events
  union all select 'tenant_models', count(*) filter (where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), count(*) filter (where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), count(*) filter (where tenant_id is null) from apportion.tenant_models
  union all select 'attribution_allocations', count(*) filter (where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), count(*) filter (where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), count(*) filter (where tenant_id is null) from apportion.attribution_allocations
  union all select 'jobs', count(*) filter (where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), count(*) filter (where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), count(*) filter (where tenant_id is null) from apportion.jobs
  union all select 'worker_failed_jobs', count(*) filter (where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), count(*) filter (where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), count(*) filter (where tenant_id is null) from apportion.worker_failed_jobs $$,
  $$ values ('tenants', 1::bigint, 1::bigint, 0::bigint),
         ('channels', 8::bigint, 8::bigint, 0::bigint),
         ('touchpoints', 2::bigint, 3::bigint, 0::bigint),
         ('attribution_events', 2::bigint, 3::bigint, 0::bigint),
         ('tenant_models', 1::bigint, 2::bigint, 0::bigint),
         ('attribution_allocations', 2::bigint, 3::bigint, 0::bigint),
         ('jobs', 2::bigint, 3::bigint, 1::bigint),
         ('worker_failed_jobs', 2::bigint, 3::bigint, 1::bigint) $$,
  'fixtures: A and B have rows in every tenant table, plus one system job and failure');

-- Phase 1: app.tenant_id unset ------------------------------------------------
select is(current_setting('app.tenant_id', true), null, 'app.tenant_id is unset in this session');

set local role apportion_ingest;
select is((select count(*) from apportion.tenants), 0::bigint, 'ingest, no tenant: tenants shows no row');
select is((select count(*) from apportion.channels), 0::bigint, 'ingest, no tenant: channels shows no row');
select is((select count(*) from apportion.touchpoints), 0::bigint, 'ingest, no tenant: touchpoints shows no row');
select is((select count(*) from apportion.attribution_events), 0::bigint, 'ingest, no tenant: attribution_events shows no row');
select is((select count(*) from apportion.tenant_models), 0::bigint, 'ingest, no tenant: tenant_models shows no row');
select is((select count(*) from apportion.attribution_allocations), 0::bigint, 'ingest, no tenant: attribution_allocations shows no row');
select is((select count(*) from apportion.jobs), 0::bigint, 'ingest, no tenant: jobs shows no row');
select is((select count(*) from apportion.worker_failed_jobs), 0::bigint, 'ingest, no tenant: worker_failed_jobs shows no row');
reset role;

set local role apportion_worker;
select is((select count(*) from apportion.tenants), 0::bigint, 'worker, no tenant: tenants shows no row');
select is((select count(*) from apportion.channels), 0::bigint, 'worker, no tenant: channels shows no row');
select is((select count(*) from apportion.touchpoints), 0::bigint, 'worker, no tenant: touchpoints shows no row');
select is((select count(*) from apportion.attribution_events), 0::bigint, 'worker, no tenant: attribution_events shows no row');
select is((select count(*) from apportion.tenant_models), 0::bigint, 'worker, no tenant: tenant_models shows no row');
select is((select count(*) from apportion.attribution_allocations), 0::bigint, 'worker, no tenant: attribution_allocations shows no row');
select is((select count(*) from apportion.jobs where tenant_id is not null), 0::bigint, 'worker, no tenant: jobs shows no tenant''s row');
select is((select count(*) from apportion.jobs where tenant_id is null), 1::bigint, 'worker, no tenant: jobs still shows the 1 system row(s) (intended)');
select is((select count(*) from apportion.worker_failed_jobs where tenant_id is not null), 0::bigint, 'worker, no tenant: worker_failed_jobs shows no tenant''s row');
select is((select count(*) from apportion.worker_failed_jobs where tenant_id is null), 1::bigint, 'worker, no tenant: worker_failed_jobs still shows the 1 system row(s) (intended)');
reset role;

set local role apportion_reader;
select is((select count(*) from apportion.tenants), 0::bigint, 'reader, no tenant: tenants shows no row');
select is((select count(*) from apportion.channels), 0::bigint, 'reader, no tenant: channels shows no row');
select is((select count(*) from apportion.tenant_models), 0::bigint, 'reader, no tenant: tenant_models shows no row');
select is((select count(*) from apportion.attribution_allocations), 0::bigint, 'reader, no tenant: attribution_allocations shows no row');
select is((select count(*) from apportion.daily_channel_revenue), 0::bigint, 'reader, no tenant: the daily_channel_revenue report shows no row');
reset role;

set local role apportion_ingest;
select throws_ok($$insert into apportion.channels (tenant_id, code, name) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'rls_probe', 'Probe')$$,
  '42501', 'no tenant set: writes to apportion.channels need app.tenant_id (select set_config(''app.tenant_id'', ''<tenant uuid>'', true))', 'ingest, no tenant: INSERT into channels refused');
select throws_ok($$insert into apportion.touchpoints (tenant_id, customer_id, channel, occurred_at) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'cust-x', 'email', '2026-01-05 00:00Z')$$,
  '42501', null, 'ingest, no tenant: INSERT into touchpoints refused');
select throws_ok($$insert into apportion.attribution_events (tenant_id, customer_id, occurred_at, revenue_cents, currency) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'cust-x', '2026-01-05 00:00Z', 100, 'EUR')$$,
  '42501', null, 'ingest, no tenant: INSERT into attribution_events refused');
select throws_ok($$insert into apportion.tenant_models (tenant_id, model_version) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'rls-linear')$$,
  '42501', 'new row violates row-level security policy for table "tenant_models"', 'ingest, no tenant: INSERT into tenant_models refused');
select throws_ok($$insert into apportion.jobs (tenant_id, queue, task) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping')$$,
  '42501', 'new row violates row-level security policy for table "jobs"', 'ingest, no tenant: INSERT into jobs refused');
select throws_ok($$insert into apportion.jobs (queue, task) values ('housekeeping', 'ping')$$,
  '42501', 'new row violates row-level security policy for table "jobs"', 'ingest, no tenant: INSERT of a job without tenant refused (system jobs are the worker''s)');
reset role;
set local role apportion_worker;
select throws_ok($$insert into apportion.attribution_allocations (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, currency, event_occurred_at)
  values ('aaaaaaaa-0000-4000-8000-00000000000a', 'aaaaaaaa-0000-4000-8000-0000000e0001', 'rls-first-touch', 'direct', 1000, 1, 1, 'EUR', '2026-01-02 00:00Z')$$,
  '42501', 'new row violates row-level security policy for table "attribution_allocations"', 'worker, no tenant: INSERT into attribution_allocations refused');
select throws_ok($$insert into apportion.jobs (tenant_id, queue, task) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping')$$,
  '42501', 'new row violates row-level security policy for table "jobs"', 'worker, no tenant: INSERT of a tenant job refused');
select throws_ok($$insert into apportion.worker_failed_jobs (tenant_id, job_id, queue, task, payload, error_code, error_message, attempts)
  values ('aaaaaaaa-0000-4000-8000-00000000000a', 999, 'housekeeping', 'ping', '{}', 'XX000', 'probe', 1)$$,
  '42501', 'new row violates row-level security policy for table "worker_failed_jobs"', 'worker, no tenant: INSERT of a tenant failure refused');
select lives_ok($$insert into apportion.jobs (queue, task) values ('maintenance', 'reclaim_leases')$$,
  'worker, no tenant: INSERT of a system job (no tenant) is allowed (intended)');
select is_empty($$update apportion.attribution_allocations set touchpoint_count = touchpoint_count returning 1$$,
  'worker, no tenant: UPDATE of attribution_allocations matches no row');
reset role;

-- Phase 2: app.tenant_id = '' (what a pooled connection holds after a tenant
-- transaction ended) -----------------------------------------------------------
select set_config('app.tenant_id', '', true);
set local role apportion_ingest;
select is((select count(*) from apportion.tenants), 0::bigint, 'ingest, empty tenant: tenants shows no row');
select is((select count(*) from apportion.channels), 0::bigint, 'ingest, empty tenant: channels shows no row');
select is((select count(*) from apportion.touchpoints), 0::bigint, 'ingest, empty tenant: touchpoints shows no row');
select is((select count(*) from apportion.attribution_events), 0::bigint, 'ingest, empty tenant: attribution_events shows no row');
select is((select count(*) from apportion.tenant_models), 0::bigint, 'ingest, empty tenant: tenant_models shows no row');
select is((select count(*) from apportion.attribution_allocations), 0::bigint, 'ingest, empty tenant: attribution_allocations shows no row');
select is((select count(*) from apportion.jobs), 0::bigint, 'ingest, empty tenant: jobs shows no row');
select is((select count(*) from apportion.worker_failed_jobs), 0::bigint, 'ingest, empty tenant: worker_failed_jobs shows no row');
reset role;

set local role apportion_worker;
select is((select count(*) from apportion.tenants), 0::bigint, 'worker, empty tenant: tenants shows no row');
select is((select count(*) from apportion.channels), 0::bigint, 'worker, empty tenant: channels shows no row');
select is((select count(*) from apportion.touchpoints), 0::bigint, 'worker, empty tenant: touchpoints shows no row');
select is((select count(*) from apportion.attribution_events), 0::bigint, 'worker, empty tenant: attribution_events shows no row');
select is((select count(*) from apportion.tenant_models), 0::bigint, 'worker, empty tenant: tenant_models shows no row');
select is((select count(*) from apportion.attribution_allocations), 0::bigint, 'worker, empty tenant: attribution_allocations shows no row');
select is((select count(*) from apportion.jobs where tenant_id is not null), 0::bigint, 'worker, empty tenant: jobs shows no tenant''s row');
select is((select count(*) from apportion.jobs where tenant_id is null), 2::bigint, 'worker, empty tenant: jobs still shows the 2 system row(s) (intended)');
select is((select count(*) from apportion.worker_failed_jobs where tenant_id is not null), 0::bigint, 'worker, empty tenant: worker_failed_jobs shows no tenant''s row');
select is((select count(*) from apportion.worker_failed_jobs where tenant_id is null), 1::bigint, 'worker, empty tenant: worker_failed_jobs still shows the 1 system row(s) (intended)');
reset role;

set local role apportion_reader;
select is((select count(*) from apportion.tenants), 0::bigint, 'reader, empty tenant: tenants shows no row');
select is((select count(*) from apportion.channels), 0::bigint, 'reader, empty tenant: channels shows no row');
select is((select count(*) from apportion.tenant_models), 0::bigint, 'reader, empty tenant: tenant_models shows no row');
select is((select count(*) from apportion.attribution_allocations), 0::bigint, 'reader, empty tenant: attribution_allocations shows no row');
select is((select count(*) from apportion.daily_channel_revenue), 0::bigint, 'reader, empty tenant: the daily_channel_revenue report shows no row');
reset role;

set local role apportion_ingest;
select throws_ok($$insert into apportion.channels (tenant_id, code, name) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'rls_probe', 'Probe')$$,
  '42501', 'no tenant set: writes to apportion.channels need app.tenant_id (select set_config(''app.tenant_id'', ''<tenant uuid>'', true))', 'ingest, empty tenant: INSERT into channels refused');
select throws_ok($$insert into apportion.touchpoints (tenant_id, customer_id, channel, occurred_at) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'cust-x', 'email', '2026-01-05 00:00Z')$$,
  '42501', null, 'ingest, empty tenant: INSERT into touchpoints refused');
select throws_ok($$insert into apportion.attribution_events (tenant_id, customer_id, occurred_at, revenue_cents, currency) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'cust-x', '2026-01-05 00:00Z', 100, 'EUR')$$,
  '42501', null, 'ingest, empty tenant: INSERT into attribution_events refused');
select throws_ok($$insert into apportion.tenant_models (tenant_id, model_version) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'rls-linear')$$,
  '42501', 'new row violates row-level security policy for table "tenant_models"', 'ingest, empty tenant: INSERT into tenant_models refused');
select throws_ok($$insert into apportion.jobs (tenant_id, queue, task) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping')$$,
  '42501', 'new row violates row-level security policy for table "jobs"', 'ingest, empty tenant: INSERT into jobs refused');
select throws_ok($$insert into apportion.jobs (queue, task) values ('housekeeping', 'ping')$$,
  '42501', 'new row violates row-level security policy for table "jobs"', 'ingest, empty tenant: INSERT of a job without tenant refused (system jobs are the worker''s)');
reset role;
set local role apportion_worker;
select throws_ok($$insert into apportion.attribution_allocations (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, currency, event_occurred_at)
  values ('aaaaaaaa-0000-4000-8000-00000000000a', 'aaaaaaaa-0000-4000-8000-0000000e0001', 'rls-first-touch', 'direct', 1000, 1, 1, 'EUR', '2026-01-02 00:00Z')$$,
  '42501', 'new row violates row-level security policy for table "attribution_allocations"', 'worker, empty tenant: INSERT into attribution_allocations refused');
select throws_ok($$insert into apportion.jobs (tenant_id, queue, task) values ('aaaaaaaa-0000-4000-8000-00000000000a', 'housekeeping', 'ping')$$,
  '42501', 'new row violates row-level security policy for table "jobs"', 'worker, empty tenant: INSERT of a tenant job refused');
select throws_ok($$insert into apportion.worker_failed_jobs (tenant_id, job_id, queue, task, payload, error_code, error_message, attempts)
  values ('aaaaaaaa-0000-4000-8000-00000000000a', 999, 'housekeeping', 'ping', '{}', 'XX000', 'probe', 1)$$,
  '42501', 'new row violates row-level security policy for table "worker_failed_jobs"', 'worker, empty tenant: INSERT of a tenant failure refused');
select lives_ok($$insert into apportion.jobs (queue, task) values ('maintenance', 'reclaim_leases')$$,
  'worker, empty tenant: INSERT of a system job (no tenant) is allowed (intended)');
select is_empty($$update apportion.attribution_allocations set touchpoint_count = touchpoint_count returning 1$$,
  'worker, empty tenant: UPDATE of attribution_allocations matches no row');
reset role;

-- Phase 3: tenant A ------------------------------------------------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);

set local role apportion_ingest;
select is((select count(*) from apportion.tenants where id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 1::bigint, 'ingest, tenant A: tenants shows A''s 1 tenant row');
select is((select count(*) from apportion.tenants where id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'ingest, tenant A: tenants hides B''s rows');
select is((select count(*) from apportion.channels where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 8::bigint, 'ingest, tenant A: channels shows A''s 8 channels');
select is((select count(*) from apportion.channels where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'ingest, tenant A: channels hides B''s rows');
select is((select count(*) from apportion.touchpoints where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'ingest, tenant A: touchpoints shows A''s 2 touchpoints');
select is((select count(*) from apportion.touchpoints where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'ingest, tenant A: touchpoints hides B''s rows');
select is((select count(*) from apportion.attribution_events where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'ingest, tenant A: attribution_events shows A''s 2 events');
select is((select count(*) from apportion.attribution_events where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'ingest, tenant A: attribution_events hides B''s rows');
select is((select count(*) from apportion.tenant_models where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 1::bigint, 'ingest, tenant A: tenant_models shows A''s 1 active models');
select is((select count(*) from apportion.tenant_models where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'ingest, tenant A: tenant_models hides B''s rows');
select is((select count(*) from apportion.attribution_allocations where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'ingest, tenant A: attribution_allocations shows A''s 2 allocations');
select is((select count(*) from apportion.attribution_allocations where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'ingest, tenant A: attribution_allocations hides B''s rows');
select is((select count(*) from apportion.jobs where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'ingest, tenant A: jobs shows A''s 2 jobs');
select is((select count(*) from apportion.jobs where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'ingest, tenant A: jobs hides B''s rows and the system row');
select is((select count(*) from apportion.worker_failed_jobs where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'ingest, tenant A: worker_failed_jobs shows A''s 2 failed jobs');
select is((select count(*) from apportion.worker_failed_jobs where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'ingest, tenant A: worker_failed_jobs hides B''s rows and the system row');
reset role;

set local role apportion_worker;
select is((select count(*) from apportion.tenants where id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 1::bigint, 'worker, tenant A: tenants shows A''s 1 tenant row');
select is((select count(*) from apportion.tenants where id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'worker, tenant A: tenants hides B''s rows');
select is((select count(*) from apportion.channels where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 8::bigint, 'worker, tenant A: channels shows A''s 8 channels');
select is((select count(*) from apportion.channels where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'worker, tenant A: channels hides B''s rows');
select is((select count(*) from apportion.touchpoints where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'worker, tenant A: touchpoints shows A''s 2 touchpoints');
select is((select count(*) from apportion.touchpoints where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'worker, tenant A: touchpoints hides B''s rows');
select is((select count(*) from apportion.attribution_events where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'worker, tenant A: attribution_events shows A''s 2 events');
select is((select count(*) from apportion.attribution_events where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'worker, tenant A: attribution_events hides B''s rows');
select is((select count(*) from apportion.tenant_models where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 1::bigint, 'worker, tenant A: tenant_models shows A''s 1 active models');
select is((select count(*) from apportion.tenant_models where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'worker, tenant A: tenant_models hides B''s rows');
select is((select count(*) from apportion.attribution_allocations where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'worker, tenant A: attribution_allocations shows A''s 2 allocations');
select is((select count(*) from apportion.attribution_allocations where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'worker, tenant A: attribution_allocations hides B''s rows');
select is((select count(*) from apportion.jobs where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'worker, tenant A: jobs shows A''s 2 jobs');
select is((select count(*) from apportion.jobs where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), 0::bigint, 'worker, tenant A: jobs hides B''s rows');
select is((select count(*) from apportion.jobs where tenant_id is null), 3::bigint, 'worker, tenant A: jobs also shows the 3 system row(s) (intended)');
select is((select count(*) from apportion.worker_failed_jobs where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'worker, tenant A: worker_failed_jobs shows A''s 2 failed jobs');
select is((select count(*) from apportion.worker_failed_jobs where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), 0::bigint, 'worker, tenant A: worker_failed_jobs hides B''s rows');
select is((select count(*) from apportion.worker_failed_jobs where tenant_id is null), 1::bigint, 'worker, tenant A: worker_failed_jobs also shows the 1 system row(s) (intended)');
reset role;

set local role apportion_reader;
select is((select count(*) from apportion.tenants where id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 1::bigint, 'reader, tenant A: tenants shows A''s 1 tenant row');
select is((select count(*) from apportion.tenants where id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'reader, tenant A: tenants hides B''s rows');
select is((select count(*) from apportion.channels where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 8::bigint, 'reader, tenant A: channels shows A''s 8 channels');
select is((select count(*) from apportion.channels where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'reader, tenant A: channels hides B''s rows');
select is((select count(*) from apportion.tenant_models where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 1::bigint, 'reader, tenant A: tenant_models shows A''s 1 active models');
select is((select count(*) from apportion.tenant_models where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'reader, tenant A: tenant_models hides B''s rows');
select is((select count(*) from apportion.attribution_allocations where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 2::bigint, 'reader, tenant A: attribution_allocations shows A''s 2 allocations');
select is((select count(*) from apportion.attribution_allocations where tenant_id is distinct from 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint, 'reader, tenant A: attribution_allocations hides B''s rows');
select results_eq($$select tenant_id, revenue_cents from apportion.daily_channel_revenue$$,
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 3000::numeric)$$, 'reader, tenant A: the daily_channel_revenue report holds A''s revenue only');
reset role;

-- Writes as ingest, tenant A: A's rows yes, B's rows no.
set local role apportion_ingest;
select lives_ok($$insert into apportion.channels (code, name) values ('rls_new', 'New')$$,
  'ingest, tenant A: INSERT of a channel for A succeeds');
select throws_ok($$insert into apportion.channels (tenant_id, code, name) values ('bbbbbbbb-0000-4000-8000-00000000000b', 'rls_new', 'New')$$,
  '42501', 'tenant_id bbbbbbbb-0000-4000-8000-00000000000b is not the current tenant (app.tenant_id = aaaaaaaa-0000-4000-8000-00000000000a): rows may only be written for the current tenant', 'ingest, tenant A: INSERT of a channel for B refused');
select lives_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('cust-a', 'email', '2026-01-03 00:00Z')$$,
  'ingest, tenant A: INSERT of a touchpoint for A succeeds');
select throws_ok($$insert into apportion.touchpoints (tenant_id, customer_id, channel, occurred_at) values ('bbbbbbbb-0000-4000-8000-00000000000b', 'cust-b', 'email', '2026-01-03 00:00Z')$$,
  '42501', null, 'ingest, tenant A: INSERT of a touchpoint for B refused');
select lives_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('cust-a', '2026-01-03 00:00Z', 100, 'EUR')$$,
  'ingest, tenant A: INSERT of an event for A succeeds');
select throws_ok($$insert into apportion.attribution_events (tenant_id, customer_id, occurred_at, revenue_cents, currency) values ('bbbbbbbb-0000-4000-8000-00000000000b', 'cust-b', '2026-01-03 00:00Z', 100, 'EUR')$$,
  '42501', null, 'ingest, tenant A: INSERT of an event for B refused');
select lives_ok($$insert into apportion.tenant_models (model_version) values ('rls-linear')$$,
  'ingest, tenant A: INSERT into tenant_models for A succeeds');
select throws_ok($$insert into apportion.tenant_models (tenant_id, model_version) values ('bbbbbbbb-0000-4000-8000-00000000000b', 'rls-linear')$$,
  '42501', 'new row violates row-level security policy for table "tenant_models"', 'ingest, tenant A: INSERT into tenant_models for B refused');
select isnt_empty($$delete from apportion.tenant_models where model_version = 'rls-linear' returning 1$$,
  'ingest, tenant A: DELETE of A''s tenant_models row deletes it');
select is_empty($$delete from apportion.tenant_models where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b' returning 1$$,
  'ingest, tenant A: DELETE of B''s tenant_models rows matches no row');
select lives_ok($$insert into apportion.jobs (queue, task) values ('housekeeping', 'ping')$$,
  'ingest, tenant A: INSERT of a job for A succeeds');
select throws_ok($$insert into apportion.jobs (tenant_id, queue, task) values ('bbbbbbbb-0000-4000-8000-00000000000b', 'housekeeping', 'ping')$$,
  '42501', 'new row violates row-level security policy for table "jobs"', 'ingest, tenant A: INSERT of a job for B refused');
select throws_ok($$insert into apportion.jobs (tenant_id, queue, task) values (null, 'housekeeping', 'ping')$$,
  '42501', 'new row violates row-level security policy for table "jobs"', 'ingest, tenant A: INSERT of a system job (no tenant) refused');
reset role;

-- Writes as worker, tenant A.
set local role apportion_worker;
select lives_ok($$insert into apportion.attribution_allocations (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, currency, event_occurred_at)
  values ('aaaaaaaa-0000-4000-8000-00000000000a', 'aaaaaaaa-0000-4000-8000-0000000e0001', 'rls-first-touch', 'email', 1000, 1, 1, 'EUR', '2026-01-02 00:00Z')$$,
  'worker, tenant A: INSERT of an allocation for A succeeds');
select throws_ok($$insert into apportion.attribution_allocations (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, currency, event_occurred_at)
  values ('bbbbbbbb-0000-4000-8000-00000000000b', 'bbbbbbbb-0000-4000-8000-0000000e0001', 'rls-first-touch', 'email', 3000, 1, 1, 'EUR', '2026-01-02 00:00Z')$$,
  '42501', 'new row violates row-level security policy for table "attribution_allocations"', 'worker, tenant A: INSERT of an allocation for B refused');
select isnt_empty($$update apportion.attribution_allocations set touchpoint_count = 2 where model_version = 'rls-first-touch' returning 1$$,
  'worker, tenant A: UPDATE of A''s allocation updates it');
select is_empty($$update apportion.attribution_allocations set touchpoint_count = 9 where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b' returning 1$$,
  'worker, tenant A: UPDATE of B''s allocations matches no row');
select throws_ok($$update apportion.attribution_allocations set tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b', event_id = 'bbbbbbbb-0000-4000-8000-0000000e0001' where model_version = 'rls-first-touch'$$,
  '42501', 'new row violates row-level security policy for table "attribution_allocations"', 'worker, tenant A: UPDATE moving A''s allocation to B refused');
select is_empty($$delete from apportion.attribution_allocations where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b' returning 1$$,
  'worker, tenant A: DELETE of B''s allocations matches no row');
select isnt_empty($$delete from apportion.attribution_allocations where model_version = 'rls-first-touch' returning 1$$,
  'worker, tenant A: DELETE of A''s allocation deletes it');
select lives_ok($$insert into apportion.jobs (queue, task) values ('housekeeping', 'ping')$$,
  'worker, tenant A: INSERT of a job for A succeeds');
select throws_ok($$insert into apportion.jobs (tenant_id, queue, task) values ('bbbbbbbb-0000-4000-8000-00000000000b', 'housekeeping', 'ping')$$,
  '42501', 'new row violates row-level security policy for table "jobs"', 'worker, tenant A: INSERT of a job for B refused');
select lives_ok($$insert into apportion.jobs (tenant_id, queue, task) values (null, 'maintenance', 'reclaim_leases')$$,
  'worker, tenant A: INSERT of a system job (no tenant) succeeds (intended)');
select isnt_empty($$update apportion.jobs set attempts = attempts + 1 where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a' and state = 'queued' returning 1$$,
  'worker, tenant A: UPDATE of A''s jobs updates them');
select is_empty($$update apportion.jobs set attempts = attempts + 1 where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b' returning 1$$,
  'worker, tenant A: UPDATE of B''s jobs matches no row');
select throws_ok($$update apportion.jobs set tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b' where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'$$,
  '42501', 'permission denied for table jobs', 'worker, tenant A: UPDATE of jobs.tenant_id refused (no column privilege)');
select lives_ok($$insert into apportion.worker_failed_jobs (job_id, queue, task, payload, error_code, error_message, attempts)
  values (103, 'housekeeping', 'ping', '{}', 'XX000', 'probe', 1)$$,
  'worker, tenant A: INSERT of a failure for A succeeds');
select throws_ok($$insert into apportion.worker_failed_jobs (tenant_id, job_id, queue, task, payload, error_code, error_message, attempts)
  values ('bbbbbbbb-0000-4000-8000-00000000000b', 204, 'housekeeping', 'ping', '{}', 'XX000', 'probe', 1)$$,
  '42501', 'new row violates row-level security policy for table "worker_failed_jobs"', 'worker, tenant A: INSERT of a failure for B refused');
select isnt_empty($$update apportion.worker_failed_jobs set status = 'resolved', settled_at = now() where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a' returning 1$$,
  'worker, tenant A: UPDATE of A''s failures updates them');
select is_empty($$update apportion.worker_failed_jobs set status = 'resolved', settled_at = now() where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b' returning 1$$,
  'worker, tenant A: UPDATE of B''s failures matches no row');
select throws_ok($$update apportion.worker_failed_jobs set tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b' where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'$$,
  '42501', 'permission denied for table worker_failed_jobs', 'worker, tenant A: UPDATE of worker_failed_jobs.tenant_id refused (no column privilege)');
reset role;

-- Switching tenant inside the transaction switches what is visible.
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_reader;
select is((select count(*) from apportion.attribution_allocations where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), 3::bigint, 'reader, tenant B: attribution_allocations shows B''s 3 allocations');
select is((select count(*) from apportion.attribution_allocations where tenant_id is distinct from 'bbbbbbbb-0000-4000-8000-00000000000b'), 0::bigint, 'reader, tenant B: attribution_allocations hides A''s rows');
reset role;

-- B's rows came through every attempt above untouched.
select results_eq(
  $$ select 'tenants', count(*) from apportion.tenants where id = 'bbbbbbbb-0000-4000-8000-00000000000b'
  union all select 'channels', count(*) from apportion.channels where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'
  union all select 'touchpoints', count(*) from apportion.touchpoints where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'
  union all select 'attribution_events', count(*) from apportion.attribution_events where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'
  union all select 'tenant_models', count(*) from apportion.tenant_models where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'
  union all select 'attribution_allocations', count(*) from apportion.attribution_allocations where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'
  union all select 'jobs', count(*) from apportion.jobs where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'
  union all select 'worker_failed_jobs', count(*) from apportion.worker_failed_jobs where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b' $$,
  $$ values ('tenants', 1::bigint),
         ('channels', 8::bigint),
         ('touchpoints', 3::bigint),
         ('attribution_events', 3::bigint),
         ('tenant_models', 2::bigint),
         ('attribution_allocations', 3::bigint),
         ('jobs', 3::bigint),
         ('worker_failed_jobs', 3::bigint) $$,
  'B''s rows: none added, none removed');
select results_eq(
  $$ select (select sum(touchpoint_count) from apportion.attribution_allocations where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'),
            (select sum(attempts) from apportion.jobs where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'),
            (select count(*) from apportion.worker_failed_jobs where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b' and status = 'open') $$,
  $$ values (3::bigint, 0::bigint, 3::bigint) $$,
  'B''s rows: none changed');

select * from finish();
rollback;
