-- The attribution engine: split each conversion's revenue across channels.
--
-- Exact integer cents (docs/attribution.md): every channel c of an event gets a
-- weight numerator W_c (an exact decimal) over the event's denominator
-- D = sum(W_c). Its exact share is revenue * W_c / D; it first gets
-- floor(revenue * W_c / D), computed with exact numeric div(), and the
-- cents left over go one each to the largest remainders
-- revenue * W_c - floor * D (that is, mod(revenue * W_c, D)),
-- ties broken by md5(event_id || ':' || channel) ascending, compared
-- bytewise (collation "C") (largest remainder / Hamilton method). No float
-- anywhere, nothing depends on row order, and the parts always sum to the
-- revenue.
--
-- Touch weight numerators per kind (touches in touch order 1..n):
--   last_touch       1 for touch n
--   first_touch      1 for touch 1
--   last_non_direct  1 for the last touch on a non-direct channel, else touch n
--   linear           1 each                                  (D = n)
--   position_based   n = 1: 1; n = 2: 1 each; n >= 3: first*(n-2) for touch 1,
--                    last*(n-2) for touch n, (1-first-last) for the rest (D = n-2)
--   time_decay       2^-x with x = (dt_i - dt_n) / half_life, dt the time
--                    before the event: the newest touch weighs 1, so D >= 1
--                    however old the rest. x is exact: with dt - dt_n and the
--                    half-life in whole microseconds, dt - dt_n = q * half_life
--                    + r, and 2^-x = 2^-q * prod_k 2^-(d_k * 1000^k / half_life)
--                    over the base-1000 digits d_k of r: six rows of
--                    apportion.half_life_factors (each within 5.000001e-51),
--                    whose product is rounded half up to 40 decimal places, so
--                    each weight is within 5.1e-41 of the exact 2^-x; from
--                    q >= 134 on 2^-x < 5e-41 rounds to 0. The weights are the
--                    same on every server.
--   fixed_split      no touches: the channel list, weights or 1 each.
--   markov           per channel, not per touch: the channel's frozen
--                    integer weight (removal effect times the common
--                    denominator, db/15_markov.sql), passed in as
--                    p_split_channels / p_split_weights; a channel not in
--                    training weighs 0; if all of an event's channels weigh
--                    0, 1 per touch (as linear).
-- An event with no touch in its window goes whole to the fallback channel.
-- Channels whose weight is zero get no row. touchpoint_count is the number of
-- the event's in-window touches on the channel (0 for fixed_split and
-- fallback rows).
-- The allocation rows for a set of one tenant's events under one model,
-- computed, not stored: the engine's one query. The events are those named
-- in p_event_ids, or when it is null, those with occurred_at in
-- [p_window_start, p_window_end). A plain SQL function without SET clauses,
-- so the planner inlines it into its caller's statement and folds away the
-- branch for the way of naming events that was passed null, even in a
-- generic plan. Row level security decides what it sees; p_tenant only
-- narrows the scans. It has no pinned search_path (that would stop the
-- inlining), so it is run from compute_allocations, which pins one.
-- The lookback window is computed on the UTC wall clock, so '30 days' is
-- always 720 hours whatever the session's time zone.
create or replace function apportion.allocation_rows(
  p_tenant uuid,
  p_kind text,
  p_lookback interval,
  p_fallback_channel text,
  p_half_life_seconds numeric,
  p_first_share numeric,
  p_last_share numeric,
  p_split_channels text[],
  p_split_weights numeric[],
  p_direct_channels text[],
  p_event_ids uuid[],
  p_window_start timestamptz,
  p_window_end timestamptz
)
returns table (
  event_id uuid,
  channel text,
  allocated_revenue_cents bigint,
  allocation_ratio numeric,
  touchpoint_count integer,
  currency char(3),
  event_occurred_at timestamptz
)
language sql stable
as $$
  with ev as materialized (
    -- The single-touch kinds take events in customer order, so their
    -- per-event probes walk the lookback index in its own order; for the
    -- weighted kinds the sort key is a constant and the planner drops it.
    select u.* from (
      select e.id, e.customer_id, e.occurred_at, (e.occurred_at at time zone 'UTC' - p_lookback) at time zone 'UTC' as window_from,
             e.revenue_cents, e.currency
        from apportion.attribution_events e
       -- (A semi-join: the events key is probed once per id, where = ANY
       -- under row level security became a filter over all the tenant's
       -- events.)
       where e.tenant_id = p_tenant and p_event_ids is not null and e.id in (select unnest(p_event_ids))
      union all
      select e.id, e.customer_id, e.occurred_at, (e.occurred_at at time zone 'UTC' - p_lookback) at time zone 'UTC',
             e.revenue_cents, e.currency
        from apportion.attribution_events e
       where e.tenant_id = p_tenant and p_event_ids is null
         and e.occurred_at >= p_window_start and e.occurred_at < p_window_end
    ) u
    order by case when p_kind in ('last_touch', 'first_touch', 'last_non_direct') then u.customer_id end
  ),
  single as (
    -- Single-touch kinds: one channel gets the whole revenue, no money
    -- arithmetic. Per event, one lookback index range scan gathers its
    -- touches' channels in touch order (occurred_at, id) into an array (the
    -- aggregate keeps the lateral a per-event nested loop) and the chosen
    -- position is read off it. Without touches the event goes to the
    -- fallback channel with a touchpoint_count of 0.
    -- The window's lower bound comes precomputed from ev: under row level
    -- security only a plain comparison can be an index condition
    -- (timestamptz - interval is not leakproof).
    select ev.id as event_id, ev.revenue_cents, ev.currency, ev.occurred_at, s.channels,
           case p_kind
             when 'last_touch' then cardinality(s.channels)
             when 'first_touch' then 1
             when 'last_non_direct' then
               coalesce((select max(i) from generate_subscripts(s.channels, 1) i where s.channels[i] <> all (p_direct_channels)),
                        cardinality(s.channels))
           end as chosen_pos
      from ev
     cross join lateral (
        select array_agg(t.channel order by t.occurred_at, t.id) as channels
          from apportion.touchpoints t
         where t.tenant_id = p_tenant and t.customer_id = ev.customer_id
           and t.occurred_at >= ev.window_from and t.occurred_at <= ev.occurred_at
      ) s
     where p_kind in ('last_touch', 'first_touch', 'last_non_direct')
     -- Back in event id order, so rows reach the allocations key and the
     -- foreign key probes the events key in key order, not at random.
     order by ev.id
  ),
  touch as (
    -- Weighted kinds: touches in each event's lookback window, in touch order
    -- (occurred_at, id); an event without any keeps one row with a null
    -- channel (n = 0). A lateral join on the lookback index (lower bound
    -- precomputed, as above).
    select ev.id as event_id, t.channel, ev.revenue_cents, ev.currency, ev.occurred_at,
           row_number() over w as pos,
           count(t.channel) over (partition by ev.id) as n,
           case when p_kind = 'time_decay' then t.occurred_at end as touch_at,
           case when p_kind = 'time_decay' then max(t.occurred_at) over (partition by ev.id) end as newest_at
      from ev
      left join lateral (
        select t.channel, t.occurred_at, t.id
          from apportion.touchpoints t
         where t.tenant_id = p_tenant and t.customer_id = ev.customer_id
           and t.occurred_at >= ev.window_from and t.occurred_at <= ev.occurred_at
      ) t on true
     where p_kind in ('linear', 'position_based', 'time_decay', 'markov')
    window w as (partition by ev.id order by t.occurred_at, t.id)
  ),
  touch_marked as not materialized (
    -- time_decay: dt = q * half_life + r in whole microseconds (q whole
    -- half-lives, 0 <= r < half_life), exactly. (offset 0 keeps this a
    -- subquery, so dt is computed once and not pasted into each of the
    -- factor joins that read q and r.)
    select d.*, d.dt_us / d.half_life_us as q, d.dt_us % d.half_life_us as r
      from (select touch.*, h.half_life_us,
                   case when p_kind = 'time_decay' then
                     (extract(epoch from touch.newest_at - touch.touch_at) * 1000000)::bigint
                   end as dt_us
              from touch
             cross join (select (p_half_life_seconds * 1000000)::bigint as half_life_us) h
            offset 0) d
  ),
  touch_weighted as (
    select tm.event_id, coalesce(tm.channel, p_fallback_channel) as channel,
           tm.revenue_cents, tm.currency, tm.occurred_at, tm.n,
           case when tm.n = 0 then 1::numeric  -- no touch: all to the fallback channel
                else case p_kind
                  when 'linear' then 1::numeric
                  when 'position_based' then
                    case when tm.n <= 2 then 1::numeric
                         when tm.pos = 1 then p_first_share * (tm.n - 2)
                         when tm.pos = tm.n then p_last_share * (tm.n - 2)
                         else 1 - p_first_share - p_last_share end
                end
           end as w
      from touch_marked tm
     where p_kind in ('linear', 'position_based')
    union all
    select tm.event_id, coalesce(tm.channel, p_fallback_channel),
           tm.revenue_cents, tm.currency, tm.occurred_at, tm.n,
           case when tm.n = 0 then 1::numeric
                when tm.q >= 134 then 0::numeric
                else round(fq.factor * f0.factor * f1.factor * f2.factor * f3.factor * f4.factor, 40) end
      from touch_marked tm
      left join apportion.half_life_factors fq
        on fq.half_life_us = tm.half_life_us and fq.part = 5 and fq.digits = least(tm.q, 133)
      left join apportion.half_life_factors f0
        on f0.half_life_us = tm.half_life_us and f0.part = 0 and f0.digits = tm.r % 1000
      left join apportion.half_life_factors f1
        on f1.half_life_us = tm.half_life_us and f1.part = 1 and f1.digits = tm.r / 1000 % 1000
      left join apportion.half_life_factors f2
        on f2.half_life_us = tm.half_life_us and f2.part = 2 and f2.digits = tm.r / 1000000 % 1000
      left join apportion.half_life_factors f3
        on f3.half_life_us = tm.half_life_us and f3.part = 3 and f3.digits = tm.r / 1000000000 % 1000
      left join apportion.half_life_factors f4
        on f4.half_life_us = tm.half_life_us and f4.part = 4 and f4.digits = tm.r / 1000000000000
     where p_kind = 'time_decay'
  ),
  channel_weight as (
    select tw.event_id, tw.channel, tw.revenue_cents, tw.currency, tw.occurred_at,
           sum(tw.w) as w, (count(*) filter (where tw.n > 0))::int as touches
      from touch_weighted tw
     group by tw.event_id, tw.channel, tw.revenue_cents, tw.currency, tw.occurred_at
    union all
    -- fixed_split: the fixed channel list, for every event.
    select ev.id, s.channel, ev.revenue_cents, ev.currency, ev.occurred_at, coalesce(s.weight, 1), 0
      from ev
     cross join unnest(p_split_channels, p_split_weights) as s (channel, weight)
     where p_kind = 'fixed_split'
    union all
    -- markov: each channel of the event's touches weighs its trained
    -- weight; if none weighs anything, each touch weighs 1.
    select g.event_id, g.channel, g.revenue_cents, g.currency, g.occurred_at,
           case when g.n = 0 then 1::numeric
                when sum(coalesce(mw.weight, 0)) over (partition by g.event_id) = 0 then g.touches::numeric
                else coalesce(mw.weight, 0) end,
           g.touches
      from (select tm.event_id, coalesce(tm.channel, p_fallback_channel) as channel,
                   tm.revenue_cents, tm.currency, tm.occurred_at, max(tm.n) as n,
                   (count(*) filter (where tm.n > 0))::int as touches
              from touch_marked tm
             where p_kind = 'markov'
             group by tm.event_id, coalesce(tm.channel, p_fallback_channel), tm.revenue_cents, tm.currency, tm.occurred_at) g
      left join unnest(p_split_channels, p_split_weights) as mw (channel, weight)
        on mw.channel = g.channel and g.n > 0
     where p_kind = 'markov'
  ),
  floored as (
    -- (offset 0 keeps this a subquery, so each row's product and division
    -- run once; the remainder below is derived from the quotient by an exact
    -- multiplication rather than a second division. The order by tells the
    -- next level that rows already come in event order: no sort.)
    select cw.*, div(cw.share_num, cw.d)::bigint as floor_cents
      from (select cw.*, cw.revenue_cents * cw.w as share_num,
                   sum(cw.w) over (partition by cw.event_id) as d
              from channel_weight cw where cw.w > 0) cw
    order by cw.event_id
    offset 0
  ),
  ranked as (
    select f.*,
           f.share_num - f.floor_cents * f.d as remainder,
           f.revenue_cents - sum(f.floor_cents) over (partition by f.event_id) as leftover
      from floored f
  ),
  spare as (
    -- Only events with cents left over need the ranking (and the md5).
    select r.*,
           case when r.leftover = 0 then 0
                else row_number() over (partition by r.event_id
                                        order by r.remainder desc,
                                                 case when r.leftover > 0 then md5(r.event_id::text || ':' || r.channel) collate "C" end)
           end as remainder_rank
      from ranked r
  )
  select r.event_id, r.channel,
         r.floor_cents + (r.remainder_rank between 1 and r.leftover)::int,
         -- weight rounded half up to 6 places, exactly: floor((W * 10^6 + D/2) / D) / 10^6
         div(r.w * 1000000 + r.d * 0.5, r.d) * 0.000001,
         r.touches, r.currency, r.occurred_at
    from spare r
  union all
  select sg.event_id, coalesce(sg.channels[sg.chosen_pos], p_fallback_channel), sg.revenue_cents, 1::numeric,
         coalesce(cardinality(array_positions(sg.channels, sg.channels[sg.chosen_pos])), 0), sg.currency, sg.occurred_at
    from single sg;
