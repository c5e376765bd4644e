-- time_decay is exact enough for every revenue: for events of 10^12 cents and
-- of bigint max, every channel's share (explain_allocation's exact fraction
-- of the engine's weights) is within 1e-9 cent of the share from the exact
-- 2^(-dt / half_life), computed here independently: exp(-x ln 2) at 80
-- decimal places from the timestamps' epochs, not from the engine's factor
-- tables. The stored allocation is then the largest-remainder split of
-- those exact shares (md5 tie-break), cent for cent. Half-lives: the default
-- 7 days, one with an odd number of microseconds, and 1 hour (touches up to
-- 29 days old: weights down to 2^-696, which round to 0).
begin;
\ir lib/fixtures.sql
select plan(8);

\o /dev/null
select apportion_test.make_tenant('decay precision', '00000000-0000-4000-8000-0000000000d7');
select apportion.register_model('prec-7d', 'time_decay');
select apportion.register_model('prec-odd', 'time_decay', '{"half_life": "3 days 7 hours 11 minutes 13.654321 seconds"}');
select apportion.register_model('prec-1h', 'time_decay', '{"half_life": "1 hour"}');

-- 60 customers, 2..9 touches each within 29 days before their event, at
-- microsecond times; events alternate 10^12 cents and bigint max.
select setseed(0.4242);
create temp table prec_touch as
select 'p' || c as customer,
       (array['email', 'display', 'google_search', 'referral', 'paid_social', 'direct'])[1 + (random() * 5)::int] as channel,
       timestamptz '2025-06-10 12:00:00.777777Z' - interval '1 microsecond' * (1 + floor(random() * 29 * 86400e6)) as at
  from generate_series(1, 60) c
 cross join lateral generate_series(1, 2 + c % 8) k;
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000d7', customer, channel, at) from prec_touch;
create temp table prec_event as
select 'p' || c as customer, ('e0000000-0000-4000-8000-0000000d70' || lpad(c::text, 2, '0'))::uuid as id,
       case when c % 2 = 0 then 1000000000000 else 9223372036854775807 end::bigint as revenue
  from generate_series(1, 60) c;
select apportion_test.make_event('00000000-0000-4000-8000-0000000000d7', customer, '2025-06-10 12:00:00.777777Z', revenue, 'USD', id)
  from prec_event;
grant select on prec_event to apportion_allocator;

-- The exact shares, independently: w = 2^-(dt / half_life) = exp(-(dt / H) ln 2)
-- with dt and H in microseconds, at 80 decimal places (ln 2 first: a numeric
-- quotient keeps only as many places as its operands); share = revenue * w / sum w.
create temp table prec_exact as
with m as (
  select v as model_version,
         extract(epoch from coalesce(a.params ->> 'half_life', '7 days')::interval) * 1000000 as h_us
    from unnest(array['prec-7d', 'prec-odd', 'prec-1h']) v
    join apportion.attribution_models a on a.model_version = v
),
w as (
  select m.model_version, e.id as event_id, e.revenue, t.channel,
         exp(round(-(extract(epoch from max(t.at) over (partition by m.model_version, e.id)) - extract(epoch from t.at)) * 1000000
                   * ln(2.00000000000000000000000000000000000000000000000000000000000000000000000000000000) / m.h_us, 80)) as w
    from m cross join prec_event e join prec_touch t on t.customer = e.customer
)
select model_version, event_id, revenue, channel, revenue * sum(w) / (sum(sum(w)) over (partition by model_version, event_id)) as share
  from w group by model_version, event_id, revenue, channel;
\o

select is((select count(distinct (model_version, event_id)) from prec_exact where revenue = 9223372036854775807), 90::bigint, 'bigint-max events: 3 models x 30 events');
select cmp_ok((select min(share) from prec_exact where share > 0), '<', 1e-20::numeric,
  'the independent weights reach far below a cent (a 1-hour half-life over days)');

select apportion_test.as_role('apportion_allocator', '00000000-0000-4000-8000-0000000000d7');
select apportion.recompute_window('2025-06-10', '2025-06-11', m) from unnest(array['prec-7d', 'prec-odd', 'prec-1h']) m \g /dev/null

select apportion_test.as_admin() \g /dev/null
select set_config('app.tenant_id', '00000000-0000-4000-8000-0000000000d7', true) \g /dev/null
create temp table prec_engine as
select x.model_version, e.id as event_id, x.channel, min(x.share_num * 1.000000000000000000000000000000 / x.share_den) as share -- (30 places)
  from prec_event e
 cross join unnest(array['prec-7d', 'prec-odd', 'prec-1h']) v (model_version)
 cross join lateral (select v.model_version, ex.* from apportion.explain_allocation(e.id, v.model_version) ex) x
 where x.share_num is not null
 group by x.model_version, e.id, x.channel;

-- Every channel's share is within 1e-9 cent of the exact one (a channel the
-- engine gives weight 0 has an exact share far below that).
select is((select count(*) from prec_exact p
             left join prec_engine g using (model_version, event_id, channel)
            where abs(p.share - coalesce(g.share, 0)) >= 1e-9 and p.revenue = 1000000000000),
          0::bigint, '10^12 cents: every share within 1e-9 cent of 2^(-dt/half_life) exactly');
select is((select count(*) from prec_exact p
             left join prec_engine g using (model_version, event_id, channel)
            where abs(p.share - coalesce(g.share, 0)) >= 1e-9 and p.revenue = 9223372036854775807),
          0::bigint, 'bigint max: every share within 1e-9 cent of 2^(-dt/half_life) exactly');
select is((select count(*) from prec_engine g
             left join prec_exact p using (model_version, event_id, channel) where p.share is null),
          0::bigint, 'the engine credits no channel the exact computation does not');

-- The largest-remainder split of the exact shares, tie-break md5.
create temp table prec_split as
with f as (
  select p.*, floor(p.share) as fl, p.share - floor(p.share) as rem,
         p.revenue - sum(floor(p.share)) over (partition by p.model_version, p.event_id) as leftover
    from prec_exact p
),
r as (
  select f.*, row_number() over (partition by f.model_version, f.event_id
                                 order by f.rem desc, md5(f.event_id::text || ':' || f.channel) collate "C") as rk
    from f
)
select model_version, event_id, channel, (fl + (rk <= leftover)::int)::bigint as cents
  from r where fl + (rk <= leftover)::int > 0;

-- (A channel whose weight is tiny but not 0 has a row of 0 cents.)
select is((select count(*) from prec_split), (select count(*) from apportion.attribution_allocations a
                                               where a.model_version in ('prec-7d', 'prec-odd', 'prec-1h')
                                                 and a.allocated_revenue_cents > 0),
  'as many stored rows with money as channels the exact split gives money');
select is((select count(*) from prec_split s
             left join apportion.attribution_allocations a
               on a.event_id = s.event_id and a.model_version = s.model_version and a.channel = s.channel
            where a.allocated_revenue_cents is distinct from s.cents and s.cents > 0),
          0::bigint, 'every stored part is the exact largest-remainder split, cent for cent (10^12 and bigint max)');
select is((select count(*) from (select a.event_id, a.model_version, sum(a.allocated_revenue_cents) as total
                                   from apportion.attribution_allocations a
                                  where a.model_version in ('prec-7d', 'prec-odd', 'prec-1h')
                                  group by 1, 2) s
             join prec_event e on e.id = s.event_id where s.total <> e.revenue),
          0::bigint, 'parts sum to the revenue at bigint max');
select * from finish();
rollback;
