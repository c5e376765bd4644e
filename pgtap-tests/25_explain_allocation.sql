-- explain_allocation: one row per touchpoint of the event's customer (whether
-- it counted, and why not), its exact weight, and per channel the exact
-- share, floor, remainder, tie-break and leftover cent; its money equals the
-- stored allocation. Cases: the markov worked example's A>B event, linear
-- with touches after the event and outside the lookback, fixed_split (the
-- parity vector's event A), an event without touches.
begin;
\ir lib/fixtures.sql
select plan(15);

\o /dev/null
select apportion_test.make_tenant('explain', '00000000-0000-4000-8000-0000000000e9');
select apportion.register_model('ex-markov', 'markov', '{"training_start": "2025-01-01T00:00:00Z", "training_end": "2025-02-01T00:00:00Z"}');
select apportion.register_model('ex-linear', 'linear', '{"lookback": "2 days"}');
select apportion.register_model('ex-fixed', 'fixed_split', '{"channels": ["direct", "email", "google_search"]}');
-- The worked example's paths (A = google_search, B = email, C = display).
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000e9', c, ch, at::timestamptz) from (values
  ('cA1', 'google_search', '2025-01-05 10:00Z'), ('cA1', 'google_search', '2025-01-05 11:00Z'), ('cA1', 'email', '2025-01-06 10:00Z'),
  ('cA2', 'google_search', '2025-01-05 10:00Z'), ('cA2', 'email', '2025-01-06 10:00Z'),
  ('nAB', 'google_search', '2025-01-05 10:00Z'), ('nAB', 'email', '2025-01-06 10:00Z'),
  ('cB', 'email', '2025-01-06 10:00Z'), ('nB', 'email', '2025-01-06 10:00Z'),
  ('cACB', 'google_search', '2025-01-05 10:00Z'), ('cACB', 'display', '2025-01-05 12:00Z'), ('cACB', 'email', '2025-01-06 10:00Z'),
  ('nC1', 'display', '2025-01-06 10:00Z'), ('nC2', 'display', '2025-01-07 10:00Z'),
  ('cBA', 'email', '2025-01-05 10:00Z'), ('cBA', 'google_search', '2025-01-06 10:00Z'),
  -- linear over 2 days: one touch too old, three in the window, one after the event
  ('lin', 'referral', '2025-03-01 09:00Z'), ('lin', 'email', '2025-03-03 11:00Z'), ('lin', 'display', '2025-03-04 09:00Z'),
  ('lin', 'email', '2025-03-05 09:00Z'), ('lin', 'direct', '2025-03-05 11:00Z')
) v (c, ch, at);
select apportion_test.make_event('00000000-0000-4000-8000-0000000000e9', c, at::timestamptz, r, 'USD', ('00000000-0000-4000-8000-0000000009' || n)::uuid)
  from (values ('cA1', '2025-01-08 10:00Z', 20000::bigint, '01'), ('cA2', '2025-01-08 10:00Z', 100, '02'),
               ('cB', '2025-01-08 10:00Z', 100, '03'), ('cACB', '2025-01-08 10:00Z', 100, '04'), ('cBA', '2025-01-08 10:00Z', 100, '05'),
               ('lin', '2025-03-05 10:00Z', 10000, '06'), ('nobody', '2025-03-05 10:00Z', 10000, '07')) v (c, at, r, n);
\o

select apportion_test.as_role('apportion_allocator', '00000000-0000-4000-8000-0000000000e9');
select apportion.train_model('ex-markov') \g /dev/null

-- markov: the A>B event, 20000 cents.
select results_eq(
  $$select channel, touch_position, counted, weight_num, weight_den, weight
      from apportion.explain_allocation('00000000-0000-4000-8000-000000000901', 'ex-markov')$$,
  $$values ('google_search', 1, true, 305::numeric, 1492::numeric, 0.204424),
           ('google_search', 2, true, 305, 1492, 0.204424),
           ('email', 3, true, 441, 746, 0.591153)$$,
  'markov: each touch in order with its exact weight (a channel''s weight shared by its touches)');
