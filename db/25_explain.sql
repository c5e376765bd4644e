-- Explanations: why an event's revenue was split as it was, step by step,
-- in exact fractions (docs/attribution.md, "Explanations").

-- a / b in lowest terms as two integers (b > 0), for a, b exact decimals.
create or replace function apportion.exact_fraction(p_a numeric, p_b numeric, out num numeric, out den numeric)
language sql immutable parallel safe
as $$
  select div(x.a, g.g) * sign(x.b), div(abs(x.b), g.g)
    from (select trunc(p_a * power(10::numeric, s.s)) as a, trunc(p_b * power(10::numeric, s.s)) as b
            from (select greatest(scale(p_a), scale(p_b), 0) as s) s) x
   cross join lateral (select nullif(gcd(x.a, x.b), 0) as g) g
$$;
grant execute on function apportion.exact_fraction(numeric, numeric) to apportion_worker, apportion_allocator;
comment on function apportion.exact_fraction(numeric, numeric) is
  'p_a / p_b of two exact decimals in lowest terms, as integers num and den (den > 0).';

-- The current tenant's event under one model version, explained: one row
-- per touchpoint of the event's customer (touch order), whether it counted
-- and why not (after_event, outside_lookback; for fixed_split, which reads
-- no touches, not_used_by_kind), its position among the counted touches and
-- its exact weight; then, on each counted touch's row and on rows without a
-- touch for channels that get money without one (fixed_split's list, the
-- fallback channel of an event without touches), its channel's weight, the
-- exact share of the revenue, the floor, the remainder, the md5 tie-break
-- and whether it received a leftover cent. Weights and shares are exact
-- fractions (num / den in lowest terms) and rounded half up to 6 places.
-- For markov the channel's removal effect is shown too.
-- It computes what allocation_rows computes, step by step, for one event:
-- the distinct (channel, allocated_revenue_cents) of its rows where
-- allocated_revenue_cents is not null are exactly the stored allocation
-- (a test holds it to that for every kind). Channels whose weight is 0 get
-- no money and no allocation row: their allocated_revenue_cents is null.
create or replace function apportion.explain_allocation(p_event_id uuid, p_model_version text)
returns table (
  touch_id uuid,
  channel text,
  occurred_at timestamptz,
  touch_position integer,
  counted boolean,
  reason text,
  weight_num numeric,
  weight_den numeric,
  weight numeric,
  removal_effect_num numeric,
  removal_effect_den numeric,
  channel_weight_num numeric,
  channel_weight_den numeric,
  channel_weight numeric,
  share_num numeric,
  share_den numeric,
  floor_cents bigint,
  remainder_num numeric,
  remainder_den numeric,
  tie_break_md5 text,
  leftover_cent boolean,
  allocated_revenue_cents bigint,
  touchpoint_count integer
)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  v_tenant uuid := apportion.require_tenant();
  v_model apportion.attribution_models := apportion.require_model(p_model_version);
  v_event apportion.attribution_events;
  v_from timestamptz;
  v_direct text[];
  v_mk_channels text[];
  v_mk_weights numeric[];
  v_mk_num numeric[];
  v_mk_den numeric[];
  p record;
