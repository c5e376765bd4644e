-- The parity vector (docs/attribution.md), verbatim: fixed_split over
-- direct, email, google_search for two events; the cent that 10000 / 3 leaves
-- over goes to the channel with the smallest md5(event_id || ':' || channel).
-- Run as the orchestrator's role under the tenant, exactly as in production.
begin;
\ir lib/fixtures.sql
select plan(12);

\o /dev/null
select apportion_test.make_tenant('parity', '00000000-0000-0000-0000-000000000001');
select apportion.register_model('1.0.0', 'fixed_split', '{"channels": ["direct", "email", "google_search"]}');

select apportion_test.make_event('00000000-0000-0000-0000-000000000001', 'customer-a', '2025-06-01T10:00:00Z', 10000, 'USD',
  p_id => '00000000-0000-0000-0000-0000000000a1');
select apportion_test.make_event('00000000-0000-0000-0000-000000000001', 'customer-b', '2025-06-01T15:00:00Z', 15000, 'USD',
  p_id => '00000000-0000-0000-0000-0000000000b2');
\o

select apportion_test.as_role('apportion_worker', '00000000-0000-0000-0000-000000000001') \g /dev/null

select results_eq(
  $$select * from apportion.recompute_window('2025-06-01T00:00Z', '2025-06-02T00:00Z', '1.0.0')$$,
  $$values (2::bigint, 6::bigint)$$,
  'recompute_window over the parity window returns 2 events, 6 allocations');

-- The spare cent of A: computed here from the rule, independently of the engine.
create temp table spare_cent_channel on commit drop as
select c as channel
  from unnest(array['direct', 'email', 'google_search']) c
 order by md5('00000000-0000-0000-0000-0000000000a1' || ':' || c)
 limit 1;
grant select on spare_cent_channel to apportion_worker;

select results_eq(
  $$select event_id, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count
      from apportion.attribution_allocations where model_version = '1.0.0'
     order by event_id, channel$$,
  $$select '00000000-0000-0000-0000-0000000000a1'::uuid, c,
           case when c = (select channel from spare_cent_channel) then 3334 else 3333 end::bigint,
           0.333333::numeric(7, 6), 0
      from unnest(array['direct', 'email', 'google_search']) c
    union all
    select '00000000-0000-0000-0000-0000000000b2'::uuid, c, 5000::bigint, 0.333333::numeric(7, 6), 0
      from unnest(array['direct', 'email', 'google_search']) c
    order by 1, 2$$,
  'B gets 5000 x 3; A gets 3333, 3333, 3334 with the spare cent by md5 tie-break; every ratio 0.333333');

select is(
  (select sum(allocated_revenue_cents) from apportion.attribution_allocations
    where event_id = '00000000-0000-0000-0000-0000000000a1'),
  10000::numeric, 'A''s parts sum to its 10000 cents (truncation would lose one)');
select is(
  (select sum(allocated_revenue_cents) from apportion.attribution_allocations
    where event_id = '00000000-0000-0000-0000-0000000000b2'),
  15000::numeric, 'B''s parts sum to its 15000 cents');
select is(
  (select count(*) from apportion.attribution_allocations a
     join apportion.attribution_events e on e.id = a.event_id
    where a.currency = e.currency and a.event_occurred_at = e.occurred_at),
  6::bigint, 'each row copies its event''s currency and occurred_at');
select is(
  (select count(*) from apportion.attribution_allocations
    where tenant_id = '00000000-0000-0000-0000-000000000001'),
  6::bigint, 'all 6 rows belong to the tenant');

-- Snapshot the rows, then backdate computed_at (as superuser) so that any
-- rewrite by the rerun would show: now() is constant inside this transaction.
create temp table first_run on commit drop as
select a.*, a.ctid::text as row_ctid from apportion.attribution_allocations a;
select apportion_test.as_admin() \g /dev/null
\o /dev/null
update apportion.attribution_allocations set computed_at = '2000-01-01T00:00Z';
create temp table backdated on commit drop as
select a.*, a.ctid::text as row_ctid from apportion.attribution_allocations a;
grant select on first_run, backdated to apportion_worker;
select set_config('app.correlation_id', '11111111-1111-1111-1111-111111111111', true);
\o
select apportion_test.as_role('apportion_worker', '00000000-0000-0000-0000-000000000001') \g /dev/null

select results_eq(
  $$select * from apportion.recompute_window('2025-06-01T00:00Z', '2025-06-02T00:00Z', '1.0.0')$$,
  $$values (2::bigint, 6::bigint)$$,
  'run again: still 2 events, 6 allocations');

select results_eq(
  $$select a.*, a.ctid::text from apportion.attribution_allocations a order by event_id, channel$$,
  $$select * from backdated order by event_id, channel$$,
  'run again: identical 6 rows, same computed_at, same correlation_id, same physical rows (nothing rewritten)');

select results_eq(
  $$select event_id, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, correlation_id
      from apportion.attribution_allocations order by event_id, channel$$,
  $$select event_id, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, correlation_id
      from first_run order by event_id, channel$$,
  'run again: values identical to the first run');

-- allocate_event agrees with recompute_window and changes nothing either.
select results_eq(
  $$select * from apportion.allocate_event('00000000-0000-0000-0000-0000000000a1', '1.0.0')$$,
  $$select tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio,
           touchpoint_count, currency, event_occurred_at, correlation_id, computed_at, change_reason
      from backdated where event_id = '00000000-0000-0000-0000-0000000000a1' order by channel$$,
  'allocate_event(A) returns the same 3 rows, untouched');

-- A window that holds neither event: nothing computed, nothing removed.
select results_eq(
  $$select * from apportion.recompute_window('2025-06-02T00:00Z', '2025-06-03T00:00Z', '1.0.0')$$,
  $$values (0::bigint, 0::bigint)$$,
  'the next day''s window has no events');
select is((select count(*) from apportion.attribution_allocations), 6::bigint,
  'and leaves the 6 rows in place');

select * from finish();
rollback;