select results_eq(
  $$select distinct channel, removal_effect_num, removal_effect_den, channel_weight_num, channel_weight_den, channel_weight
      from apportion.explain_allocation('00000000-0000-4000-8000-000000000901', 'ex-markov') order by channel$$,
  $$values ('email', 21::numeric, 25::numeric, 441::numeric, 746::numeric, 0.591153),
           ('google_search', 61, 105, 305, 746, 0.408847)$$,
  'markov: each channel''s removal effect and its weight 305/746, 441/746');
select results_eq(
  $$select distinct channel, share_num, share_den, floor_cents, remainder_num, remainder_den, leftover_cent, allocated_revenue_cents
      from apportion.explain_allocation('00000000-0000-4000-8000-000000000901', 'ex-markov') order by channel$$,
  $$values ('email', 4410000::numeric, 373::numeric, 11823::bigint, 21::numeric, 373::numeric, false, 11823::bigint),
           ('google_search', 3050000, 373, 8176, 352, 373, true, 8177)$$,
  'markov: shares 20000 x 441/746 and x 305/746, floors, remainders 21/373 and 352/373, the spare cent to the larger');
select is((select count(distinct tie_break_md5) from apportion.explain_allocation('00000000-0000-4000-8000-000000000901', 'ex-markov')
            where tie_break_md5 = md5('00000000-0000-4000-8000-000000000901:' || channel)), 2::bigint,
          'the tie-break hash of each channel is md5(event_id:channel)');

-- linear, lookback 2 days: which touches count and why not.
select results_eq(
  $$select channel, touch_position, counted, reason, weight_num, weight_den
      from apportion.explain_allocation('00000000-0000-4000-8000-000000000906', 'ex-linear')$$,
  $$values ('referral', null::int, false, 'outside_lookback', null::numeric, null::numeric),
           ('email', 1, true, null, 1, 3),
           ('display', 2, true, null, 1, 3),
           ('email', 3, true, null, 1, 3),
           ('direct', null, false, 'after_event', null, null)$$,
  'linear: a touch older than the lookback and one after the event do not count; the rest weigh 1/3 each');
select results_eq(
  $$select distinct channel, channel_weight_num, channel_weight_den, floor_cents, remainder_num, remainder_den, leftover_cent, allocated_revenue_cents, touchpoint_count
      from apportion.explain_allocation('00000000-0000-4000-8000-000000000906', 'ex-linear') where counted order by channel$$,
  $$values ('display', 1::numeric, 3::numeric, 3333::bigint, 1::numeric, 3::numeric, false, 3333::bigint, 1),
           ('email', 2, 3, 6666, 2, 3, true, 6667, 2)$$,
  'linear: 10000 x 1/3 and x 2/3, remainders 1/3 and 2/3: the spare cent to email');

-- fixed_split: the parity vector's rule, no touches read.
select results_eq(
  $$select touch_id is null, channel, counted, reason, channel_weight_num, channel_weight_den, floor_cents, allocated_revenue_cents
      from apportion.explain_allocation('00000000-0000-4000-8000-000000000907', 'ex-fixed')$$,
  $$values (true, 'direct', null::boolean, null::text, 1::numeric, 3::numeric, 3333::bigint,
            case when md5('00000000-0000-4000-8000-000000000907:direct') collate "C" < all (array[md5('00000000-0000-4000-8000-000000000907:email'), md5('00000000-0000-4000-8000-000000000907:google_search')] collate "C") then 3334 else 3333 end::bigint),
           (true, 'email', null, null, 1, 3, 3333,
            case when md5('00000000-0000-4000-8000-000000000907:email') collate "C" < all (array[md5('00000000-0000-4000-8000-000000000907:direct'), md5('00000000-0000-4000-8000-000000000907:google_search')] collate "C") then 3334 else 3333 end),
           (true, 'google_search', null, null, 1, 3, 3333,
            case when md5('00000000-0000-4000-8000-000000000907:google_search') collate "C" < all (array[md5('00000000-0000-4000-8000-000000000907:direct'), md5('00000000-0000-4000-8000-000000000907:email')] collate "C") then 3334 else 3333 end)$$,
  'fixed_split: a row per listed channel without a touch, 1/3 each, the spare cent to the lowest md5');
