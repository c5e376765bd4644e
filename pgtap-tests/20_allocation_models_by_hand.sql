-- Every model kind on small cases computed by hand (docs/attribution.md):
-- which touches count (window, order, ties), the kinds' weights, the money
-- rule (floor + largest remainder, md5 tie-break), fallbacks and extremes.
-- Each result is written 'channel:cents:ratio:touchpoint_count' per row,
-- ordered by channel. Where two channels tie for a spare cent the expected
-- value names the winner by the tie-break rule, md5(event_id || ':' || channel).
begin;
\ir lib/fixtures.sql
select plan(56);

\o /dev/null
select apportion_test.make_tenant('by hand', '00000000-0000-4000-8000-0000000000c1');
select apportion.register_model('hand-last', 'last_touch');
select apportion.register_model('hand-first', 'first_touch');
select apportion.register_model('hand-lnd', 'last_non_direct');
select apportion.register_model('hand-linear', 'linear');
select apportion.register_model('hand-linear-2d', 'linear', '{"lookback": "2 days"}');
select apportion.register_model('hand-last-fallback', 'last_touch', '{"fallback_channel": "referral"}');
select apportion.register_model('hand-decay', 'time_decay', '{"half_life": "1 day"}');
select apportion.register_model('hand-decay-7d', 'time_decay');
select apportion.register_model('hand-decay-1s', 'time_decay', '{"half_life": "1 second"}');
select apportion.register_model('hand-pos', 'position_based');
select apportion.register_model('hand-pos-j', 'position_based', '{"first": 0.2, "last": 0.6}');
select apportion.register_model('hand-pos-ends', 'position_based', '{"first": 0.5, "last": 0.5}');
select apportion.register_model('hand-fixed', 'fixed_split', '{"channels": ["email", "display"]}');
select apportion.register_model('hand-fixed-w', 'fixed_split', '{"channels": ["email", "display"], "weights": [0.75, 0.25]}');

-- T = 2025-06-10 12:00 UTC is every event's time.
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000c1', c, ch, at::timestamptz) from (values
  -- one touch
  ('one',   'email',         '2025-06-09 12:00Z'),
  -- two touches
  ('two',   'email',         '2025-06-07 12:00Z'),
  ('two',   'google_search', '2025-06-09 12:00Z'),
  -- all direct / direct last
  ('all-direct', 'direct', '2025-06-08 12:00Z'),
  ('all-direct', 'direct', '2025-06-09 12:00Z'),
  ('direct-last', 'email',  '2025-06-07 12:00Z'),
  ('direct-last', 'direct', '2025-06-09 12:00Z'),
  -- a touch after the event, and one exactly at the event
  ('after', 'email',   '2025-06-09 12:00Z'),
  ('after', 'display', '2025-06-10 12:00:00.000001Z'),
  ('at',    'email',   '2025-06-08 12:00Z'),
  ('at',    'display', '2025-06-10 12:00Z'),
  -- outside the 30-day lookback, and exactly on its edge
  ('old',  'display', '2025-05-11 11:59:59.999999Z'),
  ('old',  'email',   '2025-06-01 12:00Z'),
  ('edge', 'display', '2025-05-11 12:00Z'),
  ('edge', 'email',   '2025-06-09 12:00Z'),
  -- only a touch after the event
  ('only-after', 'email', '2025-06-11 12:00Z'),
  -- three touches
  ('three', 'email',         '2025-06-07 12:00Z'),
  ('three', 'display',       '2025-06-08 12:00Z'),
  ('three', 'google_search', '2025-06-09 12:00Z'),
  -- three touches, first and last on the same channel
  ('bookends', 'email',   '2025-06-07 12:00Z'),
  ('bookends', 'display', '2025-06-08 12:00Z'),
  ('bookends', 'email',   '2025-06-09 12:00Z'),
  -- five touches
  ('five', 'email',         '2025-06-05 12:00Z'),
  ('five', 'display',       '2025-06-06 12:00Z'),
  ('five', 'google_search', '2025-06-07 12:00Z'),
  ('five', 'referral',      '2025-06-08 12:00Z'),
  ('five', 'paid_social',   '2025-06-09 12:00Z'),
  -- time_decay: exactly 2, 1 and 0 half-lives (1 day) before the newest
  ('decay', 'email',         '2025-06-08 10:00Z'),
  ('decay', 'display',       '2025-06-09 10:00Z'),
  ('decay', 'google_search', '2025-06-10 10:00Z'),
  -- time_decay: half a half-life apart
  ('decay-half', 'email',         '2025-06-09 00:00Z'),
  ('decay-half', 'google_search', '2025-06-09 12:00Z'),
  -- time_decay with a 1 s half-life: 179 half-lives is weight 0
  ('decay-far', 'email',   '2025-06-10 11:57:00Z'),
  ('decay-far', 'display', '2025-06-10 11:59:59Z')) t (c, ch, at);
