-- The engine under row level security and bad input: tenants never mix,
-- reruns drop stale channels, allocations carry the correlation id, every
-- model-validation and engine error has a clear message and a stable SQLSTATE,
-- model versions are immutable, and the report view shows one tenant.
begin;
select plan(41);

\o /dev/null
select apportion.create_tenant('tenant x', '00000000-0000-4000-8000-0000000000e1');
select apportion.create_tenant('tenant y', '00000000-0000-4000-8000-0000000000e2');
select apportion.register_model('iso-linear', 'linear');
select apportion.register_model('iso-last', 'last_touch');

-- The same customer_id in both tenants, with different touches.
select set_config('app.tenant_id', '00000000-0000-4000-8000-0000000000e1', true);
insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('shared', 'email', '2025-06-09 12:00Z');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency)
values ('00000000-0000-4000-8000-0000000e1001', 'shared', '2025-06-10 12:00Z', 1000, 'USD');
select set_config('app.tenant_id', '00000000-0000-4000-8000-0000000000e2', true);
insert into apportion.touchpoints (customer_id, channel, occurred_at) values
  ('shared', 'display', '2025-06-09 13:00Z'), ('shared', 'referral', '2025-06-09 14:00Z');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency)
values ('00000000-0000-4000-8000-0000000e2001', 'shared', '2025-06-10 12:00Z', 3000, 'EUR');
\o

set local role apportion_worker;

-- Isolation ------------------------------------------------------------------
select set_config('app.tenant_id', '00000000-0000-4000-8000-0000000000e1', true) \g /dev/null
select results_eq(
  $$select channel, allocated_revenue_cents, touchpoint_count from apportion.allocate_event('00000000-0000-4000-8000-0000000e1001', 'iso-linear')$$,
  $$values ('email', 1000::bigint, 1)$$,
  'tenant x: customer "shared" sees only its own touch (email), none of tenant y''s');
select throws_ok(
  $$select * from apportion.allocate_event('00000000-0000-4000-8000-0000000e2001', 'iso-linear')$$,
  '22023', null, 'tenant x cannot allocate tenant y''s event (it does not exist for x)');
select results_eq(
  $$select * from apportion.recompute_window('2025-06-01', '2025-07-01', 'iso-linear')$$,
  $$values (1::bigint, 1::bigint)$$,
  'tenant x: recompute_window sees one event, its own');

select set_config('app.tenant_id', '00000000-0000-4000-8000-0000000000e2', true) \g /dev/null
select results_eq(
  $$select channel, allocated_revenue_cents, touchpoint_count from apportion.allocate_event('00000000-0000-4000-8000-0000000e2001', 'iso-linear') order by channel$$,
  $$values ('display', 1500::bigint, 1), ('referral', 1500::bigint, 1)$$,
  'tenant y: customer "shared" sees only its own touches');
select is((select count(*) from apportion.attribution_allocations), 2::bigint,
  'tenant y sees only its own allocation rows');
select is((select count(*) from apportion.attribution_allocations where tenant_id = '00000000-0000-4000-8000-0000000000e1'), 0::bigint,
  'tenant y cannot see tenant x''s rows');

-- Stale channels disappear on rerun ------------------------------------------
select set_config('app.tenant_id', '00000000-0000-4000-8000-0000000000e1', true) \g /dev/null
select results_eq(
  $$select channel, allocated_revenue_cents from apportion.allocate_event('00000000-0000-4000-8000-0000000e1001', 'iso-last')$$,
  $$values ('email', 1000::bigint)$$, 'before: last_touch gives email everything');
reset role;
\o /dev/null
insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('shared', 'google_search', '2025-06-10 11:00Z');
\o
set local role apportion_worker;
select results_eq(
  $$select * from apportion.recompute_window('2025-06-01', '2025-07-01', 'iso-last')$$,
  $$values (1::bigint, 1::bigint)$$, 'after a new touch arrives: rerun computes 1 row');
select results_eq(
  $$select channel, allocated_revenue_cents from apportion.attribution_allocations where model_version = 'iso-last'$$,
  $$values ('google_search', 1000::bigint)$$, 'the new last touch has it all; the stale email row is gone');
select results_eq(
  $$select channel, allocated_revenue_cents, touchpoint_count from apportion.allocate_event('00000000-0000-4000-8000-0000000e1001', 'iso-linear') order by channel$$,
  $$values ('email', 500::bigint, 1), ('google_search', 500::bigint, 1)$$,
  'linear, rerun by allocate_event: the existing row is updated, the new channel added');

-- Correlation id --------------------------------------------------------------
select set_config('app.correlation_id', '33333333-3333-3333-3333-333333333333', true) \g /dev/null
reset role;
\o /dev/null
insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('shared', 'paid_social', '2025-06-10 11:30Z');
\o
set local role apportion_worker;
select results_eq(
  $$select channel, correlation_id from apportion.allocate_event('00000000-0000-4000-8000-0000000e1001', 'iso-last')$$,
  $$values ('paid_social', '33333333-3333-3333-3333-333333333333'::uuid)$$,
  'a row written while app.correlation_id is set carries it');
select is((select count(*) from apportion.attribution_allocations
            where model_version = 'iso-linear' and correlation_id = '33333333-3333-3333-3333-333333333333'), 0::bigint,
  'rows not rewritten keep the correlation id of the run that wrote them');
select set_config('app.correlation_id', '', true) \g /dev/null

-- Engine errors ----------------------------------------------------------------
select throws_ok($$select * from apportion.recompute_window('2025-06-02', '2025-06-01', 'iso-linear')$$,
  '22023', null, 'recompute_window: end before start is 22023');
