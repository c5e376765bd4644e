-- The API with the tenant as an argument (*_for): rows go to p_tenant and
-- reads see only p_tenant's, whatever tenant the caller had set, and the
-- caller's setting is back when the call returns; a null tenant or rows that
-- are not an array are 22023; a login bound to another tenant gets 42501.
begin;
\ir lib/fixtures.sql
select plan(14);

\o /dev/null
select apportion_test.make_tenant('for a', '00000000-0000-4000-8000-0000000005a1');
select apportion_test.make_tenant('for b', '00000000-0000-4000-8000-0000000005b2');
select apportion.register_model('for-linear', 'linear');
create role t_for_bound login;
grant apportion_ingest, apportion_reader to t_for_bound;
select apportion.bind_login('t_for_bound', '00000000-0000-4000-8000-0000000005b2');
\o

-- As ingest, with tenant B set: ingest for A.
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-0000000005b2');
select lives_ok($$select apportion.activate_model_for('00000000-0000-4000-8000-0000000005a1', 'for-linear')$$, 'activate_model_for A');
select is(apportion.ingest_touchpoints_for('00000000-0000-4000-8000-0000000005a1',
  '[{"customer_id": "c1", "channel": "email", "occurred_at": "2026-01-01T00:00:00Z"},
    {"customer_id": "c1", "channel": "display", "occurred_at": "2026-01-02T00:00:00Z"}]'), 2::bigint, 'two touchpoints for A');
select is(apportion.ingest_events_for('00000000-0000-4000-8000-0000000005a1',
  '[{"id": "00000000-0000-4000-8000-0000000005e1", "customer_id": "c1", "occurred_at": "2026-01-03T00:00:00Z",
     "revenue_cents": 1000, "currency": "USD"}]'), 1::bigint, 'one event for A');
select is(current_setting('app.tenant_id'), '00000000-0000-4000-8000-0000000005b2', 'the caller''s tenant (B) is back after each call');
select apportion_test.as_admin();
select is((select count(*) from apportion.attribution_events where tenant_id = '00000000-0000-4000-8000-0000000005a1'), 1::bigint,
  'the event is A''s');
select is((select count(*) from apportion.touchpoints where tenant_id = '00000000-0000-4000-8000-0000000005b2'), 0::bigint,
  'B got nothing');

select apportion_test.as_role('apportion_allocator', '00000000-0000-4000-8000-0000000005b2');
select results_eq(
  $$select channel, allocated_revenue_cents from apportion.allocate_event_for('00000000-0000-4000-8000-0000000005a1',
      '00000000-0000-4000-8000-0000000005e1', 'for-linear') order by channel$$,
  $$values ('display', 500::bigint), ('email', 500::bigint)$$,
  'allocate_event_for A under B''s setting: A''s event, split');
select throws_ok($$select * from apportion.allocate_event_for('00000000-0000-4000-8000-0000000005b2',
  '00000000-0000-4000-8000-0000000005e1', 'for-linear')$$, '22023', null, 'A''s event asked for under B: not found');
select throws_ok($$select * from apportion.allocations_for(null, 'for-linear')$$, '22023',
  'allocations_for: p_tenant is required', 'a null tenant is 22023 naming the function');
select is((select count(*) from apportion.allocations_for('00000000-0000-4000-8000-0000000005a1', 'for-linear')), 2::bigint,
  'allocations_for A: its two rows');
select is(current_setting('app.tenant_id'), '00000000-0000-4000-8000-0000000005b2', 'and the caller''s tenant is back');

select apportion_test.as_role('apportion_ingest', null);
select throws_ok($$select apportion.ingest_events_for('00000000-0000-4000-8000-0000000005a1', '{"not": "an array"}')$$, '22023',
  'ingest_events_for: p_rows must be a json array of events', 'rows that are not an array: 22023');

-- A login bound to B, asking for A.
select apportion_test.as_admin();
set local session authorization t_for_bound;
select throws_ok($$select * from apportion.daily_channel_revenue_for('00000000-0000-4000-8000-0000000005a1')$$, '42501', null,
  'a login bound to B reading A: 42501');
select throws_ok($$select apportion.ingest_events_for('00000000-0000-4000-8000-0000000005a1',
  '[{"customer_id": "c2", "occurred_at": "2026-01-03T00:00:00Z", "revenue_cents": 5, "currency": "USD"}]')$$, '42501', null,
  'a login bound to B ingesting for A: 42501');
reset session authorization;

select * from finish();
rollback;