-- Equal timestamps: touch order is (occurred_at, id); inserted in reverse.
-- make_touch takes no id, so a local helper writes these two with theirs.
create function pg_temp.make_touch_with_id(p_tenant uuid, p_id uuid, p_customer text, p_channel text, p_at timestamptz)
returns uuid
language sql as $$
  insert into apportion.touchpoints (tenant_id, id, customer_id, channel, occurred_at)
  values (p_tenant, p_id, p_customer, p_channel, p_at)
  returning id
$$;
select pg_temp.make_touch_with_id('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-000000000002', 'tie', 'email', '2025-06-09 12:00Z');
select pg_temp.make_touch_with_id('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-000000000001', 'tie', 'display', '2025-06-09 12:00Z');
-- 50 touches, one hour apart, channels cycling email, display, google_search,
-- referral, paid_social: touch 1 is email, touch 50 paid_social, 10 each.
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000c1', 'fifty',
       (array['email', 'display', 'google_search', 'referral', 'paid_social'])[1 + (i - 1) % 5],
       '2025-06-10 12:00Z'::timestamptz - (51 - i) * interval '1 hour')
  from generate_series(1, 50) i;

select apportion_test.make_event('00000000-0000-4000-8000-0000000000c1', c, at::timestamptz, cents, cur, id::uuid) from (values
  ('e0000000-0000-4000-8000-000000000001', 'one',         '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000002', 'two',         '2025-06-10 12:00Z', 10001, 'USD'),
  ('e0000000-0000-4000-8000-000000000003', 'tie',         '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000004', 'all-direct',  '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000005', 'direct-last', '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000006', 'after',       '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000007', 'at',          '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000008', 'old',         '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000009', 'edge',        '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-00000000000a', 'nobody',      '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-00000000000b', 'only-after',  '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-00000000000c', 'two',         '2025-06-10 12:00Z', 0, 'USD'),
  ('e0000000-0000-4000-8000-00000000000d', 'two',         '2025-06-10 12:00Z', 1, 'USD'),
  ('e0000000-0000-4000-8000-00000000000e', 'three',       '2025-06-10 12:00Z', 1000000000000, 'USD'),
  ('e0000000-0000-4000-8000-00000000000f', 'three',       '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000010', 'bookends',    '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000011', 'five',        '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000012', 'fifty',       '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000013', 'decay',       '2025-06-10 12:00Z', 7000, 'USD'),
  ('e0000000-0000-4000-8000-000000000014', 'decay-half',  '2025-06-10 12:00Z', 1000000000000, 'USD'),
  ('e0000000-0000-4000-8000-000000000015', 'decay-far',   '2025-06-10 12:00Z', 10000, 'USD'),
  ('e0000000-0000-4000-8000-000000000016', 'two',         '2025-06-10 12:00Z', 101, 'USD')) e (id, c, at, cents, cur);

-- One event's allocation under one model, as 'channel:cents:ratio:count, ...'.
create function pg_temp.alloc(p_event uuid, p_model text) returns text
language sql as $$
  select string_agg(format('%s:%s:%s:%s', channel, allocated_revenue_cents, allocation_ratio, touchpoint_count), ', ' order by channel)
    from apportion.allocate_event(p_event, p_model)
$$;
-- Of two channels tied for a spare cent, the one the tie-break rule picks.
create function pg_temp.tie_winner(p_event uuid, variadic p_channels text[]) returns text
language sql as $$
  select c from unnest(p_channels) c order by md5(p_event::text || ':' || c) collate "C" limit 1
$$;
\o

select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000c1') \g /dev/null

