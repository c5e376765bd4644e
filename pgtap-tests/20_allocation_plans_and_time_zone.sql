-- The engine's query (apportion.allocation_rows) is reached three ways:
-- recompute_window plans it afresh on every call, allocate_event runs a
-- cached generic plan, and the function itself is callable by the worker.
-- Whatever the way, the plan or the session's time zone, the rows are the
-- same, and row level security still decides which rows it can see.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-0000000000a6, tenant B = ...b6.
-- Every event is 2025-03-10 12:00 UTC, a day after New York went to summer
-- time (2025-03-09), so a '3 days' lookback counted on the America/New_York
-- clock would start at 2025-03-07 13:00 UTC, an hour after the UTC clock's
-- 12:00, and would lose the touch at 12:30.
begin;
\ir lib/fixtures.sql
select plan(13);

\o /dev/null
select apportion_test.make_tenant('A', 'aaaaaaaa-0000-4000-8000-0000000000a6');
select apportion_test.make_tenant('B', 'aaaaaaaa-0000-4000-8000-0000000000b6');
select apportion.register_model('t26-linear', 'linear', '{"lookback": "3 days"}');
select apportion.register_model('t26-decay', 'time_decay', '{"lookback": "3 days", "half_life": "1 day"}');
select apportion.register_model('t26-first', 'first_touch', '{"lookback": "3 days"}');
select apportion.register_model('t26-split', 'fixed_split', '{"channels": ["email", "display"], "weights": [0.7, 0.3]}');
select apportion.register_model('t26-decay-tiny', 'time_decay', '{"lookback": "1 year", "half_life": "1 second"}');

select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-0000000000a6', 'c1', ch, at::timestamptz)
  from (values ('referral', '2025-03-07T11:30Z'),   -- 3 days and 30 minutes before: out
               ('email', '2025-03-07T12:30Z'),      -- 71 hours 30 minutes before: in
               ('display', '2025-03-09T08:00Z'),
               ('email', '2025-03-10T11:00Z')) t (ch, at);