$$;
grant execute on function apportion.allocation_rows(uuid, text, interval, text, numeric, numeric, numeric, text[], numeric[], text[], uuid[], timestamptz, timestamptz)
  to apportion_worker, apportion_allocator;
comment on function apportion.allocation_rows(uuid, text, interval, text, numeric, numeric, numeric, text[], numeric[], text[], uuid[], timestamptz, timestamptz) is
  'The engine''s one query: the allocation rows of a tenant''s events (those named, or those in [p_window_start, p_window_end)) under resolved model params, in exact integer cents, computed, not stored. A plain SQL function the planner inlines into compute_allocations, which calls it; row level security decides what it sees.';

-- Allocations for a set of the current tenant's events, computed, not stored
-- (see allocation_rows).
-- Settings pinned for speed, not results: no JIT, no parallel workers, and
-- channels grouped by sorting, which hands the money math its rows in event
-- order.
-- Named events, up to a live-path batch of 1,000 (allocate_event, the live
-- path), go through a static statement, whose plan PL/pgSQL caches (both ask
-- for the generic one): planning the engine's query afresh costs about as
-- much as running it over 500 events (4.2 ms and 5.2 ms, measured), and the
-- generic plan (an index probe per event) runs such a batch nearly as fast.
-- There is one such statement per kind, the kind written in as a constant,
-- so that each plan holds only its kind's branch of the engine's query: a
-- plan of every branch, chosen at run time, cost 0.62 ms to start and run
-- for one linear event, against 0.17-0.25 ms for the linear plan alone
-- (measured). More events, or a window, go through EXECUTE, planned afresh
-- for the model and the size.
create or replace function apportion.compute_allocations(
  p_model_version text,
  p_event_ids uuid[],
  p_window_start timestamptz default null,
  p_window_end timestamptz default null
)
returns table (
  event_id uuid,
  channel text,
  allocated_revenue_cents bigint,
  allocation_ratio numeric,
  touchpoint_count integer,
  currency char(3),
  event_occurred_at timestamptz
)
language plpgsql stable
set search_path = pg_catalog, pg_temp
set jit = off
set max_parallel_workers_per_gather = 0
set enable_hashagg = off
as $$
declare
  v_tenant uuid := apportion.require_tenant();
  v_model apportion.attribution_models := apportion.require_model(p_model_version);
  v_direct text[];
  p record;