select results_eq(
  $$select channel, counted, reason from apportion.explain_allocation('00000000-0000-4000-8000-000000000906', 'ex-fixed') where touch_id is not null$$,
  $$values ('referral', false, 'not_used_by_kind'), ('email', false, 'not_used_by_kind'), ('display', false, 'not_used_by_kind'),
           ('email', false, 'not_used_by_kind'), ('direct', false, 'after_event')$$,
  'fixed_split reads no touches: in-window ones are not_used_by_kind');

-- No touches: the fallback channel.
select results_eq(
  $$select touch_id, channel, channel_weight_num, channel_weight_den, allocated_revenue_cents, touchpoint_count
      from apportion.explain_allocation('00000000-0000-4000-8000-000000000907', 'ex-linear')$$,
  $$values (null::uuid, 'unattributed', 1::numeric, 1::numeric, 10000::bigint, 0)$$,
  'an event without touches: one row, the fallback channel, everything');

-- The money equals the stored allocation, for each of these events and models.
select is(
  (select count(*) from (
     select x.event_id, x.model, e.channel, e.allocated_revenue_cents, e.touchpoint_count
       from (values ('00000000-0000-4000-8000-000000000901'::uuid, 'ex-markov'), ('00000000-0000-4000-8000-000000000904', 'ex-markov'),
                    ('00000000-0000-4000-8000-000000000906', 'ex-linear'), ('00000000-0000-4000-8000-000000000907', 'ex-linear'),
                    ('00000000-0000-4000-8000-000000000906', 'ex-fixed'), ('00000000-0000-4000-8000-000000000907', 'ex-fixed')) x (event_id, model)
      cross join lateral (select distinct channel, allocated_revenue_cents, touchpoint_count
                            from apportion.explain_allocation(x.event_id, x.model) where allocated_revenue_cents is not null) e
     except
     select a.event_id, a.model_version, a.channel, a.allocated_revenue_cents, a.touchpoint_count
       from (values ('00000000-0000-4000-8000-000000000901'::uuid, 'ex-markov'), ('00000000-0000-4000-8000-000000000904', 'ex-markov'),
                    ('00000000-0000-4000-8000-000000000906', 'ex-linear'), ('00000000-0000-4000-8000-000000000907', 'ex-linear'),
                    ('00000000-0000-4000-8000-000000000906', 'ex-fixed'), ('00000000-0000-4000-8000-000000000907', 'ex-fixed')) x (event_id, model)
      cross join lateral apportion.allocate_event(x.event_id, x.model) a) d),
  0::bigint, 'explanations give exactly the stored allocation''s channels, cents and touch counts');
select is((select sum(allocated_revenue_cents) from (select distinct channel, allocated_revenue_cents
             from apportion.explain_allocation('00000000-0000-4000-8000-000000000904', 'ex-markov')) d), 100::numeric,
          'and their cents sum to the revenue');

-- Errors and isolation.
select throws_ok($$select * from apportion.explain_allocation('00000000-0000-4000-8000-000000000999', 'ex-linear')$$, '22023',
                 'explain_allocation: event 00000000-0000-4000-8000-000000000999 does not exist for the current tenant', 'an unknown event');
select throws_ok($$select * from apportion.explain_allocation('00000000-0000-4000-8000-000000000901', 'ex-nope')$$, '22023', null, 'an unknown model');
select apportion_test.as_admin();
select apportion_test.make_tenant('explain other', '00000000-0000-4000-8000-0000000000e8') \g /dev/null
select apportion_test.as_role('apportion_allocator', '00000000-0000-4000-8000-0000000000e8');
select throws_ok($$select * from apportion.explain_allocation('00000000-0000-4000-8000-000000000901', 'ex-linear')$$, '22023', null,
                 'another tenant''s event does not exist for this one');
select apportion_test.as_role('apportion_reader', '00000000-0000-4000-8000-0000000000e9');
select throws_ok($$select * from apportion.explain_allocation('00000000-0000-4000-8000-000000000901', 'ex-linear')$$, '42501', null,
                 'the reader, who cannot read touchpoints, cannot explain');

select * from finish();
rollback;