begin
  select * into v_event from apportion.attribution_events e where e.tenant_id = v_tenant and e.id = p_event_id;
  if not found then
    raise exception 'explain_allocation: event % does not exist for the current tenant', coalesce(p_event_id::text, 'null')
      using errcode = '22023';
  end if;
  select * into p from apportion.resolve_model_params(v_model.kind, v_model.params);
  select coalesce(array_agg(c.code order by c.code), '{}') into v_direct
    from apportion.channels c where c.tenant_id = v_tenant and c.is_direct;
  if v_model.kind = 'markov' then
    perform apportion.require_trained(p_model_version);
    select coalesce(array_agg(e.channel order by e.channel), '{}'), coalesce(array_agg(e.weight order by e.channel), '{}'),
           coalesce(array_agg(e.removal_effect_num order by e.channel), '{}'), coalesce(array_agg(e.removal_effect_den order by e.channel), '{}')
      into v_mk_channels, v_mk_weights, v_mk_num, v_mk_den
      from apportion.markov_removal_effects e
     where e.tenant_id = v_tenant and e.model_version = p_model_version;
  end if;
  v_from := (v_event.occurred_at at time zone 'UTC' - p.lookback) at time zone 'UTC';

  return query
  with touch as (
    select t.id, t.channel, t.occurred_at,
           case when t.occurred_at > v_event.occurred_at then 'after_event'
                when t.occurred_at < v_from then 'outside_lookback'
                when v_model.kind = 'fixed_split' then 'not_used_by_kind' end as reason
      from apportion.touchpoints t
     where t.tenant_id = v_tenant and t.customer_id = v_event.customer_id
  ),
  counted as (
    select t.*, row_number() over (order by t.occurred_at, t.id)::int as pos,
           count(*) over ()::int as n,
           count(*) over (partition by t.channel)::int as on_channel,
           max(t.occurred_at) over () as newest_at
      from touch t
     where t.reason is null
  ),
  chosen as (
    -- The single-touch kinds' touch.
    select case v_model.kind
             when 'last_touch' then max(c.n)
             when 'first_touch' then 1
             when 'last_non_direct' then coalesce(max(c.pos) filter (where c.channel <> all (v_direct)), max(c.n))
           end as pos
      from counted c
  ),
  weighted as (
    -- Each counted touch's weight numerator, as the engine computes it
    -- (db/20_allocation.sql); markov weighs channels, not touches.
    select c.*,
           case v_model.kind
             when 'linear' then 1::numeric
             when 'position_based' then
               case when c.n <= 2 then 1::numeric
                    when c.pos = 1 then p.first_share * (c.n - 2)
                    when c.pos = c.n then p.last_share * (c.n - 2)
                    else 1 - p.first_share - p.last_share end
             when 'time_decay' then
               case when x.q >= 134 then 0::numeric
                    else round((select f.factor from apportion.half_life_factors f
                                 where f.half_life_us = x.half_life_us and f.part = 5 and f.digits = x.q)
                             * (select f.factor from apportion.half_life_factors f
                                 where f.half_life_us = x.half_life_us and f.part = 0 and f.digits = x.r % 1000)
                             * (select f.factor from apportion.half_life_factors f
                                 where f.half_life_us = x.half_life_us and f.part = 1 and f.digits = x.r / 1000 % 1000)
                             * (select f.factor from apportion.half_life_factors f
                                 where f.half_life_us = x.half_life_us and f.part = 2 and f.digits = x.r / 1000000 % 1000)
                             * (select f.factor from apportion.half_life_factors f
                                 where f.half_life_us = x.half_life_us and f.part = 3 and f.digits = x.r / 1000000000 % 1000)
                             * (select f.factor from apportion.half_life_factors f
                                 where f.half_life_us = x.half_life_us and f.part = 4 and f.digits = x.r / 1000000000000), 40) end
             when 'markov' then null::numeric
             else case when c.pos = (select ch.pos from chosen ch) then 1::numeric else 0::numeric end
           end as w
      from counted c
     cross join lateral (
       -- time_decay: dt = q * half_life + r in whole microseconds, as the
       -- engine splits it (null for every other kind, which has no half-life).
       select d.half_life_us, d.dt_us / d.half_life_us as q, d.dt_us % d.half_life_us as r
         from (select (p.half_life_seconds * 1000000)::bigint as half_life_us,
                      (extract(epoch from c.newest_at - c.occurred_at) * 1000000)::bigint as dt_us) d
     ) x
  ),
  channel_weight as (
    -- fixed_split: its list; no counted touch: the fallback; markov: the
    -- trained weight per channel (every one 0: 1 per touch); else the sum
    -- of the channel's touches.
    select s.channel, coalesce(s.weight, 1) as w, 0 as touches, null::numeric as re_num, null::numeric as re_den
      from unnest(p.split_channels, p.split_weights) as s (channel, weight)
     where v_model.kind = 'fixed_split'
    union all
    select p.fallback_channel, 1::numeric, 0, null, null
     where v_model.kind <> 'fixed_split' and not exists (select from counted)
    union all
    select g.channel,
           case when v_model.kind <> 'markov' then g.w
                when sum(coalesce(m.weight, 0)) over () = 0 then g.touches::numeric
                else coalesce(m.weight, 0) end,
           g.touches,
           case when v_model.kind = 'markov' then coalesce(m.re_num, 0) end,
           case when v_model.kind = 'markov' then coalesce(m.re_den, 1) end
      from (select w.channel, sum(w.w) as w, count(*)::int as touches from weighted w group by w.channel) g
      left join unnest(v_mk_channels, v_mk_weights, v_mk_num, v_mk_den) as m (channel, weight, re_num, re_den)
        on m.channel = g.channel
     where v_model.kind <> 'fixed_split'
  ),
  money as (
    select cw.*, sum(cw.w) over () as d,
           case when cw.w > 0 then div(v_event.revenue_cents * cw.w, sum(cw.w) over ()) end as floor_cents
      from channel_weight cw
  ),
  ranked as (
    select m.*,
           case when m.w > 0 then v_event.revenue_cents * m.w - m.floor_cents * m.d end as remainder,
           v_event.revenue_cents - sum(m.floor_cents) over () as leftover,
           md5(v_event.id::text || ':' || m.channel) as md5
      from money m
  ),
  spare as (
    select r.*,
           case when r.w > 0 and r.leftover > 0
                then row_number() over (order by (r.w > 0) desc, r.remainder desc nulls last, r.md5 collate "C") end as remainder_rank
      from ranked r
  ),
  per_channel as (
    select s.*, cwf.num as cw_num, cwf.den as cw_den, sh.num as sh_num, sh.den as sh_den, rm.num as rm_num, rm.den as rm_den,
           coalesce(s.remainder_rank <= s.leftover, false) as gets_cent
      from spare s
     cross join lateral apportion.exact_fraction(s.w, s.d) cwf
     cross join lateral apportion.exact_fraction(v_event.revenue_cents * s.w, s.d) sh
     cross join lateral apportion.exact_fraction(coalesce(s.remainder, 0), s.d) rm
  )
  select t.id, t.channel, t.occurred_at, w.pos, t.reason is null, t.reason,
         tw.num, tw.den,
         case when tw.den is not null then div(tw.num * 2000000 + tw.den, 2 * tw.den) * 0.000001 end,
         pc.re_num, pc.re_den,
         pc.cw_num, pc.cw_den, case when pc.d is not null then div(pc.w * 1000000 + pc.d * 0.5, pc.d) * 0.000001 end,
         pc.sh_num, pc.sh_den, pc.floor_cents::bigint, pc.rm_num, pc.rm_den,
         case when pc.w > 0 then pc.md5 end, case when pc.w > 0 then pc.gets_cent end,
         case when pc.w > 0 then (pc.floor_cents + pc.gets_cent::int)::bigint end,
         pc.touches
    from touch t
    left join weighted w on w.id = t.id
    left join per_channel pc on w.id is not null and pc.channel = t.channel
    left join lateral (
      -- The touch's exact weight: its numerator over the event's total;
      -- markov: its channel's weight shared by the channel's touches.
      select f.num, f.den from apportion.exact_fraction(
               case when v_model.kind = 'markov' then pc.w else w.w end,
               case when v_model.kind = 'markov' then pc.d * w.on_channel else pc.d end) f
       where w.id is not null
    ) tw on true
  union all
  select null::uuid, pc.channel, null::timestamptz, null::int, null::boolean, null::text,
         null::numeric, null::numeric, null::numeric, pc.re_num, pc.re_den,
         pc.cw_num, pc.cw_den, div(pc.w * 1000000 + pc.d * 0.5, pc.d) * 0.000001,
         pc.sh_num, pc.sh_den, pc.floor_cents::bigint, pc.rm_num, pc.rm_den,
         case when pc.w > 0 then pc.md5 end, case when pc.w > 0 then pc.gets_cent end,
         case when pc.w > 0 then (pc.floor_cents + pc.gets_cent::int)::bigint end,
         pc.touches
    from per_channel pc
   where pc.touches = 0
   order by 3 nulls last, 1, 2;
end
$$;
grant execute on function apportion.explain_allocation(uuid, text) to apportion_worker, apportion_allocator;
comment on function apportion.explain_allocation(uuid, text) is
  'Why the current tenant''s event was split as it was under a model version: one row per touchpoint of its customer in touch order (counted, or why not: after_event, outside_lookback, not_used_by_kind), its exact weight, and per channel the weight, the exact share of the revenue, the floor, the remainder, the md5 tie-break and whether it got a leftover cent; for markov the removal effect. Fractions are num/den in lowest terms, rounded values half up to 6 places; its money is the stored allocation exactly. Errors: 42501 when no tenant is set; 22023 when the version is not registered or the event does not exist for the tenant; 55000 for a markov version the tenant has not trained.';
