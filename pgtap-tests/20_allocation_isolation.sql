-- The engine under row level security: tenants never mix, even for the same
-- customer id; another tenant's event does not exist for you; with no tenant
-- set the engine refuses to run (42501) and nothing is visible. Run as the
-- worker role, as in production.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
\ir lib/fixtures.sql
select plan(9);

\o /dev/null
select apportion_test.make_tenant('A', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion_test.make_tenant('B', 'bbbbbbbb-0000-4000-8000-00000000000b');
select apportion.register_model('iso-linear', 'linear');

-- The same customer id in both tenants, with different touches.
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-00000000000a', 'shared', 'email', '2025-06-09 12:00Z');
select apportion_test.make_event('aaaaaaaa-0000-4000-8000-00000000000a', 'shared', '2025-06-10 12:00Z', 1000,
  p_id => 'aaaaaaaa-0000-4000-8000-0000000000e1');
select apportion_test.make_touch('bbbbbbbb-0000-4000-8000-00000000000b', 'shared', 'display', '2025-06-09 13:00Z');
select apportion_test.make_touch('bbbbbbbb-0000-4000-8000-00000000000b', 'shared', 'referral', '2025-06-09 14:00Z');
select apportion_test.make_event('bbbbbbbb-0000-4000-8000-00000000000b', 'shared', '2025-06-10 12:00Z', 1000,
  p_id => 'bbbbbbbb-0000-4000-8000-0000000000e1');
\o

-- Tenant A ----------------------------------------------------------------------
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null
select results_eq(
  $$select channel, allocated_revenue_cents, touchpoint_count from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 'iso-linear')$$,
  $$values ('email'::text, 1000::bigint, 1)$$,
  'tenant A: customer "shared" sees only A''s touch (email), none of B''s');
select results_eq(
  $$select * from apportion.recompute_window('2025-06-01', '2025-07-01', 'iso-linear')$$,
  $$values (1::bigint, 1::bigint)$$,
  'tenant A: recompute_window sees one event, its own');
select throws_ok(
  $$select * from apportion.allocate_event('bbbbbbbb-0000-4000-8000-0000000000e1', 'iso-linear')$$,
  '22023', 'allocate_event: event bbbbbbbb-0000-4000-8000-0000000000e1 does not exist for the current tenant',
  'tenant A cannot allocate tenant B''s event: it does not exist for A');
select apportion_test.as_admin() \g /dev/null

-- Tenant B ----------------------------------------------------------------------
select apportion_test.as_role('apportion_worker', 'bbbbbbbb-0000-4000-8000-00000000000b') \g /dev/null
select results_eq(
  $$select channel, allocated_revenue_cents, touchpoint_count from apportion.allocate_event('bbbbbbbb-0000-4000-8000-0000000000e1', 'iso-linear')$$,
  $$values ('display'::text, 500::bigint, 1), ('referral', 500, 1)$$,
  'tenant B: the same customer id gives B''s two touches, none of A''s');
select is((select count(*) from apportion.attribution_allocations), 2::bigint,
  'tenant B sees only its own 2 allocation rows');
select is((select count(*) from apportion.attribution_allocations where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'), 0::bigint,
  'tenant B cannot see tenant A''s rows');
select apportion_test.as_admin() \g /dev/null

-- No tenant set -------------------------------------------------------------------
select apportion_test.as_role('apportion_worker') \g /dev/null
select throws_ok($$select * from apportion.recompute_window('2025-06-01', '2025-07-01', 'iso-linear')$$,
  '42501', 'no tenant set: run select set_config(''app.tenant_id'', ''<tenant uuid>'', true) in this transaction first',
  'recompute_window without a tenant is 42501');
select throws_ok($$select * from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 'iso-linear')$$,
  '42501', 'no tenant set: run select set_config(''app.tenant_id'', ''<tenant uuid>'', true) in this transaction first',
  'allocate_event without a tenant is 42501');
select is((select count(*) from apportion.attribution_allocations), 0::bigint,
  'without a tenant no allocation is visible');
select apportion_test.as_admin() \g /dev/null

select * from finish();
rollback;
