-- Money invariants (docs/attribution.md) as properties over 10,000 generated events
-- per model kind (fixed seed): parts sum to the revenue exactly; every part is
-- >= 0 and within 1 cent of its exact share, computed here independently of
-- the engine (exact numeric; time_decay with power(), not the engine's
-- factor table); exactly the channels with positive weight get a
-- row; allocate_event agrees with recompute_window (on a sample: every 40th
-- event, 250 per kind, under twin model versions so it computes from
-- scratch); a rerun changes nothing.
begin;
\ir lib/fixtures.sql
select plan(19);

\o /dev/null
select apportion_test.make_tenant('properties', '00000000-0000-4000-8000-0000000000d1');
select apportion.register_model(v || suffix, kind, params::jsonb)
  from (values
    ('prop-last', 'last_touch', '{}'),
    ('prop-first', 'first_touch', '{"lookback": "20 days"}'),
    ('prop-lnd', 'last_non_direct', '{}'),
    ('prop-linear', 'linear', '{"fallback_channel": "referral"}'),
    ('prop-decay', 'time_decay', '{"half_life": "3 days 4 hours"}'),
    ('prop-pos', 'position_based', '{"first": 0.3, "last": 0.5}'),
    ('prop-fixed', 'fixed_split', '{"channels": ["email", "display", "referral", "paid_social", "direct"], "weights": [0.3, 0.3, 0.2, 0.1, 0.1]}')
  ) m (v, kind, params), (values (''), ('-twin')) s (suffix);

select setseed(0.4242);

-- 10,000 events, one customer each, revenues: 0, 1, small primes, large, random.
select apportion_test.make_event('00000000-0000-4000-8000-0000000000d1', 'prop-' || i,
       '2025-07-01'::timestamptz + random() * interval '10 days',
       case when r < 0.05 then 0
            when r < 0.10 then 1
            when r < 0.30 then (array[2, 3, 5, 7, 11, 13, 97, 101, 9973])[1 + floor(random() * 9)::int]
            when r < 0.40 then (array[1000000000000, 999999999989])[1 + floor(random() * 2)::int]
            else floor(random() * 10000000)::bigint end,
       'USD')
  from (select i, random() as r from generate_series(1, 10000) i) g;

-- 0..12 touches per customer, some outside the 30-day lookback or after the
-- event; a fifth of customers touch on whole days (timestamp ties), a tenth
-- only on direct.
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000d1', e.customer_id,
       case when c.only_direct then 'direct'
            else (array['direct', 'email', 'google_search', 'organic_search', 'paid_social', 'referral', 'display'])[1 + floor(random() * 7)::int] end,
       case when c.whole_days then e.occurred_at - floor(random() * 4) * interval '1 day'
            else e.occurred_at - interval '33 days' + random() * interval '35 days' end)
  from apportion.attribution_events e
 cross join lateral (select random() < 0.2 as whole_days, random() < 0.1 as only_direct, floor(random() * 13)::int as touches
                      where e.id is not null) c
 cross join lateral generate_series(1, c.touches) k
 where e.tenant_id = '00000000-0000-4000-8000-0000000000d1';
analyze apportion.attribution_events;
analyze apportion.touchpoints;

create temp table models (model_version text primary key, kind text, params jsonb) on commit drop;
insert into models select model_version, kind, params from apportion.attribution_models where model_version like 'prop-%' and model_version not like '%-twin';
grant select on models to apportion_worker;
\o

select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000d1') \g /dev/null

select results_eq(
  $$select m.model_version, r.event_count from models m, apportion.recompute_window('2025-07-01', '2025-07-11', m.model_version) r order by 1$$,
  $$select model_version, 10000::bigint from models order by 1$$,
  'recompute_window allocates all 10,000 events under each of the 7 kinds');