-- One touch: every touch-based kind gives it everything.
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000001', m), 'email:10000:1.000000:1', 'one touch: ' || m || ' gives it all')
  from unnest(array['hand-last', 'hand-first', 'hand-lnd', 'hand-linear', 'hand-decay', 'hand-pos']) m;

-- Two touches: email (T-3d), google_search (T-1d), 10001 cents.
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000002', 'hand-last'), 'google_search:10001:1.000000:1',
  'two touches, last_touch: the later one; the earlier channel (weight 0) gets no row');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000002', 'hand-first'), 'email:10001:1.000000:1',
  'two touches, first_touch: the earlier one');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000002', 'hand-linear'),
  case pg_temp.tie_winner('e0000000-0000-4000-8000-000000000002', 'email', 'google_search')
    when 'email' then 'email:5001:0.500000:1, google_search:5000:0.500000:1'
    else 'email:5000:0.500000:1, google_search:5001:0.500000:1' end,
  'two touches, linear: 5000.5 each, the spare cent by md5 tie-break');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000002', 'hand-pos'),
  pg_temp.alloc('e0000000-0000-4000-8000-000000000002', 'hand-linear'),
  'two touches, position_based: 1/2 each, like linear');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000002', 'hand-pos-j'),
  pg_temp.alloc('e0000000-0000-4000-8000-000000000002', 'hand-linear'),
  'two touches, position_based J-shaped: still 1/2 each');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000002', 'hand-decay'),
  'email:2000:0.200000:1, google_search:8001:0.800000:1',
  'two touches 2 half-lives apart, time_decay: weights 1/4 and 1 -> 2000.2 and 8000.8 -> 2000 and 8001');

-- Equal timestamps: order by id, whatever the insert order.
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000003', 'hand-last'), 'email:10000:1.000000:1',
  'equal timestamps: last_touch takes the larger id');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000003', 'hand-first'), 'display:10000:1.000000:1',
  'equal timestamps: first_touch takes the smaller id');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000003', 'hand-decay'), 'display:5000:0.500000:1, email:5000:0.500000:1',
  'equal timestamps: time_decay weighs them equally');

-- last_non_direct
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000004', 'hand-lnd'), 'direct:10000:1.000000:2',
  'all touches direct: last_non_direct falls back to the last touch (2 touches on direct)');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000005', 'hand-lnd'), 'email:10000:1.000000:1',
  'direct last: last_non_direct skips it for the last non-direct touch');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000005', 'hand-last'), 'direct:10000:1.000000:1',
  'direct last: last_touch takes it');

-- The window
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000006', 'hand-linear'), 'email:10000:1.000000:1',
  'a touch 1 microsecond after the event is ignored');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000007', 'hand-last'), 'display:10000:1.000000:1',
  'a touch exactly at the event counts');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000008', 'hand-linear'), 'email:10000:1.000000:1',
  'a touch 1 microsecond before the 30-day lookback is ignored');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000009', 'hand-linear'), 'display:5000:0.500000:1, email:5000:0.500000:1',
  'a touch exactly 30 days before the event counts');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000008', 'hand-linear-2d'), 'unattributed:10000:1.000000:0',
  'lookback "2 days": a touch 9 days back is ignored (nothing left: fallback)');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000002', 'hand-linear-2d'), 'google_search:10001:1.000000:1',
  'lookback "2 days": keeps the touch 1 day back, drops the one 3 days back');

-- No touches: fallback
select is(pg_temp.alloc('e0000000-0000-4000-8000-00000000000a', m), 'unattributed:10000:1.000000:0',
  'no touches at all: ' || m || ' gives everything to unattributed')
  from unnest(array['hand-last', 'hand-first', 'hand-lnd', 'hand-linear', 'hand-decay', 'hand-pos']) m;
select is(pg_temp.alloc('e0000000-0000-4000-8000-00000000000b', 'hand-last'), 'unattributed:10000:1.000000:0',
  'only a touch after the event: fallback');
select is(pg_temp.alloc('e0000000-0000-4000-8000-00000000000a', 'hand-last-fallback'), 'referral:10000:1.000000:0',
  'custom fallback_channel referral');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000001', 'hand-last-fallback'), 'email:10000:1.000000:1',
  'custom fallback_channel is not used when a touch counts');

