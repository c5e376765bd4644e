-- The ingest trigger: inserting events enqueues, in the same transaction,
-- one attribution.allocate_event job per new event and active model of the
-- event's tenant, with the caller's correlation id. No active model, no job;
-- rows skipped by ON CONFLICT DO NOTHING enqueue nothing.
--
-- Tenant A (two active models) = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B (one)               = bbbbbbbb-0000-4000-8000-00000000000b
-- Tenant C (none)              = cccccccc-0000-4000-8000-00000000000c
begin;
select plan(12);

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

-- Tenant A: 3 events x 2 models = 6 jobs, in the inserting transaction.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
select set_config('app.correlation_id', 'eeeeeeee-0000-4000-8000-00000000000e', true);
set local role apportion_ingest;
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency, external_event_id) values
  ('aaaaaaaa-0000-4000-8000-0000000e0001', 'cust-1', '2026-01-02 00:00Z', 1000, 'EUR', 'ord-1'),
  ('aaaaaaaa-0000-4000-8000-0000000e0002', 'cust-1', '2026-01-02 01:00Z', 2000, 'EUR', 'ord-2'),
  ('aaaaaaaa-0000-4000-8000-0000000e0003', 'cust-2', '2026-01-02 02:00Z', 3000, 'EUR', 'ord-3');
select is((select count(*) from apportion.jobs), 6::bigint, 'ingest, tenant A: 3 events enqueue 6 jobs, visible to A at once');
select set_eq($$select payload from apportion.jobs$$,
  $$select jsonb_build_object('event_id', e.id, 'model_version', m.model_version)
      from (values ('aaaaaaaa-0000-4000-8000-0000000e0001'::uuid), ('aaaaaaaa-0000-4000-8000-0000000e0002'), ('aaaaaaaa-0000-4000-8000-0000000e0003')) e (id)
     cross join (values ('q-last-touch'), ('q-first-touch')) m (model_version)$$,
  'one payload {event_id, model_version} per event and active model');
select results_eq($$select tenant_id, queue, task, state, attempts, max_attempts, correlation_id, run_at, count(*)
                      from apportion.jobs group by 1, 2, 3, 4, 5, 6, 7, 8$$,
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'attribution', 'allocate_event', 'queued', 0, 5,
            'eeeeeeee-0000-4000-8000-00000000000e'::uuid, now(), 6::bigint)$$,
  'each is a queued attribution.allocate_event job of A, runnable now, 5 attempts, with app.correlation_id');

-- Duplicates skipped by ON CONFLICT DO NOTHING enqueue nothing.
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency, external_event_id) values
  ('aaaaaaaa-0000-4000-8000-0000000e0001', 'cust-1', '2026-01-02 00:00Z', 1000, 'EUR', 'ord-1'),
  ('aaaaaaaa-0000-4000-8000-0000000e0004', 'cust-2', '2026-01-03 00:00Z', 4000, 'EUR', 'ord-4')
on conflict do nothing;
select is((select count(*) from apportion.attribution_events), 4::bigint, 'of a duplicate and a new event, only the new one is inserted');
select is((select count(*) from apportion.jobs), 8::bigint, 'and only it enqueues (2 jobs, one per model)');
select set_eq($$select payload ->> 'model_version' from apportion.jobs where payload ->> 'event_id' = 'aaaaaaaa-0000-4000-8000-0000000e0004'$$,
  array['q-last-touch', 'q-first-touch'], 'the two new jobs are for the new event');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency, external_event_id) values
  ('aaaaaaaa-0000-4000-8000-0000000e0009', 'cust-1', '2026-01-02 00:00Z', 1000, 'EUR', 'ord-1')
on conflict do nothing;
select is((select count(*) from apportion.jobs), 8::bigint, 'an event skipped on its external id enqueues nothing either');
reset role;

-- Tenant B: one model; its jobs are B's, and A does not see them.
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
  ('bbbbbbbb-0000-4000-8000-0000000e0001', 'cust-1', '2026-01-02 00:00Z', 500, 'EUR'),
  ('bbbbbbbb-0000-4000-8000-0000000e0002', 'cust-1', '2026-01-02 01:00Z', 700, 'EUR');
select results_eq($$select tenant_id, payload ->> 'model_version', count(*) from apportion.jobs group by 1, 2$$,
  $$values ('bbbbbbbb-0000-4000-8000-00000000000b'::uuid, 'q-last-touch', 2::bigint)$$,
  'ingest, tenant B: 2 events x 1 model = 2 jobs of B, and B sees none of A''s');
reset role;

-- Tenant C: no active model, no job.
select set_config('app.tenant_id', 'cccccccc-0000-4000-8000-00000000000c', true);
set local role apportion_ingest;
insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values
  ('cust-1', '2026-01-02 00:00Z', 100, 'EUR'), ('cust-2', '2026-01-02 00:00Z', 200, 'EUR');
select is((select count(*) from apportion.attribution_events), 2::bigint, 'ingest, tenant C: its 2 events are inserted');
select is((select count(*) from apportion.jobs), 0::bigint, 'but with no active model they enqueue no job');
reset role;
select is((select count(*) from apportion.jobs where tenant_id = 'cccccccc-0000-4000-8000-00000000000c'), 0::bigint,
  'superuser: C has no job at all');

-- Deactivating a model stops its jobs for new events.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.deactivate_model('q-first-touch');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
  ('aaaaaaaa-0000-4000-8000-0000000e0005', 'cust-1', '2026-01-04 00:00Z', 100, 'EUR');
select set_eq($$select payload ->> 'model_version' from apportion.jobs where payload ->> 'event_id' = 'aaaaaaaa-0000-4000-8000-0000000e0005'$$,
  array['q-last-touch'], 'after deactivating a model, a new event is enqueued for the remaining active model only');
reset role;

select * from finish();
rollback;