select apportion_test.as_admin() \g /dev/null
\o /dev/null
analyze apportion.attribution_allocations;
-- Independent exact weights: a numerator W per (event, model, channel); the
-- exact weight is W / D, D = sum(W) of the event (linear: 1 each, so D = n;
-- position_based: first, last and (1 - first - last) / (n - 2) scaled by
-- n - 2 so they stay exact decimals; time_decay: 2^-(dt/half_life) as
-- exp(-(dt/half_life) ln 2) at 80 places, relative to the newest touch --
-- not the engine's factor tables, which are good to 5.1e-41).
create temp table expected on commit drop as
with touch as (
  select e.id as event_id, m.model_version, m.kind, m.params, t.channel, t.occurred_at,
         row_number() over (partition by e.id, m.model_version order by t.occurred_at, t.id) as pos,
         count(*) over (partition by e.id, m.model_version) as n,
         max(t.occurred_at) over (partition by e.id, m.model_version) as newest,
         ch.is_direct
    from apportion.attribution_events e
   cross join models m
    join apportion.touchpoints t
      on t.tenant_id = e.tenant_id and t.customer_id = e.customer_id
     and t.occurred_at <= e.occurred_at
     and t.occurred_at >= e.occurred_at - coalesce((m.params ->> 'lookback')::interval, interval '30 days')
    join apportion.channels ch on ch.tenant_id = t.tenant_id and ch.code = t.channel
   where m.kind <> 'fixed_split'
),
marked as (
  select touch.*,
         max(pos) filter (where not is_direct) over (partition by event_id, model_version) as last_non_direct
    from touch
),
touch_weight as (
  select event_id, model_version, channel,
         case kind
           when 'last_touch' then (pos = n)::int::numeric
           when 'first_touch' then (pos = 1)::int::numeric
           when 'last_non_direct' then (pos = coalesce(last_non_direct, n))::int::numeric
           when 'linear' then 1::numeric
           when 'position_based' then
             case when n <= 2 then 1
                  when pos = 1 then (params ->> 'first')::numeric * (n - 2)
                  when pos = n then (params ->> 'last')::numeric * (n - 2)
                  else 1 - (params ->> 'first')::numeric - (params ->> 'last')::numeric end
           when 'time_decay' then
             exp(round(-extract(epoch from newest - occurred_at)
                       * ln(2.00000000000000000000000000000000000000000000000000000000000000000000000000000000)
                       / extract(epoch from (params ->> 'half_life')::interval), 80))
         end as w
    from marked
),
weights as (
  select event_id, model_version, channel, sum(w) as w, count(*) as touches from touch_weight group by 1, 2, 3
  union all
  select e.id, m.model_version, c.channel, (m.params -> 'weights' ->> (c.i - 1)::int)::numeric, 0
    from apportion.attribution_events e cross join models m
   cross join lateral jsonb_array_elements_text(m.params -> 'channels') with ordinality c (channel, i)
   where m.kind = 'fixed_split'
  union all
  select e.id, m.model_version, coalesce(m.params ->> 'fallback_channel', 'unattributed'), 1, 0
    from apportion.attribution_events e cross join models m
   where m.kind <> 'fixed_split'
     and not exists (select from apportion.touchpoints t
                      where t.tenant_id = e.tenant_id and t.customer_id = e.customer_id and t.occurred_at <= e.occurred_at
                        and t.occurred_at >= e.occurred_at - coalesce((m.params ->> 'lookback')::interval, interval '30 days'))
)
select w.event_id, w.model_version, w.channel, w.touches::int,
       e.revenue_cents,
       round(e.revenue_cents * w.w, 40) / sum(w.w) over (partition by w.event_id, w.model_version) as exact_share,
       round(round(w.w, 40) / sum(w.w) over (partition by w.event_id, w.model_version), 6) as ratio
  from weights w
  join apportion.attribution_events e on e.id = w.event_id
 where w.w > 0;
create index on expected (event_id, model_version, channel);
analyze expected;
create temp table sample on commit drop as
select id from (select id, row_number() over (order by id) as rn from apportion.attribution_events) e where rn % 40 = 1;
grant select on expected, sample to apportion_worker;
\o
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000d1') \g /dev/null

select is((select count(distinct (event_id, model_version)) from expected), 70000::bigint,
  'the independent computation covers 10,000 events x 7 models');
select is((select count(*) from apportion.attribution_allocations), (select count(*) from expected),
  'as many allocation rows as channels with a positive exact weight');
select is((select count(*) from apportion.attribution_allocations a
            where not exists (select from expected x where x.event_id = a.event_id and x.model_version = a.model_version and x.channel = a.channel)),
  0::bigint, 'no allocation row for a channel without weight');

select is((select count(*) from (
             select from apportion.attribution_allocations a
               join apportion.attribution_events e on e.id = a.event_id
              group by a.event_id, a.model_version, e.revenue_cents
             having sum(a.allocated_revenue_cents) <> e.revenue_cents) x),
  0::bigint, 'every (event, model): the parts sum to the revenue exactly');
select is((select count(*) from (
             select a.event_id, a.model_version from apportion.attribution_allocations a
              group by 1, 2) x),
  70000::bigint, 'every (event, model) has rows');
select is((select count(*) from apportion.attribution_allocations where allocated_revenue_cents < 0), 0::bigint,
  'every part >= 0');
select is((select count(*) from apportion.attribution_allocations a
             join expected x using (event_id, model_version, channel)
            where abs(a.allocated_revenue_cents - x.exact_share) >= 1),
  0::bigint, 'every part within 1 cent of its exact share');
select is((select count(*) from apportion.attribution_allocations a
             join expected x using (event_id, model_version, channel)
            where a.allocated_revenue_cents not in (floor(x.exact_share), floor(x.exact_share) + 1)),
  0::bigint, 'every part is the floor of its exact share or one more (largest remainder)');
select is((select count(*) from apportion.attribution_allocations a
             join expected x using (event_id, model_version, channel)
            where a.allocation_ratio <> x.ratio),
  0::bigint, 'allocation_ratio is the exact weight rounded to 6 places');
select is((select count(*) from apportion.attribution_allocations a
             join expected x using (event_id, model_version, channel)
            where a.touchpoint_count <> x.touches),
  0::bigint, 'touchpoint_count is the number of in-window touches on the channel (0 for fixed_split and fallback)');
-- The spare cents go to the largest remainders: in every (event, model) no
-- channel left at its floor has a larger remainder than one that got a cent.
select is((select count(*) from (
             select max(x.exact_share - floor(x.exact_share)) filter (where a.allocated_revenue_cents = floor(x.exact_share)) as kept,
                    min(x.exact_share - floor(x.exact_share)) filter (where a.allocated_revenue_cents = floor(x.exact_share) + 1) as got
               from apportion.attribution_allocations a
               join expected x using (event_id, model_version, channel)
              group by a.event_id, a.model_version) g
            where kept > got + 1e-9),
  0::bigint, 'spare cents go to the largest remainders');
select cmp_ok((select count(*) from (
                 select from apportion.attribution_allocations group by event_id, model_version having count(*) >= 3) x),
  '>', 10000::bigint, 'the data exercises multi-channel splits');
select cmp_ok((select count(*) from apportion.attribution_allocations where channel in ('unattributed', 'referral') and touchpoint_count = 0 and model_version <> 'prop-fixed'),
  '>', 1000::bigint, 'the data exercises fallbacks');

-- allocate_event agrees with recompute_window, row for row (twin versions).
select is((select count(*) from models x cross join sample e cross join lateral apportion.allocate_event(e.id, x.model_version || '-twin') a),
  (select count(*) from apportion.attribution_allocations where event_id in (select id from sample) and model_version not like '%-twin'),
  'allocate_event on every 40th event (250 x 7 models): as many rows as recompute_window');
select is((select count(*) from (
    (select replace(model_version, '-twin', ''), event_id, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, currency, event_occurred_at
       from apportion.attribution_allocations where model_version like '%-twin'
     except all
     select model_version, event_id, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, currency, event_occurred_at
       from apportion.attribution_allocations where model_version not like '%-twin' and event_id in (select id from sample))
    union all
    (select model_version, event_id, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, currency, event_occurred_at
       from apportion.attribution_allocations where model_version not like '%-twin' and event_id in (select id from sample)
     except all
     select replace(model_version, '-twin', ''), event_id, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count, currency, event_occurred_at
       from apportion.attribution_allocations where model_version like '%-twin')) d),
  0::bigint,
  'allocate_event rows equal recompute_window rows (channel, cents, ratio, count, currency, time)');

-- Rerun: nothing changes. Backdate computed_at first (as superuser) so that a
-- rewrite would show; ctid would change on any update too.
select apportion_test.as_admin() \g /dev/null
\o /dev/null
update apportion.attribution_allocations set computed_at = '2001-01-01T00:00Z';
create temp table before_rerun on commit drop as select a.*, a.ctid::text as row_ctid from apportion.attribution_allocations a;
grant select on before_rerun to apportion_worker;
select set_config('app.correlation_id', '22222222-2222-2222-2222-222222222222', true);
\o
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000d1') \g /dev/null

select results_eq(
  $$select m.model_version, r.event_count, r.allocation_count from models m, apportion.recompute_window('2025-07-01', '2025-07-11', m.model_version) r order by 1$$,
  $$select model_version, count(distinct event_id), count(*) from before_rerun where model_version not like '%-twin' group by 1 order by 1$$,
  'rerun: the same counts');
select is((select count(*) from apportion.attribution_allocations a join before_rerun b
             on (a.tenant_id, a.event_id, a.model_version, a.channel, a.allocated_revenue_cents, a.allocation_ratio,
                 a.touchpoint_count, a.currency, a.event_occurred_at, a.computed_at, a.ctid::text)
              = (b.tenant_id, b.event_id, b.model_version, b.channel, b.allocated_revenue_cents, b.allocation_ratio,
                 b.touchpoint_count, b.currency, b.event_occurred_at, b.computed_at, b.row_ctid)
             and a.correlation_id is not distinct from b.correlation_id),
  (select count(*) from before_rerun),
  'rerun: every row identical, same computed_at and correlation_id, not rewritten (same ctid)');
select is((select count(*) from apportion.attribution_allocations), (select count(*) from before_rerun),
  'rerun: no row added or removed');

select * from finish();
rollback;
