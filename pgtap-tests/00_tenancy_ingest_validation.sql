-- Ingest validation, as apportion_ingest: bad rows are refused with a stable
-- SQLSTATE and a clear message and leave nothing written; re-sent rows with
-- the same external id are refused (23505) or skipped with the documented
-- idempotent form `on conflict (tenant_id, external_...) do nothing`; times
-- outside years 1..9999 (infinity included) are refused.
begin;
\ir lib/isolate.sql
select plan(40);

-- Fixtures, as the superuser.
select apportion.create_tenant('tenant a', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.create_tenant('tenant b', 'bbbbbbbb-0000-4000-8000-00000000000b');
-- A channel only B has: not in A's taxonomy.
insert into apportion.channels (tenant_id, code, name) values ('bbbbbbbb-0000-4000-8000-00000000000b', 'podcast', 'Podcast');

set local role apportion_ingest;

-- No tenant set (app.tenant_id never set in this session, then '') -------------
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2026-01-02 00:00Z', 1000, 'EUR')$$,
  '42501', 'no tenant set: writes to apportion.attribution_events need app.tenant_id (select set_config(''app.tenant_id'', ''<tenant uuid>'', true))',
  'no tenant: event insert refused, 42501 "no tenant set"');
select throws_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'email', '2026-01-01 00:00Z')$$,
  '42501', 'no tenant set: writes to apportion.touchpoints need app.tenant_id (select set_config(''app.tenant_id'', ''<tenant uuid>'', true))',
  'no tenant: touchpoint insert refused, 42501 "no tenant set"');
select set_config('app.tenant_id', '', true);
select throws_like($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2026-01-02 00:00Z', 1000, 'EUR')$$,
  'no tenant set%', 'app.tenant_id = '''': event insert refused, "no tenant set"');
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2026-01-02 00:00Z', 1000, 'EUR')$$,
  '42501', null, 'app.tenant_id = '''': event insert refused with 42501');

-- Tenant A ------------------------------------------------------------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);

select lives_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2026-01-02 00:00Z', 0, 'EUR')$$,
  'event with revenue 0 and currency EUR accepted');
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2026-01-02 00:00Z', -1, 'EUR')$$,
  '23514', 'new row for relation "attribution_events" violates check constraint "attribution_events_revenue_cents_non_negative"',
  'negative revenue refused (23514)');
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2026-01-02 00:00Z', 1000, 'usd')$$,
  '23514', 'new row for relation "attribution_events" violates check constraint "attribution_events_currency_iso_4217_with_minor_units"',
  'lower-case currency usd refused (23514)');
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2026-01-02 00:00Z', 1000, 'US')$$,
  '23514', 'new row for relation "attribution_events" violates check constraint "attribution_events_currency_iso_4217_with_minor_units"',
  'two-letter currency US refused (23514: char(3) pads it to "US ")');
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2026-01-02 00:00Z', 1000, 'USDX')$$,
  '22001', 'value too long for type character(3)',
  'four-letter currency USDX refused (22001 string too long)');
select throws_ok($$insert into apportion.attribution_events (tenant_id, customer_id, occurred_at, revenue_cents, currency) values ('bbbbbbbb-0000-4000-8000-00000000000b', 'c1', '2026-01-02 00:00Z', 1000, 'EUR')$$,
  '42501', 'tenant_id bbbbbbbb-0000-4000-8000-00000000000b is not the current tenant (app.tenant_id = aaaaaaaa-0000-4000-8000-00000000000a): rows may only be written for the current tenant',
  'event for another tenant refused (42501, names both tenants)');

select lives_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'email', '2026-01-01 00:00Z')$$,
  'touchpoint on a channel of A''s taxonomy accepted');
select throws_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'podcast', '2026-01-01 00:00Z')$$,
  '23503', 'insert or update on table "touchpoints" violates foreign key constraint "touchpoints_channel_in_taxonomy"',
  'touchpoint on a channel only another tenant has refused (23503)');
select throws_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'carrier_pigeon', '2026-01-01 00:00Z')$$,
  '23503', 'insert or update on table "touchpoints" violates foreign key constraint "touchpoints_channel_in_taxonomy"',
  'touchpoint on an unknown channel refused (23503)');
select throws_ok($$insert into apportion.touchpoints (tenant_id, customer_id, channel, occurred_at) values ('bbbbbbbb-0000-4000-8000-00000000000b', 'c1', 'email', '2026-01-01 00:00Z')$$,
  '42501', 'tenant_id bbbbbbbb-0000-4000-8000-00000000000b is not the current tenant (app.tenant_id = aaaaaaaa-0000-4000-8000-00000000000a): rows may only be written for the current tenant',
  'touchpoint for another tenant refused (42501, names both tenants)');

reset role;
select results_eq(
  $$select tenant_id, revenue_cents, currency from apportion.attribution_events$$,
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 0::bigint, 'EUR'::char(3))$$,
  'the refused events left nothing written: only the accepted event exists, in any tenant');
select results_eq(
  $$select tenant_id, channel from apportion.touchpoints$$,
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'email')$$,
  'the refused touchpoints left nothing written: only the accepted touchpoint exists, in any tenant');
set local role apportion_ingest;

