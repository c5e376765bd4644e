-- The engine's errors on bad calls: a window that is missing a bound or
-- ends before (or at) its start, an unknown model, an unknown event. Each
-- is 22023 with a message that says what was wrong. Run as the worker role
-- under its tenant; timestamps in messages are shown in UTC.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
begin;
\ir lib/fixtures.sql
select plan(6);

\o /dev/null
select apportion_test.make_tenant('A', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.register_model('err-linear', 'linear');
select apportion_test.make_event('aaaaaaaa-0000-4000-8000-00000000000a', 'c1', '2025-06-10 12:00Z', 1000,
  p_id => 'aaaaaaaa-0000-4000-8000-0000000000e1');
\o
set local timezone = 'UTC';

select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null

-- recompute_window ----------------------------------------------------------------
select throws_ok($$select * from apportion.recompute_window('2025-06-02', '2025-06-01', 'err-linear')$$,
  '22023', 'recompute_window: window_end (2025-06-01 00:00:00+00) must be after window_start (2025-06-02 00:00:00+00)',
  'recompute_window: end before start is 22023');
select throws_ok($$select * from apportion.recompute_window('2025-06-01', '2025-06-01', 'err-linear')$$,
  '22023', 'recompute_window: window_end (2025-06-01 00:00:00+00) must be after window_start (2025-06-01 00:00:00+00)',
  'recompute_window: end equal to start is 22023');
select throws_ok($$select * from apportion.recompute_window(null, '2025-06-01', 'err-linear')$$,
  '22023', 'recompute_window: window_start and window_end are required (got null, 2025-06-01 00:00:00+00)',
  'recompute_window: a missing bound is 22023');
select throws_ok($$select * from apportion.recompute_window('2025-06-01', '2025-07-01', 'no-such-model')$$,
  '22023', 'model version ''no-such-model'' is not registered',
  'recompute_window: an unknown model is 22023, named');

-- allocate_event ------------------------------------------------------------------
select throws_ok($$select * from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000ff', 'err-linear')$$,
  '22023', 'allocate_event: event aaaaaaaa-0000-4000-8000-0000000000ff does not exist for the current tenant',
  'allocate_event: an unknown event is 22023');
select throws_ok($$select * from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 'no-such-model')$$,
  '22023', 'model version ''no-such-model'' is not registered',
  'allocate_event: an unknown model is 22023, named');
select apportion_test.as_admin() \g /dev/null

select * from finish();
rollback;