-- Zero, one cent, 10^12 cents
select is(pg_temp.alloc('e0000000-0000-4000-8000-00000000000c', 'hand-linear'), 'email:0:0.500000:1, google_search:0:0.500000:1',
  'zero revenue: rows of 0 cents, ratios still 1/2');
select is(pg_temp.alloc('e0000000-0000-4000-8000-00000000000d', 'hand-linear'),
  case pg_temp.tie_winner('e0000000-0000-4000-8000-00000000000d', 'email', 'google_search')
    when 'email' then 'email:1:0.500000:1, google_search:0:0.500000:1'
    else 'email:0:0.500000:1, google_search:1:0.500000:1' end,
  'one cent over two channels: the md5 tie-break picks who gets it');
select is(pg_temp.alloc('e0000000-0000-4000-8000-00000000000e', 'hand-linear'),
  format('display:%s:0.333333:1, email:%s:0.333333:1, google_search:%s:0.333333:1',
         333333333333 + (pg_temp.tie_winner('e0000000-0000-4000-8000-00000000000e', 'display', 'email', 'google_search') = 'display')::int,
         333333333333 + (pg_temp.tie_winner('e0000000-0000-4000-8000-00000000000e', 'display', 'email', 'google_search') = 'email')::int,
         333333333333 + (pg_temp.tie_winner('e0000000-0000-4000-8000-00000000000e', 'display', 'email', 'google_search') = 'google_search')::int),
  '10^12 cents over three: 333333333333 each and the spare cent by md5');

-- position_based
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000001', 'hand-pos-j'), 'email:10000:1.000000:1',
  'position_based n = 1: everything');
select is(pg_temp.alloc('e0000000-0000-4000-8000-00000000000f', 'hand-pos'),
  'display:2000:0.200000:1, email:4000:0.400000:1, google_search:4000:0.400000:1',
  'position_based n = 3, defaults: 40/20/40');
select is(pg_temp.alloc('e0000000-0000-4000-8000-00000000000f', 'hand-pos-j'),
  'display:2000:0.200000:1, email:2000:0.200000:1, google_search:6000:0.600000:1',
  'position_based n = 3, J-shaped first 0.2 last 0.6: 20/20/60');
select is(pg_temp.alloc('e0000000-0000-4000-8000-00000000000f', 'hand-pos-ends'),
  'email:5000:0.500000:1, google_search:5000:0.500000:1',
  'position_based n = 3, first 0.5 last 0.5: the middle touch weighs 0 and gets no row');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000010', 'hand-pos'),
  'display:2000:0.200000:1, email:8000:0.800000:2',
  'position_based: first and last on one channel add up (0.8 over 2 touches)');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000011', 'hand-pos'),
  (select string_agg(format('%s:%s:%s:1', c, cents, ratio), ', ' order by c)
     from (select c,
                  case when c in ('email', 'paid_social') then 4000
                       else 666 + (rank_among_middle <= 2)::int end as cents,
                  case when c in ('email', 'paid_social') then '0.400000' else '0.066667' end as ratio
             from (select c, row_number() over (order by case when c in ('display', 'google_search', 'referral')
                                                              then md5('e0000000-0000-4000-8000-000000000011:' || c) collate "C" end) as rank_among_middle
                     from unnest(array['email', 'display', 'google_search', 'referral', 'paid_social']) c) x) y),
  'position_based n = 5: 4000 to first and last, 666.67 x 3 in the middle, 2 spare cents by md5');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000011', 'hand-pos-j'),
  (select string_agg(format('%s:%s:%s:1', c, cents, ratio), ', ' order by c)
     from (select c,
                  case c when 'email' then 2000 when 'paid_social' then 6000
                       else 666 + (rank_among_middle <= 2)::int end as cents,
                  case c when 'email' then '0.200000' when 'paid_social' then '0.600000' else '0.066667' end as ratio
             from (select c, row_number() over (order by case when c in ('display', 'google_search', 'referral')
                                                              then md5('e0000000-0000-4000-8000-000000000011:' || c) collate "C" end) as rank_among_middle
                     from unnest(array['email', 'display', 'google_search', 'referral', 'paid_social']) c) x) y),
  'position_based n = 5, J-shaped: 2000 first, 6000 last, 666.67 x 3 in the middle');