select throws_ok($$select * from apportion.recompute_window('2025-06-01', '2025-06-01', 'iso-linear')$$,
  '22023', null, 'recompute_window: end equal to start is 22023');
select throws_ok($$select * from apportion.recompute_window(null, '2025-06-01', 'iso-linear')$$,
  '22023', null, 'recompute_window: a missing bound is 22023');
select throws_ok($$select * from apportion.recompute_window('2025-06-01', '2025-07-01', 'no-such-model')$$,
  '22023', 'model version ''no-such-model'' is not registered', 'recompute_window: unknown model is 22023, named');
select throws_ok($$select * from apportion.allocate_event('00000000-0000-4000-8000-00000000dead', 'iso-linear')$$,
  '22023', null, 'allocate_event: unknown event is 22023');
select throws_ok($$select * from apportion.allocate_event('00000000-0000-4000-8000-0000000e1001', 'no-such-model')$$,
  '22023', null, 'allocate_event: unknown model is 22023');
select set_config('app.tenant_id', '', true) \g /dev/null
select throws_ok($$select * from apportion.recompute_window('2025-06-01', '2025-07-01', 'iso-linear')$$,
  '42501', null, 'recompute_window without a tenant is 42501');
select throws_ok($$select * from apportion.allocate_event('00000000-0000-4000-8000-0000000e1001', 'iso-linear')$$,
  '42501', null, 'allocate_event without a tenant is 42501');
select is((select count(*) from apportion.attribution_allocations), 0::bigint, 'without a tenant no allocation is visible');
select throws_ok($$update apportion.attribution_models set params = '{"lookback": "1 day"}' where model_version = 'iso-linear'$$,
  '42501', null, 'the worker cannot update a model at all');

-- register_model validation (admin) ---------------------------------------------
reset role;
select throws_ok($$select apportion.register_model('bad-1', 'markov')$$, '22023', null, 'unknown kind');
select throws_ok($$select apportion.register_model('bad-2', 'linear', '{"half_life": "7 days"}')$$, '22023', null, 'a parameter of another kind');
select throws_ok($$select apportion.register_model('bad-3', 'position_based', '{"first": -0.1}')$$, '22023', null, 'negative share');
select throws_ok($$select apportion.register_model('bad-4', 'position_based', '{"first": 0.6, "last": 0.5}')$$, '22023', null, 'first + last > 1');
select throws_ok($$select apportion.register_model('bad-5', 'fixed_split', '{"channels": ["email", "display"], "weights": [0.5, 0.4]}')$$, '22023', null, 'weights not summing to 1');
select throws_ok($$select apportion.register_model('bad-6', 'fixed_split', '{"channels": ["email", "display"], "weights": [1.5, -0.5]}')$$, '22023', null, 'negative weight');
select throws_ok($$select apportion.register_model('bad-7', 'time_decay', '{"half_life": "0 days"}')$$, '22023', null, 'zero half_life');
select throws_ok($$select apportion.register_model('bad-8', 'time_decay', '{"half_life": "-1 day"}')$$, '22023', null, 'negative half_life');
select throws_ok($$select apportion.register_model('bad-9', 'linear', '{"lookback": "soon"}')$$, '22023', null, 'lookback that is no interval');
select throws_ok($$select apportion.register_model('bad-10', 'last_touch', '{"fallback_channel": "carrier_pigeon"}')$$, '22023', null, 'unknown fallback channel');
select throws_ok($$select apportion.register_model('bad-11', 'fixed_split', '{"channels": []}')$$, '22023', null, 'empty channel list');
select throws_ok($$select apportion.register_model('bad-12', 'fixed_split', '{"channels": ["email", "display"], "weights": [1]}')$$, '22023', null, 'weights of the wrong length');
select throws_ok($$select apportion.register_model('bad-13', 'fixed_split', '{"channels": ["email", "telepathy"]}')$$, '22023', null, 'unknown channel in the list');
select is((select count(*) from apportion.attribution_models where model_version like 'bad-%'), 0::bigint, 'no invalid model was stored');

select lives_ok($$select apportion.register_model('iso-linear', 'linear')$$, 're-registering the same definition is a no-op');
select throws_ok($$select apportion.register_model('iso-linear', 'linear', '{"lookback": "7 days"}')$$,
  '23505', null, 'a different definition under an existing version is an error');
select throws_ok($$update apportion.attribution_models set kind = 'first_touch' where model_version = 'iso-linear'$$,
  '23514', null, 'even the admin cannot change a model''s kind');
select throws_ok($$update apportion.attribution_models set params = '{"lookback": "1 day"}' where model_version = 'iso-linear'$$,
  '23514', null, 'even the admin cannot change a model''s params');

-- The report view as a reader -------------------------------------------------------
set local role apportion_reader;
select set_config('app.tenant_id', '00000000-0000-4000-8000-0000000000e2', true) \g /dev/null
select results_eq(
  $$select tenant_id, day, model_version, currency, channel, revenue_cents, event_count from apportion.daily_channel_revenue order by channel$$,
  $$values ('00000000-0000-4000-8000-0000000000e2'::uuid, '2025-06-10'::date, 'iso-linear', 'EUR'::char(3), 'display', 1500::bigint, 1::bigint),
           ('00000000-0000-4000-8000-0000000000e2'::uuid, '2025-06-10'::date, 'iso-linear', 'EUR'::char(3), 'referral', 1500::bigint, 1::bigint)$$,
  'daily_channel_revenue as apportion_reader: only tenant y''s revenue');

select * from finish();
rollback;
