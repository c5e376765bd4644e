-- Rerunning the engine: a rerun with unchanged inputs writes nothing (same
-- rows, same correlation id, no churn); when a new touch arrives, a rerun by
-- allocate_event or by recompute_window updates the rows that changed, adds
-- the new channel and drops the stale ones; every row written records the
-- run's app.correlation_id, and rows a run does not rewrite keep theirs.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a; one customer, one event
-- of 1200 cents at 2025-05-02 10:00 UTC, at first one touch (email).
begin;
\ir lib/fixtures.sql
select plan(10);

\o /dev/null
select apportion_test.make_tenant('A', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.register_model('rerun-last', 'last_touch');
select apportion.register_model('rerun-linear', 'linear');
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-00000000000a', 'c1', 'email', '2025-05-01T10:00Z');
select apportion_test.make_event('aaaaaaaa-0000-4000-8000-00000000000a', 'c1', '2025-05-02T10:00Z', 1200,
  p_id => 'aaaaaaaa-0000-4000-8000-0000000000e1');
\o

select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null

-- Unchanged inputs: no churn --------------------------------------------------------
select set_config('app.correlation_id', '11111111-1111-4111-8111-111111111111', true) \g /dev/null
select results_eq(
  $$select channel, allocated_revenue_cents, correlation_id from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 'rerun-last')$$,
  $$values ('email'::text, 1200::bigint, '11111111-1111-4111-8111-111111111111'::uuid)$$,
  'last_touch: email gets everything; the row records app.correlation_id');
select apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 'rerun-linear') \g /dev/null
create temp table before_rerun on commit drop as
  select * from apportion.attribution_allocations where model_version = 'rerun-last';
select set_config('app.correlation_id', '22222222-2222-4222-8222-222222222222', true) \g /dev/null
select lives_ok($$select * from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 'rerun-last')$$,
  'rerun with another correlation id');
select results_eq(
  $$select * from apportion.attribution_allocations where model_version = 'rerun-last'$$,
  $$select * from before_rerun$$,
  'the rerun changed nothing: same row, same correlation id and computed_at (no churn)');

-- A new touch: recompute_window drops the stale channel ----------------------------------
-- (the fixture writes it as the admin, as ingest would; then back to the worker)
select apportion_test.as_admin() \g /dev/null
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-00000000000a', 'c1', 'google_search', '2025-05-02T08:00Z') \g /dev/null
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null
select results_eq(
  $$select * from apportion.recompute_window('2025-05-01', '2025-05-03', 'rerun-last')$$,
  $$values (1::bigint, 1::bigint)$$,
  'after a new touch arrives: recompute_window computes 1 row');
select results_eq(
  $$select channel, allocated_revenue_cents from apportion.attribution_allocations where model_version = 'rerun-last'$$,
  $$values ('google_search'::text, 1200::bigint)$$,
  'the new last touch has it all; the stale email row is gone');
select results_eq(
  $$select channel, allocated_revenue_cents, touchpoint_count from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 'rerun-linear') order by channel$$,
  $$values ('email'::text, 600::bigint, 1), ('google_search', 600::bigint, 1)$$,
  'linear, rerun by allocate_event: the existing row is updated, the new channel added');

-- Another touch: allocate_event drops the stale channel -----------------------------------
select apportion_test.as_admin() \g /dev/null
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-00000000000a', 'c1', 'paid_social', '2025-05-02T09:00Z') \g /dev/null
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null
select set_config('app.correlation_id', '33333333-3333-4333-8333-333333333333', true) \g /dev/null
select results_eq(
  $$select channel, allocated_revenue_cents, correlation_id from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 'rerun-last')$$,
  $$values ('paid_social'::text, 1200::bigint, '33333333-3333-4333-8333-333333333333'::uuid)$$,
  'after the new touch: paid_social gets everything, recorded with the new correlation id; the stale row is gone');
select results_eq(
  $$select channel, correlation_id from apportion.attribution_allocations where model_version = 'rerun-linear' order by channel$$,
  $$values ('email'::text, '22222222-2222-4222-8222-222222222222'::uuid), ('google_search', '22222222-2222-4222-8222-222222222222')$$,
  'rows not rewritten keep the correlation id of the run that wrote them');
select results_eq(
  $$select event_count, allocation_count from apportion.recompute_window('2025-05-01', '2025-05-03', 'rerun-linear')$$,
  $$values (1::bigint, 3::bigint)$$,
  'recompute_window over the same event: linear now over email, google_search and paid_social');
select is((select string_agg(channel || '=' || allocated_revenue_cents, ',' order by channel) from apportion.attribution_allocations where model_version = 'rerun-linear'),
  'email=400,google_search=400,paid_social=400', 'linear rows follow the new touch, nothing stale left');
select apportion_test.as_admin() \g /dev/null

select * from finish();
rollback;
