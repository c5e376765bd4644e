-- The ingest trigger: inserting events records, in the same transaction, one
-- pending allocation per new event and active model of the event's tenant
-- (with the caller's correlation id), and each inserting statement enqueues
-- one attribution.allocate_pending job per (tenant, model) it added work
-- for. No active model, nothing; rows skipped by ON CONFLICT DO NOTHING
-- record and enqueue nothing.
--
-- Tenant A (two active models) = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B (one)               = bbbbbbbb-0000-4000-8000-00000000000b
-- Tenant C (none)              = cccccccc-0000-4000-8000-00000000000c
begin;
\ir lib/isolate.sql
select plan(15);

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

select apportion.create_tenant('tenant a', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.create_tenant('tenant b', 'bbbbbbbb-0000-4000-8000-00000000000b');
select apportion.create_tenant('tenant c', 'cccccccc-0000-4000-8000-00000000000c');
select apportion.register_model('q-last-touch', 'last_touch');
select apportion.register_model('q-first-touch', 'first_touch');

select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.activate_model('q-last-touch');
select apportion.activate_model('q-first-touch');
reset role;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
select apportion.activate_model('q-last-touch');
reset role;

-- Tenant A: 3 events x 2 models = 6 pending allocations and 2 jobs, in the
-- inserting transaction.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
select set_config('app.correlation_id', 'eeeeeeee-0000-4000-8000-00000000000e', true);
set local role apportion_ingest;
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency, external_event_id) values
  ('aaaaaaaa-0000-4000-8000-0000000e0001', 'cust-1', '2026-01-02 00:00Z', 1000, 'EUR', 'ord-1'),
  ('aaaaaaaa-0000-4000-8000-0000000e0002', 'cust-1', '2026-01-02 01:00Z', 2000, 'EUR', 'ord-2'),
  ('aaaaaaaa-0000-4000-8000-0000000e0003', 'cust-2', '2026-01-02 02:00Z', 3000, 'EUR', 'ord-3');
select set_eq($$select event_id, model_version, correlation_id from apportion.pending_allocations$$,
  $$select e.id, m.model_version, 'eeeeeeee-0000-4000-8000-00000000000e'::uuid
      from (values ('aaaaaaaa-0000-4000-8000-0000000e0001'::uuid), ('aaaaaaaa-0000-4000-8000-0000000e0002'), ('aaaaaaaa-0000-4000-8000-0000000e0003')) e (id)
     cross join (values ('q-last-touch'), ('q-first-touch')) m (model_version)$$,
  'ingest, tenant A: one pending allocation per event and active model, with app.correlation_id, visible to A at once');
select results_eq($$select tenant_id, queue, task, payload, state, attempts, max_attempts, correlation_id, run_at
                      from apportion.jobs order by payload ->> 'model_version'$$,
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'attribution', 'allocate_pending', '{"model_version": "q-first-touch"}'::jsonb,
            'queued', 0, 5, 'eeeeeeee-0000-4000-8000-00000000000e'::uuid, now()),
           ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'attribution', 'allocate_pending', '{"model_version": "q-last-touch"}'::jsonb,
            'queued', 0, 5, 'eeeeeeee-0000-4000-8000-00000000000e'::uuid, now())$$,
  'and one queued attribution.allocate_pending job of A per model, runnable now, 5 attempts, with app.correlation_id');

-- Duplicates skipped by ON CONFLICT DO NOTHING record nothing.
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency, external_event_id) values
  ('aaaaaaaa-0000-4000-8000-0000000e0001', 'cust-1', '2026-01-02 00:00Z', 1000, 'EUR', 'ord-1'),
  ('aaaaaaaa-0000-4000-8000-0000000e0004', 'cust-2', '2026-01-03 00:00Z', 4000, 'EUR', 'ord-4')
on conflict do nothing;
select is((select count(*) from apportion.attribution_events), 4::bigint, 'of a duplicate and a new event, only the new one is inserted');
select set_eq($$select model_version from apportion.pending_allocations where event_id = 'aaaaaaaa-0000-4000-8000-0000000e0004'$$,
  array['q-last-touch', 'q-first-touch'], 'and only it is recorded, once per model');
select is((select count(*) from apportion.pending_allocations), 8::bigint, 'the duplicate added nothing');
select is((select count(*) from apportion.jobs), 4::bigint, 'the statement enqueued a job per model for its new event');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency, external_event_id) values
  ('aaaaaaaa-0000-4000-8000-0000000e0009', 'cust-1', '2026-01-02 00:00Z', 1000, 'EUR', 'ord-1')
on conflict do nothing;
select is((select count(*) from apportion.pending_allocations), 8::bigint, 'an event skipped on its external id records nothing either');
select is((select count(*) from apportion.jobs), 4::bigint, 'and a statement that added no work enqueues nothing');
reset role;

-- A job claimed before this transaction commits cannot see its pending
-- rows, so every statement that adds work enqueues its own job.
set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w-ingest', array['attribution'], 10)), 4::bigint, 'the worker claims the four jobs');
reset role;
set local role apportion_ingest;
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
  ('aaaaaaaa-0000-4000-8000-0000000e0006', 'cust-3', '2026-01-05 00:00Z', 600, 'EUR');
select is((select count(*) from apportion.jobs where state = 'queued'), 2::bigint,
  'the next event enqueues one job per model again');
reset role;

-- Tenant B: one model; its work is B's, and A's is not visible to it.
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
  ('bbbbbbbb-0000-4000-8000-0000000e0001', 'cust-1', '2026-01-02 00:00Z', 500, 'EUR'),
  ('bbbbbbbb-0000-4000-8000-0000000e0002', 'cust-1', '2026-01-02 01:00Z', 700, 'EUR');
select results_eq($$select tenant_id, model_version, count(*) from apportion.pending_allocations group by 1, 2$$,
  $$values ('bbbbbbbb-0000-4000-8000-00000000000b'::uuid, 'q-last-touch', 2::bigint)$$,
  'ingest, tenant B: 2 events x 1 model = 2 pending allocations of B, and B sees none of A''s');
select results_eq($$select tenant_id, payload ->> 'model_version', count(*) from apportion.jobs group by 1, 2$$,
  $$values ('bbbbbbbb-0000-4000-8000-00000000000b'::uuid, 'q-last-touch', 1::bigint)$$,
  'and one job of B');
reset role;

-- Tenant C: no active model, nothing.
select set_config('app.tenant_id', 'cccccccc-0000-4000-8000-00000000000c', true);
set local role apportion_ingest;
insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values
  ('cust-1', '2026-01-02 00:00Z', 100, 'EUR'), ('cust-2', '2026-01-02 00:00Z', 200, 'EUR');
select is((select count(*) from apportion.attribution_events), 2::bigint, 'ingest, tenant C: its 2 events are inserted');
select is((select count(*) from apportion.pending_allocations) + (select count(*) from apportion.jobs), 0::bigint,
  'but with no active model they record and enqueue nothing');
reset role;

-- Deactivating a model stops its work for new events.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.deactivate_model('q-first-touch');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
  ('aaaaaaaa-0000-4000-8000-0000000e0005', 'cust-1', '2026-01-04 00:00Z', 100, 'EUR');
select set_eq($$select model_version from apportion.pending_allocations where event_id = 'aaaaaaaa-0000-4000-8000-0000000e0005'$$,
  array['q-last-touch'], 'after deactivating a model, a new event is recorded for the remaining active model only');
reset role;

select * from finish();
rollback;
