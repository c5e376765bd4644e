-- Storing allocations: the first allocation of events for a model goes in
-- by a plain insert. When rows with the same keys appear between the check
-- and the insert (another run storing the same events), the unique
-- violation sends the call down the upsert path: no error, and the stored
-- rows are what one run computes.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
begin;
\ir lib/fixtures.sql
select plan(6);

\o /dev/null
select apportion_test.make_tenant('A', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.register_model('t25-linear', 'linear', '{}');
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-00000000000a', c, ch, at::timestamptz)
  from (values ('c1', 'email', '2025-05-01T10:00Z'), ('c1', 'display', '2025-05-01T11:00Z'),
               ('c2', 'referral', '2025-05-01T10:00Z'),
               ('c3', 'google_search', '2025-05-01T09:00Z'), ('c3', 'email', '2025-05-01T09:30Z')) t (c, ch, at);
select apportion_test.make_event('aaaaaaaa-0000-4000-8000-00000000000a', c, at::timestamptz, cents, 'USD', id::uuid)
  from (values ('aaaaaaaa-0000-4000-8000-0000000000e1', 'c1', '2025-05-02T10:00Z', 1001),
               ('aaaaaaaa-0000-4000-8000-0000000000e2', 'c2', '2025-05-02T11:00Z', 500),
               ('aaaaaaaa-0000-4000-8000-0000000000e3', 'c3', '2025-05-02T12:00Z', 333)) e (id, c, at, cents);
\o

-- What one run computes, to compare with.
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null
create temp table t25_expected as
  select event_id, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count
    from apportion.compute_allocations('t25-linear', null, '2025-05-02T00:00Z', '2025-05-03T00:00Z');
select apportion_test.as_admin() \g /dev/null

-- "Another run": before the first insert statement that writes
-- allocations, a statement trigger stores a row of event e3 (with wrong
-- amounts), as if a concurrent run had stored it just after the check. It
-- lives in the plain insert's subtransaction, so it goes when that insert
-- fails; a real concurrent row would stay and be rewritten by the upsert.
-- A sequence, which rollback does not reset, counts the firings.
create temp sequence t25_fired;
grant usage on sequence t25_fired to apportion_worker;
create function pg_temp.t25_race() returns trigger language plpgsql as $$
begin
  if nextval('pg_temp.t25_fired') = 1 then
    insert into apportion.attribution_allocations
      (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio,
       touchpoint_count, currency, event_occurred_at)
    values ('aaaaaaaa-0000-4000-8000-00000000000a', 'aaaaaaaa-0000-4000-8000-0000000000e3', 't25-linear',
            'email', 1, 0.5, 9, 'USD', '2025-05-02T12:00Z');
  end if;
  return null;
end
$$;
create trigger t25_race before insert on apportion.attribution_allocations
  for each statement execute function pg_temp.t25_race();

select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null
select results_eq(
  $$select * from apportion.recompute_window('2025-05-02T00:00Z', '2025-05-03T00:00Z', 't25-linear')$$,
  $$values (3::bigint, 5::bigint)$$,
  'a row stored meanwhile by "another run": no error, 3 events and 5 rows reported');
select apportion_test.as_admin() \g /dev/null
select is(nextval('pg_temp.t25_fired'), 4::bigint,
  'both paths ran: the plain insert (its statement and the nested one), which hit the row stored first, then the upsert');
select results_eq(
  $$select event_id, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count
      from apportion.attribution_allocations where model_version = 't25-linear' order by event_id, channel$$,
  $$select * from t25_expected order by event_id, channel$$,
  'the stored rows are exactly what one run computes');
drop trigger t25_race on apportion.attribution_allocations;

-- A second run takes the upsert path and changes nothing.
create temp table t25_before as select * from apportion.attribution_allocations where model_version = 't25-linear';
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null
select results_eq(
  $$select * from apportion.recompute_window('2025-05-02T00:00Z', '2025-05-03T00:00Z', 't25-linear')$$,
  $$values (3::bigint, 5::bigint)$$, 'a rerun reports the same');
select apportion_test.as_admin() \g /dev/null
select results_eq(
  $$select * from apportion.attribution_allocations where model_version = 't25-linear' order by event_id, channel$$,
  $$select * from t25_before order by event_id, channel$$,
  'and rewrites nothing (computed_at unchanged)');

-- allocate_event on an event with no rows yet: the plain insert, same rows.
delete from apportion.attribution_allocations where model_version = 't25-linear'
   and event_id = 'aaaaaaaa-0000-4000-8000-0000000000e1';
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null
select results_eq(
  $$select channel, allocated_revenue_cents, touchpoint_count from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 't25-linear')$$,
  $$select channel, allocated_revenue_cents, touchpoint_count from t25_expected
     where event_id = 'aaaaaaaa-0000-4000-8000-0000000000e1' order by channel$$,
  'allocate_event of an event without rows stores what one run computes');
select apportion_test.as_admin() \g /dev/null

select * from finish();
rollback;