-- 50 touches
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000012', 'hand-linear'),
  'display:2000:0.200000:10, email:2000:0.200000:10, google_search:2000:0.200000:10, paid_social:2000:0.200000:10, referral:2000:0.200000:10',
  '50 touches, linear: 10 per channel, 2000 each');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000012', 'hand-last'), 'paid_social:10000:1.000000:10',
  '50 touches, last_touch: the 50th (paid_social, 10 touches on it)');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000012', 'hand-first'), 'email:10000:1.000000:10',
  '50 touches, first_touch: the 1st (email)');
-- position_based: email = 0.4 + 9 * 0.2/48 = 0.4375, paid_social the same,
-- display, google_search, referral 10 * 0.2/48 = 0.041667 -> 416.67, 2 spare cents
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000012', 'hand-pos'),
  (select string_agg(format('%s:%s:%s:10', c, cents, ratio), ', ' order by c)
     from (select c,
                  case when c in ('email', 'paid_social') then 4375 else 416 + (r <= 2)::int end as cents,
                  case when c in ('email', 'paid_social') then '0.437500' else '0.041667' end as ratio
             from (select c, row_number() over (order by case when c in ('display', 'google_search', 'referral')
                                                              then md5('e0000000-0000-4000-8000-000000000012:' || c) collate "C" end) as r
                     from unnest(array['email', 'display', 'google_search', 'referral', 'paid_social']) c) x) y),
  '50 touches, position_based: 4375 + 4375 + 416.67 x 3 with 2 spare cents by md5');
select is((select sum(allocated_revenue_cents) from apportion.allocate_event('e0000000-0000-4000-8000-000000000012', 'hand-decay')),
  10000::numeric, '50 touches, time_decay: parts sum to the revenue');

-- time_decay by hand
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000013', 'hand-decay'),
  'display:2000:0.285714:1, email:1000:0.142857:1, google_search:4000:0.571429:1',
  'time_decay, half-life 1 day, touches 2, 1, 0 days before the newest: 1/4, 1/2, 1 -> 1000, 2000, 4000 of 7000');
-- 2^(-2/7) = 0.820335356007637931..., 2^(-1/7) = 0.905723664263906671...:
-- 2106.46, 2325.73, 2567.81 of 7000 -> floors 6998, spare cents to .81 and .73
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000013', 'hand-decay-7d'),
  'display:2326:0.332247:1, email:2106:0.300924:1, google_search:2568:0.366830:1',
  'time_decay, default half-life 7 days: hand values');
-- 2^-0.5 = 0.707106781186547524...; share of email = w / (1 + w) of 10^12
-- = 414213562373.095..., google_search 585786437626.904... -> spare cent to it.
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000014', 'hand-decay'),
  'email:414213562373:0.414214:1, google_search:585786437627:0.585786:1',
  'time_decay, half a half-life apart: 10^12 cents split exactly');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000015', 'hand-decay-1s'), 'display:10000:1.000000:1',
  'time_decay, a touch 179 half-lives older than the newest weighs 0 (from 134 on): no row');

-- fixed_split ignores touches
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000016', 'hand-fixed-w'), 'display:25:0.250000:0, email:76:0.750000:0',
  'fixed_split 0.75/0.25 of 101: 75.75 and 25.25 -> 76 and 25, touchpoint_count 0');
select is(pg_temp.alloc('e0000000-0000-4000-8000-000000000016', 'hand-fixed'),
  case pg_temp.tie_winner('e0000000-0000-4000-8000-000000000016', 'display', 'email')
    when 'display' then 'display:51:0.500000:0, email:50:0.500000:0'
    else 'display:50:0.500000:0, email:51:0.500000:0' end,
  'fixed_split equal weights, 101 cents: 50.5 each, spare cent by md5');
select is(pg_temp.alloc('e0000000-0000-4000-8000-00000000000a', 'hand-fixed-w'), 'display:2500:0.250000:0, email:7500:0.750000:0',
  'fixed_split does not fall back when there are no touches');

-- Every allocate_event above was stored; each event's rows sum to its revenue.
select is((select count(*) from (
             select from apportion.attribution_allocations a
               join apportion.attribution_events e on e.id = a.event_id
              group by a.event_id, a.model_version, e.revenue_cents
             having sum(a.allocated_revenue_cents) <> e.revenue_cents) x), 0::bigint,
  'every stored (event, model) sums to its revenue');

select * from finish();
rollback;
