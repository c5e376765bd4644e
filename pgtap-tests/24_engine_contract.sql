-- The engine's contract beyond the arithmetic: tenants never mix, stale
-- channels disappear, correlation ids are recorded without churn, every
-- register_model validation error, immutable model versions, clear errors
-- for bad calls, and the daily report as the reader role.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
select plan(38);

\o /dev/null
select apportion.create_tenant('A', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.create_tenant('B', 'bbbbbbbb-0000-4000-8000-00000000000b');
select apportion.register_model('t24-last', 'last_touch', '{}');
select apportion.register_model('t24-linear', 'linear', '{}');

-- The same customer_id string in both tenants, with different channels.
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
insert into apportion.touchpoints (customer_id, channel, occurred_at) values
  ('shared-customer', 'email', '2025-05-01T10:00Z');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
  ('aaaaaaaa-0000-4000-8000-0000000000e1', 'shared-customer', '2025-05-02T10:00Z', 1000, 'USD');
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
insert into apportion.touchpoints (customer_id, channel, occurred_at) values
  ('shared-customer', 'display', '2025-05-01T11:00Z'),
  ('shared-customer', 'referral', '2025-05-01T12:00Z');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
  ('bbbbbbbb-0000-4000-8000-0000000000e1', 'shared-customer', '2025-05-02T10:00Z', 1000, 'USD');
\o

-- Isolation -------------------------------------------------------------
set local role apportion_worker;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
select results_eq(
  $$select channel, allocated_revenue_cents, touchpoint_count from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 't24-linear')$$,
  $$values ('email'::text, 1000::bigint, 1)$$,
  'tenant A: its event sees only A''s touch of the shared customer id');
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
select results_eq(
  $$select channel, allocated_revenue_cents, touchpoint_count from apportion.allocate_event('bbbbbbbb-0000-4000-8000-0000000000e1', 't24-linear')$$,
  $$values ('display'::text, 500::bigint, 1), ('referral', 500, 1)$$,
  'tenant B: the same customer id gives B''s two touches, none of A''s');
select throws_ok($$select * from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 't24-linear')$$,
  '22023', 'allocate_event: event aaaaaaaa-0000-4000-8000-0000000000e1 does not exist for the current tenant',
  'tenant B cannot allocate tenant A''s event: it does not exist for B');
select is((select count(*) from apportion.attribution_allocations), 2::bigint, 'tenant B sees only its own 2 allocation rows');

-- Stale channels and correlation ids -----------------------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
select set_config('app.correlation_id', '11111111-1111-4111-8111-111111111111', true);
select results_eq(
  $$select channel, allocated_revenue_cents, correlation_id from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 't24-last')$$,
  $$values ('email'::text, 1000::bigint, '11111111-1111-4111-8111-111111111111'::uuid)$$,
  'last_touch: email gets everything; the row records app.correlation_id');
create temp table before_rerun on commit drop as
  select * from apportion.attribution_allocations where model_version = 't24-last';
select set_config('app.correlation_id', '22222222-2222-4222-8222-222222222222', true);
select lives_ok($$select * from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 't24-last')$$, 'rerun with another correlation id');
select results_eq(
  $$select * from apportion.attribution_allocations where model_version = 't24-last'$$,
  $$select * from before_rerun$$,
  'the rerun changed nothing: same row, same correlation id and computed_at (no churn)');
reset role;
-- A later touch arrives (ingest), so last_touch moves to another channel.
set local role apportion_ingest;
insert into apportion.touchpoints (customer_id, channel, occurred_at) values
  ('shared-customer', 'paid_social', '2025-05-02T09:00Z');
reset role;
set local role apportion_worker;
select results_eq(
  $$select channel, allocated_revenue_cents, correlation_id from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 't24-last')$$,
  $$values ('paid_social'::text, 1000::bigint, '22222222-2222-4222-8222-222222222222'::uuid)$$,
  'after the new touch: paid_social gets everything, recorded with the new correlation id');
select is((select count(*) from apportion.attribution_allocations where model_version = 't24-last' and channel = 'email'), 0::bigint,
  'the stale email row is gone');
select results_eq(
  $$select event_count, allocation_count from apportion.recompute_window('2025-05-01', '2025-05-03', 't24-linear')$$,
  $$values (1::bigint, 2::bigint)$$,
  'recompute_window over the same event: linear now over email and paid_social');
select is((select string_agg(channel || '=' || allocated_revenue_cents, ',' order by channel) from apportion.attribution_allocations where model_version = 't24-linear'),
  'email=500,paid_social=500', 'linear rows follow the new touch, nothing stale left');

-- Bad calls ------------------------------------------------------------
select throws_ok($$select * from apportion.recompute_window('2025-05-03', '2025-05-01', 't24-linear')$$,
  '22023', null, 'recompute_window with end before start: 22023');