begin
  select * into p from apportion.resolve_model_params(v_model.kind, v_model.params);
  select coalesce(array_agg(c.code order by c.code), '{}') into v_direct
    from apportion.channels c where c.tenant_id = v_tenant and c.is_direct;
  if v_model.kind = 'markov' then
    -- The tenant's frozen channel weights (55000 if it has not trained).
    perform apportion.require_trained(p_model_version);
    select coalesce(array_agg(e.channel order by e.channel), '{}'), coalesce(array_agg(e.weight order by e.channel), '{}')
      into p.split_channels, p.split_weights
      from apportion.markov_removal_effects e
     where e.tenant_id = v_tenant and e.model_version = p_model_version;
  end if;

  if p_event_ids is not null and cardinality(p_event_ids) <= 1000 then
    -- (The same call in every branch but for the kind: see above.)
    case v_model.kind
      when 'last_touch' then return query select r.* from apportion.allocation_rows(v_tenant, 'last_touch', p.lookback,
        p.fallback_channel, p.half_life_seconds, p.first_share, p.last_share, p.split_channels, p.split_weights,
        v_direct, p_event_ids, null, null) r;
      when 'first_touch' then return query select r.* from apportion.allocation_rows(v_tenant, 'first_touch', p.lookback,
        p.fallback_channel, p.half_life_seconds, p.first_share, p.last_share, p.split_channels, p.split_weights,
        v_direct, p_event_ids, null, null) r;
      when 'last_non_direct' then return query select r.* from apportion.allocation_rows(v_tenant, 'last_non_direct', p.lookback,
        p.fallback_channel, p.half_life_seconds, p.first_share, p.last_share, p.split_channels, p.split_weights,
        v_direct, p_event_ids, null, null) r;
      when 'linear' then return query select r.* from apportion.allocation_rows(v_tenant, 'linear', p.lookback,
        p.fallback_channel, p.half_life_seconds, p.first_share, p.last_share, p.split_channels, p.split_weights,
        v_direct, p_event_ids, null, null) r;
      when 'position_based' then return query select r.* from apportion.allocation_rows(v_tenant, 'position_based', p.lookback,
        p.fallback_channel, p.half_life_seconds, p.first_share, p.last_share, p.split_channels, p.split_weights,
        v_direct, p_event_ids, null, null) r;
      when 'time_decay' then return query select r.* from apportion.allocation_rows(v_tenant, 'time_decay', p.lookback,
        p.fallback_channel, p.half_life_seconds, p.first_share, p.last_share, p.split_channels, p.split_weights,
        v_direct, p_event_ids, null, null) r;
      when 'fixed_split' then return query select r.* from apportion.allocation_rows(v_tenant, 'fixed_split', p.lookback,
        p.fallback_channel, p.half_life_seconds, p.first_share, p.last_share, p.split_channels, p.split_weights,
        v_direct, p_event_ids, null, null) r;
      when 'markov' then return query select r.* from apportion.allocation_rows(v_tenant, 'markov', p.lookback,
        p.fallback_channel, p.half_life_seconds, p.first_share, p.last_share, p.split_channels, p.split_weights,
        v_direct, p_event_ids, null, null) r;
      else raise exception 'compute_allocations: no statement for kind %', v_model.kind using errcode = 'XX000';
    end case;
  elsif p_event_ids is not null then
    return query execute
      'select r.* from apportion.allocation_rows($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, null, null) r'
    using
      v_tenant, v_model.kind, p.lookback, p.fallback_channel, p.half_life_seconds, p.first_share, p.last_share,
      p.split_channels, p.split_weights, v_direct, p_event_ids;
  else
    return query execute
      'select r.* from apportion.allocation_rows($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, null, $11, $12) r'
    using
      v_tenant, v_model.kind, p.lookback, p.fallback_channel, p.half_life_seconds, p.first_share, p.last_share,
      p.split_channels, p.split_weights, v_direct, p_window_start, p_window_end;
  end if;