select apportion_test.make_event('aaaaaaaa-0000-4000-8000-0000000000a6', 'c1', '2025-03-10T12:00Z', 1000 + i, 'USD',
                                 ('aaaaaaaa-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid)
  from generate_series(1, 8) i;
-- A touch 200 days (17,280,000 one-second half-lives) before the newest.
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-0000000000a6', 'c9', 'referral', '2024-09-22T12:00Z');
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-0000000000a6', 'c9', 'email', '2025-04-10T11:59Z');
select apportion_test.make_event('aaaaaaaa-0000-4000-8000-0000000000a6', 'c9', '2025-04-10T12:00Z', 777, 'USD',
                                 'aaaaaaaa-0000-4000-8000-0000000000c9');
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-0000000000b6', 'c1', 'paid_social', '2025-03-10T10:00Z');
select apportion_test.make_event('aaaaaaaa-0000-4000-8000-0000000000b6', 'c1', '2025-03-10T12:00Z', 5000, 'USD',
                                 'bbbbbbbb-0000-4000-8000-000000000001');
\o

select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-0000000000a6') \g /dev/null

-- Time zone -------------------------------------------------------------------
set local timezone = 'UTC';
create temp table t26_utc as
  select m, c.* from unnest(array['t26-linear', 't26-decay', 't26-first', 't26-split']) m,
       lateral apportion.compute_allocations(m, null, '2025-03-10T00:00Z', '2025-03-11T00:00Z') c;
select results_eq(
  $$select channel, sum(touchpoint_count)::int from t26_utc where m = 't26-linear' group by channel order by channel$$,
  $$values ('display', 8), ('email', 16)$$,
  'the 3-day lookback is 72 hours on the UTC clock: in, the touch 71.5 hours before; out, the one 72.5 hours before');
set local timezone = 'America/New_York';
select results_eq(
  $$select m, c.* from unnest(array['t26-linear', 't26-decay', 't26-first', 't26-split']) m,
         lateral apportion.compute_allocations(m, null, '2025-03-10T00:00Z', '2025-03-11T00:00Z') c
     order by 1, 2, 3$$,
  $$select * from t26_utc order by 1, 2, 3$$,
  'a session in America/New_York, a day after its clocks went forward, gets the same rows as one in UTC');
select results_eq(
  $$select channel, allocated_revenue_cents, touchpoint_count
      from apportion.allocate_event('aaaaaaaa-0000-4000-8000-000000000001', 't26-decay')$$,
  $$select channel, allocated_revenue_cents, touchpoint_count from t26_utc
     where m = 't26-decay' and event_id = 'aaaaaaaa-0000-4000-8000-000000000001' order by channel$$,
  'and so does allocate_event');
reset timezone;

-- recompute_window call after call ----------------------------------------------
-- Seven calls in one session (a cached statement would switch to its generic
-- plan after five); every one stores or keeps the same rows.
delete from apportion.attribution_allocations \g /dev/null
create temp table t26_runs (run int, model_version text, event_id uuid, channel text, cents bigint, ratio numeric);
do $$
begin
  for i in 1..7 loop
    perform apportion.recompute_window('2025-03-10T00:00Z', '2025-03-11T00:00Z', m)
       from unnest(array['t26-linear', 't26-decay', 't26-first', 't26-split']) m;
    insert into t26_runs
    select i, a.model_version, a.event_id, a.channel, a.allocated_revenue_cents, a.allocation_ratio
      from apportion.attribution_allocations a;
    if i % 2 = 0 then
      delete from apportion.attribution_allocations;  -- the next call stores afresh
    end if;
  end loop;
end
$$;
select results_eq(
  $$select run, count(*) from t26_runs group by run order by run$$,
  $$select i, (select count(*) from t26_runs where run = 1) from generate_series(1, 7) i$$,
  'each of the seven rounds left as many rows as the first, and the first left some');
select is_empty(
  $$select model_version, event_id, channel, cents, ratio from t26_runs where run > 1
    except
    select model_version, event_id, channel, cents, ratio from t26_runs where run = 1$$,
  'and no row that the first did not');

select results_eq(
  $$select model_version, event_id, channel, allocated_revenue_cents, allocation_ratio
      from apportion.attribution_allocations order by 1, 2, 3$$,
  $$select m, event_id, channel, allocated_revenue_cents, allocation_ratio from t26_utc order by 1, 2, 3$$,
  'what the window stored is what compute_allocations computes');

-- The generic plan (allocate_event) against the fresh one (the window) ------------
select is_empty(
  $$select a.* from apportion.attribution_allocations x,
           lateral apportion.allocate_event(x.event_id, x.model_version) a
     where x.channel = 'email'
    except
    select * from apportion.attribution_allocations$$,
  'allocate_event, called for every event and model (its cached generic plan), returns the stored rows');

-- allocation_rows under row level security -----------------------------------------
select is_empty(
  $$select * from apportion.allocation_rows('aaaaaaaa-0000-4000-8000-0000000000b6', 'linear', '30 days', 'direct',
       null, null, null, null, null, '{}', null, '2025-03-01', '2025-04-01')$$,
  'tenant A asking allocation_rows for tenant B''s id sees nothing of B');
select is_empty(
  $$select * from apportion.allocation_rows('aaaaaaaa-0000-4000-8000-0000000000b6', 'linear', '30 days', 'direct',
       null, null, null, null, null, '{}', array['bbbbbbbb-0000-4000-8000-000000000001']::uuid[], null, null)$$,
  'nor B''s event named by its id');
select set_config('app.tenant_id', '', true) \g /dev/null
select is_empty(
  $$select * from apportion.allocation_rows('aaaaaaaa-0000-4000-8000-0000000000a6', 'linear', '30 days', 'direct',
       null, null, null, null, null, '{}', null, '2025-03-01', '2025-04-01')$$,
  'with no tenant set it sees nothing at all');
select throws_ok(
  $$select * from apportion.compute_allocations('t26-linear', null, '2025-03-01', '2025-04-01')$$,
  '42501', null, 'and compute_allocations refuses to run without a tenant');

-- Inlined, not called -----------------------------------------------------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-0000000000a6', true) \g /dev/null
create function pg_temp.t26_plan(q text) returns setof text language plpgsql as $$
begin
  return query execute 'explain (costs off) ' || q;
end
$$;
select ok(
  exists (select from pg_temp.t26_plan($$select * from apportion.allocation_rows('aaaaaaaa-0000-4000-8000-0000000000a6',
            'linear', '30 days', 'direct', null, null, null, null, null, '{}', null, '2025-03-10', '2025-03-11')$$) p
           where p ~ 'touchpoints')
  and not exists (select from pg_temp.t26_plan($$select * from apportion.allocation_rows('aaaaaaaa-0000-4000-8000-0000000000a6',
            'linear', '30 days', 'direct', null, null, null, null, null, '{}', null, '2025-03-10', '2025-03-11')$$) p
           where p ~ 'Function Scan'),
  'allocation_rows is inlined into the statement that calls it: its plan scans touchpoints, with no function scan');

-- A touch millions of half-lives old ---------------------------------------------------
select results_eq(
  $$select channel, allocated_revenue_cents, allocation_ratio
      from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000c9', 't26-decay-tiny')$$,
  $$values ('email', 777::bigint, 1.000000::numeric)$$,
  'time_decay with a touch 17,280,000 half-lives older than the newest: weight 0, no overflow, all to the newest');

select apportion_test.as_admin() \g /dev/null
select * from finish();
rollback;
