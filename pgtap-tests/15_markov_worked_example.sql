-- The markov model's worked example (docs/attribution.md), verbatim: touches
-- and events that give exactly the paths A>B 2 conversions / 1 null,
-- B 1/1, A>C>B 1/0, C 0/2, B>A 1/0, with A = google_search, B = email,
-- C = display. Every transition count, P(conversion) = 5/9, the removal
-- effects 61/105, 21/25, 21/160, the global shares and the A>B event's
-- weights 305/746 and 441/746 with its cents. Trained and read as the
-- runtime roles under the tenant.
begin;
\ir lib/fixtures.sql
select plan(20);

\o /dev/null
select apportion_test.make_tenant('markov worked', '00000000-0000-4000-8000-0000000000d1');
select apportion_test.make_tenant('markov other', '00000000-0000-4000-8000-0000000000d2');
select apportion.register_model('mk-worked', 'markov', '{"training_start": "2025-01-01T00:00:00Z", "training_end": "2025-02-01T00:00:00Z"}');
select apportion.register_model('mk-linear', 'linear');
-- Customers named by their path; c* convert (an event on 2025-01-08), n* do not.
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000d1', c, ch, at::timestamptz) from (values
  -- A>B, converting, twice (cA1 repeats A: repeats collapse)
  ('cA1', 'google_search', '2025-01-05 10:00Z'), ('cA1', 'google_search', '2025-01-05 11:00Z'), ('cA1', 'email', '2025-01-06 10:00Z'),
  ('cA2', 'google_search', '2025-01-05 10:00Z'), ('cA2', 'email', '2025-01-06 10:00Z'),
  -- A>B, not converting
  ('nAB', 'google_search', '2025-01-05 10:00Z'), ('nAB', 'email', '2025-01-06 10:00Z'),
  -- B, converting and not
  ('cB', 'email', '2025-01-06 10:00Z'),
  ('nB', 'email', '2025-01-06 10:00Z'),
  -- A>C>B, converting
  ('cACB', 'google_search', '2025-01-05 10:00Z'), ('cACB', 'display', '2025-01-05 12:00Z'), ('cACB', 'email', '2025-01-06 10:00Z'),
  -- C, not converting, twice
  ('nC1', 'display', '2025-01-06 10:00Z'), ('nC2', 'display', '2025-01-07 10:00Z'),
  -- B>A, converting
  ('cBA', 'email', '2025-01-05 10:00Z'), ('cBA', 'google_search', '2025-01-06 10:00Z')
) v (c, ch, at);
select apportion_test.make_event('00000000-0000-4000-8000-0000000000d1', c, '2025-01-08 10:00Z', r, 'USD',
                                 ('00000000-0000-4000-8000-0000000000' || n)::uuid) from (values
  ('cA1', 20000::bigint, 'e1'), ('cA2', 100, 'e2'), ('cB', 100, 'e3'), ('cACB', 100, 'e4'), ('cBA', 100, 'e5')) v (c, r, n);
-- The other tenant's data must not count: one more A>B conversion there.
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000d2', 'cA1', ch, at::timestamptz) from (values
  ('google_search', '2025-01-05 10:00Z'), ('email', '2025-01-06 10:00Z')) v (ch, at);
select apportion_test.make_event('00000000-0000-4000-8000-0000000000d2', 'cA1', '2025-01-08 10:00Z', 100);
\o

select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000d1');
select is(
  (select array_agg(format('%s>%s %s', from_state, to_state, transition_count) order by from_state, to_state)
     from apportion.markov_transition_counts('00000000-0000-4000-8000-0000000000d1', '30 days', '2025-01-01Z', '2025-02-01Z')),
  array['(start)>display 2', '(start)>email 3', '(start)>google_search 4',
        'display>(null) 2', 'display>email 1',
        'email>(conversion) 4', 'email>(null) 2', 'email>google_search 1',
        'google_search>(conversion) 1', 'google_search>display 1', 'google_search>email 3'],
  'transition counts: start->A 4, start->B 3, start->C 2; A->B 3, A->C 1, A->conv 1; B->A 1, B->conv 4, B->null 2; C->B 1, C->null 2');

select is(
  (select row(t.path_count, t.conversion_count, t.channel_count, t.p_conversion_num, t.p_conversion_den)::text
     from apportion.train_model('mk-worked') t),
  '(9,5,3,5,9)',
  'train_model: 9 paths, 5 conversions, 3 channels, P(conversion) = 5/9');
select is(
  (select array_agg(format('%s>%s %s', from_state, to_state, transition_count) order by from_state, to_state)
     from apportion.markov_transitions where model_version = 'mk-worked'),
  (select array_agg(format('%s>%s %s', from_state, to_state, transition_count) order by from_state, to_state)
     from apportion.markov_transition_counts('00000000-0000-4000-8000-0000000000d1', '30 days', '2025-01-01Z', '2025-02-01Z')),
  'the stored transitions are the counted ones');