end
$$;
grant execute on function apportion.compute_allocations(text, uuid[], timestamptz, timestamptz) to apportion_worker, apportion_allocator;
comment on function apportion.compute_allocations(text, uuid[], timestamptz, timestamptz) is
  'The allocation rows of the current tenant''s named events (or, when p_event_ids is null, of its events in [p_window_start, p_window_end)) under a model version, computed and not stored. Errors: 42501 when no tenant is set; 22023 when the version is not registered; 55000 for a markov version the tenant has not trained.';

-- Compute and store allocations for a set of events (see compute_allocations):
-- upsert on the idempotency key, rewriting only rows whose values changed,
-- and delete rows of channels that dropped out. A rerun on unchanged inputs
-- writes nothing: computed_at and correlation_id name the run that last
-- changed a row.
-- Runs of one (tenant, model) are serialised by a transaction-level advisory
-- lock taken before anything is read: each run computes from a snapshot
-- taken after the previous run committed, so a run that waited can never
-- write stale rows over a newer allocation of one of its events.
-- When none of these events has rows for this model yet (new events, a new
-- model: the common case) the rows go in by a plain insert, without the
-- upsert's speculative insertion per row or the stale-row search. Rows that
-- appear meanwhile (a concurrent run on the same events) raise
-- unique_violation, and the call takes the upsert path.
-- History: a row's change_reason says why its current version was written:
-- 'allocated' for an event's first rows, else p_reason (late_touchpoint
-- from the live path, recompute otherwise). Rows it replaces or deletes go
-- to allocation_history (triggers below), ended for the same reason.
drop function if exists apportion.store_allocations(text, uuid[], timestamptz, timestamptz);
create or replace function apportion.store_allocations(
  p_model_version text,
  p_event_ids uuid[],
  p_window_start timestamptz default null,
  p_window_end timestamptz default null,
  p_reason text default 'recompute'
)
returns table (event_count bigint, allocation_count bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant uuid := apportion.require_tenant();
  v_correlation uuid := nullif(current_setting('app.correlation_id', true), '')::uuid;
  v_stored boolean;
  v_events bigint;
  v_rows bigint;
  v_refunded uuid[];
  v_written boolean := false;
  v_at timestamptz;
begin
  if p_reason is null or p_reason !~ '^[a-z][a-z_]{0,62}$' then
    raise exception 'store_allocations: p_reason must be a lower-case word like recompute (got %)', coalesce(quote_literal(p_reason), 'null')
      using errcode = '22023';
  end if;
  perform pg_advisory_xact_lock(hashtext('apportion.store_allocations'), hashtext(v_tenant::text || ':' || p_model_version));
  -- The time of this run's versions: taken after the lock, so the runs of
  -- one (tenant, model) write in time order (a transaction's now() is when
  -- it began, maybe before a run it waited for). The history triggers end
  -- replaced versions at the same time.
  v_at := clock_timestamp();
  perform set_config('apportion.change_at', v_at::text, true);
  if p_event_ids is not null then
    select exists (select from apportion.attribution_allocations a
                    where a.tenant_id = v_tenant and a.event_id = any (p_event_ids)
                      and a.model_version = p_model_version)
      into v_stored;
  else
    select exists (select from apportion.attribution_events e
                     join apportion.attribution_allocations a
                       on a.tenant_id = e.tenant_id and a.event_id = e.id and a.model_version = p_model_version
                    where e.tenant_id = v_tenant
                      and e.occurred_at >= p_window_start and e.occurred_at < p_window_end)
      into v_stored;
  end if;

  if not v_stored then
    begin
      with computed as materialized (
        select c.* from apportion.compute_allocations(p_model_version, p_event_ids, p_window_start, p_window_end) c
      ),
      inserted as (
        insert into apportion.attribution_allocations
          (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio,
           touchpoint_count, currency, event_occurred_at, correlation_id, computed_at)
        select v_tenant, c.event_id, p_model_version, c.channel, c.allocated_revenue_cents, c.allocation_ratio,
               c.touchpoint_count, c.currency, c.event_occurred_at, v_correlation, v_at
          from computed c
        returning 1
      )
      select (select count(*) from (select distinct c.event_id from computed c) d),
             (select count(*) from inserted)
        into v_events, v_rows;
      v_written := true;
    exception when unique_violation then
      -- Another run stored some of these events first: upsert below.
    end;
  end if;

  if not v_written then
    -- Why rows this run replaces or deletes ended (the history triggers read it).
    perform set_config('apportion.change_reason', p_reason, true);
    with computed as materialized (
      select c.* from apportion.compute_allocations(p_model_version, p_event_ids, p_window_start, p_window_end) c
    ),
    prior as (
      -- Events that had rows: theirs are restated, not first allocations.
      select distinct x.event_id from apportion.attribution_allocations x
       where x.tenant_id = v_tenant and x.model_version = p_model_version
         and x.event_id in (select c.event_id from computed c)
    ),
    upserted as (
      insert into apportion.attribution_allocations as a
        (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio,
         touchpoint_count, currency, event_occurred_at, correlation_id, computed_at, change_reason)
      select v_tenant, c.event_id, p_model_version, c.channel, c.allocated_revenue_cents, c.allocation_ratio,
             c.touchpoint_count, c.currency, c.event_occurred_at, v_correlation, v_at,
             case when c.event_id in (select p.event_id from prior p) then p_reason else 'allocated' end
        from computed c
      on conflict (tenant_id, event_id, model_version, channel) do update
         set allocated_revenue_cents = excluded.allocated_revenue_cents,
             allocation_ratio = excluded.allocation_ratio,
             touchpoint_count = excluded.touchpoint_count,
             currency = excluded.currency,
             event_occurred_at = excluded.event_occurred_at,
             correlation_id = excluded.correlation_id,
             computed_at = excluded.computed_at,
             change_reason = p_reason
       where (a.allocated_revenue_cents, a.allocation_ratio, a.touchpoint_count, a.currency, a.event_occurred_at)
             is distinct from
             (excluded.allocated_revenue_cents, excluded.allocation_ratio, excluded.touchpoint_count, excluded.currency, excluded.event_occurred_at)
      returning 1
    ),
    stale as (
      -- Rows of these events whose channel is no longer computed. Found with
      -- EXCEPT (hashed or sorted) rather than NOT EXISTS against the CTE,
      -- which the planner may run as a nested loop over it per stored row.
      delete from apportion.attribution_allocations a
       using (select x.event_id, x.channel
                from apportion.attribution_allocations x
               where x.tenant_id = v_tenant and x.model_version = p_model_version
                 and x.event_id in (select c.event_id from computed c)
              except
              select c.event_id, c.channel from computed c) s
       where a.tenant_id = v_tenant and a.model_version = p_model_version
         and a.event_id = s.event_id and a.channel = s.channel
      returning 1
    )
    select (select count(*) from (select distinct c.event_id from computed c) d),
           (select count(*) from computed c)
      into v_events, v_rows
      from (select count(*) from upserted) u, (select count(*) from stale) s;
    perform set_config('apportion.change_reason', '', true);
  end if;

  -- Refunds of these events are split again over their new allocation.
  select array_agg(distinct f.event_id) into v_refunded
    from apportion.refunds f
   where f.tenant_id = v_tenant
     and (p_event_ids is not null and f.event_id = any (p_event_ids)
          or p_event_ids is null and exists (select from apportion.attribution_events e
                                              where e.tenant_id = v_tenant and e.id = f.event_id
                                                and e.occurred_at >= p_window_start and e.occurred_at < p_window_end));
  if v_refunded is not null then
    perform apportion.store_refund_allocations(v_refunded, p_model_version, case when v_written then 'allocated' else p_reason end);
  end if;
  perform set_config('apportion.change_at', '', true);
  return query select v_events, v_rows;
end
$$;
grant execute on function apportion.store_allocations(text, uuid[], timestamptz, timestamptz, text) to apportion_worker, apportion_allocator;
comment on function apportion.store_allocations(text, uuid[], timestamptz, timestamptz, text) is
  'Computes and stores the allocations of the current tenant''s events (as compute_allocations names them), writing only rows that change, and re-splits their refunds: the body of allocate_event, recompute_window and the live path, without their argument checks. Rewritten rows say p_reason, an event''s first rows allocated; replaced ones go to allocation_history. Returns the events and rows. Errors: 42501 when no tenant is set; 22023 for a p_reason that is not a lower-case word or a version that is not registered; 55000 for a markov version the tenant has not trained.';

-- Allocate one event of the current tenant for one model version.
-- Idempotent: a rerun returns identical rows and changes nothing.
-- One event is the queue's unit (attribution.allocate_event runs this per
-- job): a generic plan for the engine's statements saves planning them on
-- every call, while recompute_window plans its one big run afresh.
create or replace function apportion.allocate_event(p_event_id uuid, p_model_version text)
returns setof apportion.attribution_allocations
language plpgsql
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_tenant uuid := apportion.require_tenant();
begin
  perform apportion.require_model(p_model_version);
  if p_event_id is null or not exists (
       select from apportion.attribution_events e where e.tenant_id = v_tenant and e.id = p_event_id) then
    raise exception 'allocate_event: event % does not exist for the current tenant', coalesce(p_event_id::text, 'null')
      using errcode = '22023';
  end if;
  perform apportion.store_allocations(p_model_version, array[p_event_id], null, null, 'recompute');
  return query
    select a.* from apportion.attribution_allocations a
     where a.tenant_id = v_tenant and a.event_id = p_event_id and a.model_version = p_model_version
     order by a.channel;