select throws_ok($$select * from apportion.recompute_window('2025-05-01', '2025-05-01', 't24-linear')$$,
  '22023', null, 'recompute_window with end = start: 22023');
select throws_ok($$select * from apportion.recompute_window('2025-05-01', '2025-05-03', 'no-such-model')$$,
  '22023', 'model version ''no-such-model'' is not registered', 'recompute_window with an unknown model: 22023');
select throws_ok($$select * from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000ff', 't24-linear')$$,
  '22023', null, 'allocate_event on an unknown event: 22023');
select throws_ok($$select * from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 'no-such-model')$$,
  '22023', 'model version ''no-such-model'' is not registered', 'allocate_event with an unknown model: 22023');
select set_config('app.tenant_id', '', true);
select throws_ok($$select * from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000000e1', 't24-linear')$$,
  '42501', null, 'allocate_event with no tenant set: 42501');
select throws_ok($$select * from apportion.recompute_window('2025-05-01', '2025-05-03', 't24-linear')$$,
  '42501', null, 'recompute_window with no tenant set: 42501');
reset role;

-- The daily report, as the reader ---------------------------------------
set local role apportion_reader;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
select results_eq(
  $$select day, model_version, channel, revenue_cents from apportion.daily_channel_revenue order by channel$$,
  $$values ('2025-05-02'::date, 't24-linear'::text, 'display'::text, 500::bigint), ('2025-05-02', 't24-linear', 'referral', 500)$$,
  'reader of tenant B: the daily report shows B''s revenue only');
select set_config('app.tenant_id', '', true);
select is((select count(*) from apportion.daily_channel_revenue), 0::bigint, 'reader without a tenant: the report is empty');
reset role;

-- register_model validation: 22023 with the field named -------------------
select throws_ok($$select apportion.register_model('t24-x', 'markov', '{}')$$, '22023', null, 'unknown kind');
select throws_like($$select apportion.register_model('t24-x', 'linear', '{"half_life": "1 day"}')$$, '%half_life is not a parameter of kind linear%', 'a parameter of another kind');
select throws_like($$select apportion.register_model('t24-x', 'position_based', '{"first": -0.1}')$$, '%first must be a number between 0 and 1%', 'negative share');
select throws_like($$select apportion.register_model('t24-x', 'position_based', '{"first": 0.7, "last": 0.4}')$$, '%first + last must not exceed 1%', 'shares over 1');
select throws_like($$select apportion.register_model('t24-x', 'time_decay', '{"half_life": "0 days"}')$$, '%half_life must be positive%', 'zero half-life');
select throws_like($$select apportion.register_model('t24-x', 'time_decay', '{"half_life": "-2 days"}')$$, '%half_life must be positive%', 'negative half-life');
select throws_like($$select apportion.register_model('t24-x', 'linear', '{"lookback": "a fortnight"}')$$, '%lookback must be an interval%', 'lookback that is not an interval');
select throws_like($$select apportion.register_model('t24-x', 'fixed_split', '{"channels": ["email", "tv_ads"]}')$$, '%unknown channel(s) tv_ads%', 'unknown channel');
select throws_like($$select apportion.register_model('t24-x', 'linear', '{"fallback_channel": "nowhere"}')$$, '%unknown channel(s) nowhere%', 'unknown fallback channel');
select throws_like($$select apportion.register_model('t24-x', 'fixed_split', '{"channels": []}')$$, '%fixed_split needs channels%', 'empty channel list');
select throws_like($$select apportion.register_model('t24-x', 'fixed_split', '{"channels": ["email", "email"]}')$$, '%must not repeat a channel%', 'repeated channel');
select throws_like($$select apportion.register_model('t24-x', 'fixed_split', '{"channels": ["email", "direct"], "weights": [1]}')$$, '%one number per channel%', 'weights of the wrong length');
select throws_like($$select apportion.register_model('t24-x', 'fixed_split', '{"channels": ["email", "direct"], "weights": [0.5, 0.4]}')$$, '%weights must sum to exactly 1%', 'weights not summing to 1');
select throws_ok($$select apportion.register_model('bad version!', 'linear', '{}')$$, '22023', null, 'a model version with illegal characters');
select lives_ok($$select apportion.register_model('t24-ok', 'fixed_split', '{"channels": ["email", "direct"], "weights": [0.25, 0.75]}')$$,
  'twin: a valid fixed_split with weights registers');

-- Immutability -----------------------------------------------------------
select lives_ok($$select apportion.register_model('t24-linear', 'linear', '{}')$$, 'registering the same definition again is a no-op');
select throws_like($$select apportion.register_model('t24-linear', 'linear', '{"lookback": "7 days"}')$$,
  '%already registered%immutable%', 'a different definition under a used version is an error');
select throws_ok($$update apportion.attribution_models set params = '{"lookback": "7 days"}' where model_version = 't24-linear'$$,
  '23514', null, 'UPDATE of a model version''s params is refused');

select * from finish();
rollback;