-- Times the engine cannot compute with: refused at ingest, not later for
-- every reader (a lookback window past the timestamp range fails with 22008).
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', 'infinity', 1000, 'EUR')$$,
  '23514', 'new row for relation "attribution_events" violates check constraint "attribution_events_occurred_at_in_years_1_to_9999"',
  'event at infinity refused (23514)');
select throws_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'email', '-infinity')$$,
  '23514', 'new row for relation "touchpoints" violates check constraint "touchpoints_occurred_at_in_years_1_to_9999"',
  'touchpoint at -infinity refused (23514)');
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '4000-01-01 BC', 1000, 'EUR')$$,
  '23514', null, 'event in 4000 BC refused (23514): its lookback would leave the timestamp range');
select throws_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'email', '10000-01-01 00:00Z')$$,
  '23514', null, 'touchpoint in year 10000 refused (23514)');
select lives_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
                  values ('c-bounds', '0001-01-01 00:00Z', 1, 'EUR'), ('c-bounds', '9999-12-31 23:59:59.999999Z', 1, 'EUR')$$,
  'twins: events at the first and last instants of years 1 and 9999 are accepted');

-- Re-sent events: same external_event_id ---------------------------------------
select lives_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency, external_event_id) values ('c1', '2026-01-03 00:00Z', 1500, 'EUR', 'order-1')$$,
  'event order-1 accepted');
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency, external_event_id) values ('c1', '2026-01-03 00:00Z', 1500, 'EUR', 'order-1')$$,
  '23505', 'duplicate key value violates unique constraint "attribution_events_external_event_id_unique"',
  'plain re-insert of order-1 refused (23505)');
select is((select count(*) from apportion.attribution_events where external_event_id = 'order-1'), 1::bigint,
  'order-1 is stored once after the refused re-insert');
select lives_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency, external_event_id) values ('c1', '2026-01-03 00:00Z', 1500, 'EUR', 'order-1')
                  on conflict (tenant_id, external_event_id) do nothing$$,
  'idempotent re-insert of order-1 (on conflict (tenant_id, external_event_id) do nothing) succeeds');
select is((select count(*) from apportion.attribution_events where external_event_id = 'order-1'), 1::bigint,
  'order-1 is still stored once after the idempotent re-insert');
select lives_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2026-01-03 00:00Z', 10, 'EUR'), ('c1', '2026-01-03 00:00Z', 10, 'EUR')$$,
  'events without external_event_id are never duplicates of each other (unique only when present)');

-- Re-sent touchpoints: same external_id ------------------------------------------
select lives_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at, external_id) values ('c1', 'email', '2026-01-01 01:00Z', 'click-1')$$,
  'touchpoint click-1 accepted');
select throws_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at, external_id) values ('c1', 'email', '2026-01-01 01:00Z', 'click-1')$$,
  '23505', 'duplicate key value violates unique constraint "touchpoints_external_id_unique"',
  'plain re-insert of click-1 refused (23505)');
select is((select count(*) from apportion.touchpoints where external_id = 'click-1'), 1::bigint,
  'click-1 is stored once after the refused re-insert');
select lives_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at, external_id) values ('c1', 'email', '2026-01-01 01:00Z', 'click-1')
                  on conflict (tenant_id, external_id) do nothing$$,
  'idempotent re-insert of click-1 (on conflict (tenant_id, external_id) do nothing) succeeds');
select is((select count(*) from apportion.touchpoints where external_id = 'click-1'), 1::bigint,
  'click-1 is still stored once after the idempotent re-insert');
select lives_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'email', '2026-01-01 02:00Z'), ('c1', 'email', '2026-01-01 02:00Z')$$,
  'touchpoints without external_id are never duplicates of each other (unique only when present)');

-- The same external ids in tenant B are B's own ----------------------------------
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
select lives_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency, external_event_id) values ('c1', '2026-01-03 00:00Z', 700, 'USD', 'order-1')$$,
  'tenant B: its own event order-1 accepted');
select lives_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at, external_id) values ('c1', 'podcast', '2026-01-01 01:00Z', 'click-1')$$,
  'tenant B: its own touchpoint click-1 (on its own channel podcast) accepted');
select is((select count(*) from apportion.attribution_events where external_event_id = 'order-1'), 1::bigint,
  'tenant B: sees one order-1, its own');
select is((select revenue_cents from apportion.attribution_events where external_event_id = 'order-1'), 700::bigint,
  'tenant B: its order-1 is the one it sent');
select lives_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency, external_event_id) values ('c1', '2026-01-03 00:00Z', 700, 'USD', 'order-1')
                  on conflict (tenant_id, external_event_id) do nothing$$,
  'tenant B: idempotent re-insert of its order-1 succeeds');
reset role;

select results_eq(
  $$select tenant_id, revenue_cents from apportion.attribution_events where external_event_id = 'order-1' order by tenant_id$$,
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 1500::bigint), ('bbbbbbbb-0000-4000-8000-00000000000b'::uuid, 700::bigint)$$,
  'order-1 exists once per tenant, each with its own revenue');
select results_eq(
  $$select tenant_id, channel from apportion.touchpoints where external_id = 'click-1' order by tenant_id$$,
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'email'), ('bbbbbbbb-0000-4000-8000-00000000000b'::uuid, 'podcast')$$,
  'click-1 exists once per tenant');

select * from finish();
rollback;