select apportion_test.as_role('apportion_reader', '00000000-0000-4000-8000-0000000000d1');
select results_eq(
  $$select channel, removal_effect_num, removal_effect_den, removal_effect, share_num, share_den, share
      from apportion.markov_summary('mk-worked')$$,
  $$values ('display', 21::numeric, 160::numeric, 0.131250, 2205::numeric, 26077::numeric, 0.084557),
           ('email', 21, 25, 0.840000, 14112, 26077, 0.541167),
           ('google_search', 61, 105, 0.580952, 9760, 26077, 0.374276)$$,
  'removal effects A 61/105, B 21/25, C 21/160; global shares A 9760/26077, B 14112/26077, C 2205/26077');
select results_eq(
  $$select distinct p_conversion_num, p_conversion_den, p_conversion from apportion.markov_summary('mk-worked')$$,
  $$values (5::numeric, 9::numeric, 0.555556)$$,
  'markov_summary: P(conversion) = 5/9 on every row');
select results_eq(
  $$select channel, transitions_in, transitions_out from apportion.markov_summary('mk-worked')$$,
  $$values ('display', 3::bigint, 3::bigint), ('email', 7, 7), ('google_search', 5, 5)$$,
  'markov_summary: transition counts in and out per channel');
select is((select sum(removal_effect_num * 0 + 1)::int from apportion.markov_removal_effects where removal_effect_num = trunc(removal_effect_num)
                                                                                                and removal_effect_den = trunc(removal_effect_den)),
          3, 'removal effects are stored as integer fractions');
select is((select array_agg(weight order by channel) from apportion.markov_removal_effects where model_version = 'mk-worked'),
          array[2205, 14112, 9760]::numeric[],
          'weights: removal effects over their least common denominator (16800)');

-- The event on path A>B (cA1, 20000 cents): A 305/746, B 441/746.
select apportion_test.as_role('apportion_allocator', '00000000-0000-4000-8000-0000000000d1');
select results_eq(
  $$select channel, allocated_revenue_cents, allocation_ratio, touchpoint_count
      from apportion.allocate_event('00000000-0000-4000-8000-0000000000e1', 'mk-worked')$$,
  $$values ('email', 11823::bigint, 0.591153, 1), ('google_search', 8177::bigint, 0.408847, 2)$$,
  'the A>B event: 20000 x 305/746 = 8176.94 -> 8177 (A), 20000 x 441/746 = 11823.06 -> 11823 (B)');
select is((select (9760::numeric / (9760 + 14112)) = 305::numeric / 746 and (14112::numeric / (9760 + 14112)) = 441::numeric / 746),
          true, 'the weights 9760/23872 and 14112/23872 are 305/746 and 441/746');

-- The other events through recompute_window: cents conserved, weights from the frozen effects.
select is((select event_count from apportion.recompute_window('2025-01-01Z', '2025-02-01Z', 'mk-worked')), 5::bigint,
          'recompute_window allocates the tenant''s 5 events');
select results_eq(
  $$select e.id, sum(a.allocated_revenue_cents)::bigint from apportion.attribution_events e
      join apportion.attribution_allocations a on a.event_id = e.id and a.model_version = 'mk-worked'
     group by e.id, e.revenue_cents having sum(a.allocated_revenue_cents) <> e.revenue_cents$$,
  $$select null::uuid, null::bigint where false$$,
  'every event''s parts sum to its revenue');
select results_eq(
  $$select channel, allocated_revenue_cents, allocation_ratio from apportion.attribution_allocations
     where event_id = '00000000-0000-4000-8000-0000000000e4' and model_version = 'mk-worked' order by channel$$,
  $$values ('display', 9::bigint, 0.084557), ('email', 54::bigint, 0.541167), ('google_search', 37::bigint, 0.374276)$$,
  'A>C>B, 100 cents, the global shares: 8.46, 54.12, 37.43 -> 8, 54, 37 and the spare cent to display (largest remainder)');

-- Frozen: training again is an error; the state never changes.
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000d1');
select throws_ok($$select * from apportion.train_model('mk-worked')$$, '23505', null,
                 'training a trained (tenant, version) again is an error');
select throws_ok($$update apportion.markov_removal_effects set weight = 1$$, '42501', null,
                 'the worker cannot change trained state');
select apportion_test.as_admin();
select throws_ok($$update apportion.markov_removal_effects set weight = 1$$, '23514',
                 'trained state of model version mk-worked is immutable: register a new version to train again',
                 'nobody changes trained state, not even the owner');
select throws_ok($$delete from apportion.trained_models$$, '23514', null, 'nor deletes it');

-- The other tenant: has not trained, and sees none of this.
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000d2');
select is((select count(*) from apportion.trained_models) + (select count(*) from apportion.markov_transitions)
          + (select count(*) from apportion.markov_removal_effects), 0::bigint,
          'another tenant sees no trained state of this one');
select throws_ok($$select * from apportion.markov_summary('mk-worked')$$, '55000',
                 'model version ''mk-worked'' (kind markov) is not trained for the current tenant',
                 'markov_summary for a tenant that has not trained: 55000');
select is((select row(path_count, conversion_count, p_conversion_num, p_conversion_den)::text from apportion.train_model('mk-worked')),
          '(1,1,1,1)', 'the other tenant trains on its own data only: 1 path, converting');

select * from finish();
rollback;
