-- An example of a service's own pgTAP test of its apportion integration,
-- run with pg_prove against a database where apportion is installed:
--   pg_prove -d "$DATABASE_URL" examples/pgtap/attribution_integration_test.sql
-- The service here ingests as apportion_ingest and reads reports as
-- apportion_reader; the test makes a tenant, touches and a conversion,
-- allocates them synchronously and checks what the service would read.
-- Everything is rolled back.
begin;
\i node_modules/apportion/sql/test_helpers.sql
select plan(5);

\o /dev/null
select apportion_test.make_tenant('example shop', '0e0e0000-0000-4000-8000-000000000001');
select apportion_test.make_tenant('another shop', '0e0e0000-0000-4000-8000-000000000002');
select apportion.register_model('example-linear', 'linear');
\o

-- The service's ingest role: activate the model, send touches and an order.
select apportion_test.as_role('apportion_ingest', '0e0e0000-0000-4000-8000-000000000001');
select lives_ok($$select apportion.activate_model('example-linear')$$, 'the shop computes linear attribution');
select lives_ok($$
  insert into apportion.touchpoints (customer_id, channel, occurred_at) values
    ('customer-1', 'email',   '2026-11-20 10:00Z'),
    ('customer-1', 'display', '2026-11-21 10:00Z');
  insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency, external_event_id)
  values ('customer-1', '2026-11-22 10:00Z', 10000, 'USD', 'order-1001')$$,
  'ingest writes touchpoints and the order');
select apportion_test.as_admin();

-- What the worker would do, now.
select is(apportion_test.drain_allocations('0e0e0000-0000-4000-8000-000000000001'), 1::bigint, 'one event allocated');

select apportion_test.as_role('apportion_reader', '0e0e0000-0000-4000-8000-000000000001');
select results_eq(
  $$select channel, allocated_revenue_cents from apportion.attribution_allocations
     where model_version = 'example-linear' order by channel$$,
  $$values ('display', 5000::bigint), ('email', 5000::bigint)$$,
  'linear: the order is split evenly between the two touches');

select apportion_test.as_role('apportion_reader', '0e0e0000-0000-4000-8000-000000000002');
select is((select count(*) from apportion.attribution_allocations), 0::bigint, 'another tenant sees none of it');

select * from finish();
rollback;
