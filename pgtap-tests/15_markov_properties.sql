-- The markov model's properties over generated data (a fixed seed): flow
-- conservation (P(conversion) = conversions / paths), removal effects in
-- [0, 1], training twice on the same data gives the same state, cents
-- conserved and within a cent of the exact share for every event, and a
-- rerun changes nothing.
begin;
\ir lib/fixtures.sql
select plan(9);

\o /dev/null
select setseed(0.20250601);
select apportion_test.make_tenant('markov properties', '00000000-0000-4000-8000-0000000000a9');
select apportion.register_model('mk-prop', 'markov', '{"training_start": "2025-01-15", "training_end": "2025-03-01", "lookback": "14 days"}');
select apportion.register_model('mk-prop-again', 'markov', '{"training_start": "2025-01-15", "training_end": "2025-03-01", "lookback": "14 days"}');
create temporary table gen_touch as
select 'cust-' || (random() * 300)::int as customer_id,
       (array['direct', 'email', 'google_search', 'organic_search', 'paid_social', 'referral', 'display'])[1 + (random() * 6)::int] as channel,
       timestamptz '2025-01-01 00:00Z' + random() * interval '90 days' as occurred_at
  from generate_series(1, 4000);
insert into apportion.touchpoints (tenant_id, customer_id, channel, occurred_at)
select '00000000-0000-4000-8000-0000000000a9', customer_id, channel, occurred_at from gen_touch;
insert into apportion.attribution_events (tenant_id, customer_id, occurred_at, revenue_cents, currency)
select '00000000-0000-4000-8000-0000000000a9', 'cust-' || (random() * 330)::int,
       timestamptz '2025-01-01 00:00Z' + random() * interval '90 days',
       (array[0, 1, 2, 3, 7, 99, 10000, 9223372036854775807, (random() * 1000000)::bigint])[1 + (random() * 8)::int], 'USD'
  from generate_series(1, 900);
\o

select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000a9');
select is((select p_conversion_num * path_count = conversion_count * p_conversion_den and path_count > 300 and conversion_count > 100
             from apportion.train_model('mk-prop')),
          true, 'flow conservation: P(conversion) = conversions / paths');
select is((select count(*) from apportion.markov_removal_effects
            where model_version = 'mk-prop' and (removal_effect_num < 0 or removal_effect_num > removal_effect_den)),
          0::bigint, 'every removal effect lies in [0, 1]');
select is((select count(*) from apportion.markov_removal_effects where model_version = 'mk-prop' and removal_effect_num > 0),
          7::bigint, 'every channel of the data was trained, with an effect');

select apportion.train_model('mk-prop-again') \g /dev/null
select is((select array_agg(row(from_state, to_state, transition_count)::text order by from_state, to_state)
             from apportion.markov_transitions where model_version = 'mk-prop-again'),
          (select array_agg(row(from_state, to_state, transition_count)::text order by from_state, to_state)
             from apportion.markov_transitions where model_version = 'mk-prop'),
          'trained twice on the same data: the same transition counts');
select is((select array_agg(row(channel, removal_effect_num, removal_effect_den, weight)::text order by channel)
             from apportion.markov_removal_effects where model_version = 'mk-prop-again'),
          (select array_agg(row(channel, removal_effect_num, removal_effect_den, weight)::text order by channel)
             from apportion.markov_removal_effects where model_version = 'mk-prop'),
          'and the same removal effects and weights');

select is((select event_count from apportion.recompute_window('2025-01-01', '2025-04-02', 'mk-prop')), 900::bigint,
          'recompute_window allocates every event');
select is((select count(*) from apportion.attribution_events e
            where (select coalesce(sum(a.allocated_revenue_cents::numeric), -1) from apportion.attribution_allocations a
                    where a.event_id = e.id and a.model_version = 'mk-prop') <> e.revenue_cents),
          0::bigint, 'conservation: every event''s parts sum to its revenue, bigint max included');
-- The exact share of a channel with weight W over the event's channels'
-- weights D: revenue * W / D (events whose channels all weigh 0 are linear).
select is((select count(*)
             from apportion.attribution_allocations a
             join apportion.attribution_events e on e.id = a.event_id
             join apportion.markov_removal_effects m on m.model_version = a.model_version and m.channel = a.channel
             cross join lateral (
               select sum(m2.weight) as d from apportion.attribution_allocations a2
                 join apportion.markov_removal_effects m2 on m2.model_version = a2.model_version and m2.channel = a2.channel
                where a2.event_id = a.event_id and a2.model_version = a.model_version) s
            where a.model_version = 'mk-prop' and m.weight > 0
              and abs(a.allocated_revenue_cents * s.d - e.revenue_cents * m.weight) >= s.d),
          0::bigint, 'every part is within one cent of its exact share');

create temporary table first_run as select * from apportion.attribution_allocations where model_version = 'mk-prop';
select apportion.recompute_window('2025-01-01', '2025-04-02', 'mk-prop') \g /dev/null
select results_eq($$select * from apportion.attribution_allocations where model_version = 'mk-prop' order by event_id, channel$$,
                  $$select * from first_run order by event_id, channel$$,
                  'a rerun changes nothing, computed_at included');

select * from finish();
rollback;