end
$$;
grant execute on function apportion.allocate_event(uuid, text) to apportion_worker, apportion_allocator;
comment on function apportion.allocate_event(uuid, text) is
  'Allocates one event of the current tenant under a model version and returns its allocation rows. Idempotent: a rerun returns the same rows and changes nothing. Errors: 42501 when no tenant is set; 22023 when the version is not registered or the event does not exist for the tenant; 55000 for a markov version the tenant has not trained.';

-- Allocate every event of the current tenant with occurred_at in the
-- half-open window [p_window_start, p_window_end), set-based.
create or replace function apportion.recompute_window(
  p_window_start timestamptz,
  p_window_end timestamptz,
  p_model_version text
)
returns table (event_count bigint, allocation_count bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  perform apportion.require_tenant();
  if p_window_start is null or p_window_end is null then
    raise exception 'recompute_window: window_start and window_end are required (got %, %)',
      coalesce(p_window_start::text, 'null'), coalesce(p_window_end::text, 'null') using errcode = '22023';
  end if;
  if p_window_end <= p_window_start then
    raise exception 'recompute_window: window_end (%) must be after window_start (%)', p_window_end, p_window_start
      using errcode = '22023';
  end if;
  perform apportion.require_model(p_model_version);
  return query select * from apportion.store_allocations(p_model_version, null, p_window_start, p_window_end);
end
$$;
grant execute on function apportion.recompute_window(timestamptz, timestamptz, text) to apportion_worker, apportion_allocator;
comment on function apportion.recompute_window(timestamptz, timestamptz, text) is
  'Allocates every event of the current tenant with occurred_at in [p_window_start, p_window_end) under a model version, set-based; restates events past the restatement horizon on request. Returns the events and rows. Errors: 42501 when no tenant is set; 22023 when a bound is missing, the end is not after the start, or the version is not registered; 55000 for a markov version the tenant has not trained.';

-- History ----------------------------------------------------------------------
-- Every version of an allocation row is kept: the current one in
-- attribution_allocations (computed_at: since when; change_reason: why),
-- every earlier or deleted one in allocation_history with when and why it
-- ended. A first allocation writes no history (its rows are the current
-- versions), so it costs nothing extra; restatements and deletions do.

-- Replaced or deleted rows go to the history, ended at the writing run's
-- time (apportion.change_at, set by store_allocations; else the clock, and
-- never before the version began) for the reason it gave
-- (apportion.change_reason; 'update' or 'delete' for a write outside it),
-- with its correlation id.
create or replace function apportion_internal.record_allocation_history()
returns trigger
language plpgsql
as $$
begin
  insert into apportion.allocation_history
    (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count,
     currency, event_occurred_at, correlation_id, change_reason, valid_from, valid_to, ended_reason, ended_correlation_id)
  select o.tenant_id, o.event_id, o.model_version, o.channel, o.allocated_revenue_cents, o.allocation_ratio, o.touchpoint_count,
         o.currency, o.event_occurred_at, o.correlation_id, o.change_reason, o.computed_at,
         greatest(coalesce(nullif(current_setting('apportion.change_at', true), '')::timestamptz, clock_timestamp()), o.computed_at),
         coalesce(nullif(current_setting('apportion.change_reason', true), ''), lower(tg_op)),
         nullif(current_setting('app.correlation_id', true), '')::uuid
    from old_rows o;
  return null;
end
$$;

create or replace trigger attribution_allocations_history_update
  after update on apportion.attribution_allocations
  referencing old table as old_rows
  for each statement execute function apportion_internal.record_allocation_history();
create or replace trigger attribution_allocations_history_delete
  after delete on apportion.attribution_allocations
  referencing old table as old_rows
  for each statement execute function apportion_internal.record_allocation_history();

-- allocations_as_of's checks: the current tenant (42501 if none), a
-- registered model version (22023), a finite time (22023).
create or replace function apportion.require_as_of(p_model_version text, p_at timestamptz)
returns uuid
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant uuid := apportion.require_tenant();
begin
  perform apportion.require_model(p_model_version);
  if p_at is null or not isfinite(p_at) then
    raise exception 'allocations_as_of: p_at must be a finite timestamp (got %)', coalesce(p_at::text, 'null') using errcode = '22023';
  end if;
  return v_tenant;
end
$$;
grant execute on function apportion.require_as_of(text, timestamptz) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
comment on function apportion.require_as_of(text, timestamptz) is
  'The checks of allocations_as_of, returning the current tenant. Errors: 42501 when no tenant is set; 22023 when the version is not registered or p_at is not a finite time.';

-- The current tenant's allocation rows of one model version exactly as they
-- stood at p_at: the versions current then (valid from computed_at, until
-- replaced or deleted). A version's time is when its run wrote it (after
-- the run's lock, so in order per tenant and model): a report read at p_at
-- while that transaction had not yet committed did not see it yet.
-- A plain SQL function (no SET clauses, names qualified), so the planner
-- inlines it into the caller's query, which then reads only the columns it
-- uses; the checks run first, as the outer side of the lateral join.
create or replace function apportion.allocations_as_of(p_model_version text, p_at timestamptz)
returns table (
  event_id uuid,
  channel text,
  allocated_revenue_cents bigint,
  allocation_ratio numeric(7, 6),
  touchpoint_count integer,
  currency char(3),
  event_occurred_at timestamptz,
  correlation_id uuid,
  computed_at timestamptz,
  change_reason text
)
language sql stable
as $$
  select x.*
    from apportion.require_as_of(p_model_version, p_at) as t (tenant_id)
   cross join lateral (
     select a.event_id, a.channel, a.allocated_revenue_cents, a.allocation_ratio, a.touchpoint_count, a.currency,
            a.event_occurred_at, a.correlation_id, a.computed_at, a.change_reason
       from apportion.attribution_allocations a
      where a.tenant_id = t.tenant_id and a.model_version = p_model_version and a.computed_at <= p_at
     union all
     select h.event_id, h.channel, h.allocated_revenue_cents, h.allocation_ratio, h.touchpoint_count, h.currency,
            h.event_occurred_at, h.correlation_id, h.valid_from, h.change_reason
       from apportion.allocation_history h
      where h.tenant_id = t.tenant_id and h.model_version = p_model_version and h.valid_to > p_at and h.valid_from <= p_at
   ) x
$$;
grant execute on function apportion.allocations_as_of(text, timestamptz) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
comment on function apportion.allocations_as_of(text, timestamptz) is
  'The current tenant''s allocation rows of a model version exactly as they stood at p_at (a version''s time is when its run wrote it, in order per tenant and model). A plain SQL function the planner inlines. Errors: 42501 when no tenant is set; 22023 when the version is not registered or p_at is not a finite time.';

-- Every change to the current tenant's allocation rows: when, why, the
-- amount before and after (null: the row did not exist, or was deleted)
-- and the correlation id of the run that made it.
create or replace view apportion.allocation_changes
with (security_invoker = true)
as
with versions as (
  select a.tenant_id, a.event_id, a.model_version, a.channel, a.allocated_revenue_cents as cents, a.change_reason,
         a.correlation_id, a.computed_at as valid_from, null::timestamptz as valid_to, null::text as ended_reason,
         null::uuid as ended_correlation_id
    from apportion.attribution_allocations a
  union all
  select h.tenant_id, h.event_id, h.model_version, h.channel, h.allocated_revenue_cents, h.change_reason,
         h.correlation_id, h.valid_from, h.valid_to, h.ended_reason, h.ended_correlation_id
    from apportion.allocation_history h
),
ordered as (
  select v.*, lag(v.cents) over k as previous_cents, lag(v.valid_to) over k as previous_to,
         lead(v.valid_from) over k as next_from
    from versions v
  window k as (partition by v.tenant_id, v.event_id, v.model_version, v.channel order by v.valid_from, v.valid_to nulls last)
)
select o.tenant_id, o.event_id, o.model_version, o.channel, o.valid_from as changed_at, o.change_reason as reason,
       case when o.previous_to = o.valid_from then o.previous_cents end as before_cents, o.cents as after_cents,
       o.correlation_id
  from ordered o
union all
select o.tenant_id, o.event_id, o.model_version, o.channel, o.valid_to, o.ended_reason, o.cents, null::bigint,
       o.ended_correlation_id
  from ordered o
 where o.valid_to is not null and o.next_from is distinct from o.valid_to;

-- Tables -----------------------------------------------------------------------

alter table apportion.attribution_allocations alter column tenant_id set default apportion.current_tenant_id();
alter table apportion.allocation_history alter column tenant_id set default apportion.current_tenant_id();
select apportion_internal.define_tenant_policies('apportion.allocation_history');
grant select on apportion.allocation_history, apportion.allocation_changes
  to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
-- Written by the history triggers, as whoever changes allocations.
grant insert on apportion.allocation_history to apportion_worker, apportion_allocator;

select apportion_internal.define_tenant_policies('apportion.attribution_allocations');

grant select on apportion.attribution_allocations to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
grant insert, update, delete on apportion.attribution_allocations to apportion_worker, apportion_allocator;
-- Global constants of time_decay, not tenant data.
grant select on apportion.half_life_factors to apportion_worker, apportion_allocator;

comment on table apportion.attribution_allocations is
  'The current allocation of each event: one row per (event, model version, channel), its key and the idempotency key of every run. Written by the engine (allocate_event, recompute_window, the live path); every replaced or deleted version goes to allocation_history.';
comment on column apportion.attribution_allocations.tenant_id is 'The tenant (defaults to the current one).';
comment on column apportion.attribution_allocations.event_id is 'The event allocated.';
comment on column apportion.attribution_allocations.model_version is 'The model version it was allocated under.';
comment on column apportion.attribution_allocations.channel is 'The channel credited.';
comment on column apportion.attribution_allocations.allocated_revenue_cents is
  'The channel''s part of the revenue in minor units, exact: an event''s parts sum to its revenue.';
comment on column apportion.attribution_allocations.allocation_ratio is 'The part as a share of the revenue, rounded to 6 places.';
comment on column apportion.attribution_allocations.touchpoint_count is
  'The event''s counted touches on the channel (0 for fixed_split and the fallback channel).';
comment on column apportion.attribution_allocations.currency is 'The event''s currency.';
comment on column apportion.attribution_allocations.event_occurred_at is 'The event''s occurred_at, which the reports group by.';
comment on column apportion.attribution_allocations.correlation_id is 'The correlation id of the run that wrote this version.';
comment on column apportion.attribution_allocations.computed_at is 'When the run that wrote this version wrote it: since when it holds.';
comment on column apportion.attribution_allocations.change_reason is
  'Why this version was written: allocated (the event''s first rows), late_touchpoint or recompute.';

comment on table apportion.allocation_history is
  'Every replaced or deleted version of an allocation row, with when and why it ended: allocations_as_of and allocation_changes read it. Written by triggers, as whoever changes allocations.';
comment on column apportion.allocation_history.valid_from is 'When the version began (its computed_at).';
comment on column apportion.allocation_history.valid_to is 'When it was replaced or deleted.';
comment on column apportion.allocation_history.ended_reason is
  'Why it ended: the reason the run that replaced or deleted it gave (update or delete for a write outside the engine).';
comment on column apportion.allocation_history.ended_correlation_id is 'The correlation id of that run.';

comment on view apportion.allocation_changes is
  'Every change to the current tenant''s allocation rows, first writes included: when, why, the amount before and after, and the correlation id of the run that made it.';
comment on column apportion.allocation_changes.changed_at is 'When the change was made.';
comment on column apportion.allocation_changes.reason is 'Why: the change_reason of the version written, or the ended_reason of a deletion.';
comment on column apportion.allocation_changes.before_cents is 'The amount before; null when the row did not exist.';
comment on column apportion.allocation_changes.after_cents is 'The amount after; null when the row was deleted.';
comment on column apportion.allocation_changes.correlation_id is 'The correlation id of the run that made the change.';

comment on table apportion.half_life_factors is
  'The factors of time_decay''s exact weights per half-life (about 4,000 rows each), computed once when a model with that half-life is registered: global constants, not tenant data.';
