CREATE SCHEMA apportion;

CREATE SCHEMA apportion_internal;

CREATE TYPE apportion.job_outcome AS (
	job_id bigint,
	outcome text,
	attempt integer,
	ms numeric,
	error_code text,
	error_message text
);

CREATE FUNCTION apportion.activate_model(p_model_version text) RETURNS void
    LANGUAGE plpgsql
    AS $$
declare
  v_tenant uuid := apportion.require_tenant();
begin
  perform apportion.require_model(p_model_version);
  insert into apportion.tenant_models (tenant_id, model_version)
  values (v_tenant, p_model_version)
  on conflict do nothing;
end
$$;

CREATE FUNCTION apportion.activate_model_for(p_tenant uuid, p_model_version text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'activate_model_for');
begin
  perform apportion.activate_model(p_model_version);
  perform set_config('app.tenant_id', v_previous, true);
end
$$;

CREATE FUNCTION apportion.current_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select nullif(current_setting('app.tenant_id', true), '')::uuid
$$;

CREATE TABLE apportion.attribution_allocations (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    event_id uuid NOT NULL,
    model_version text NOT NULL,
    channel text NOT NULL,
    allocated_revenue_cents bigint NOT NULL,
    allocation_ratio numeric(7,6) NOT NULL,
    touchpoint_count integer NOT NULL,
    currency character(3) NOT NULL,
    event_occurred_at timestamp with time zone NOT NULL,
    correlation_id uuid,
    computed_at timestamp with time zone DEFAULT now() NOT NULL,
    change_reason text DEFAULT 'allocated'::text NOT NULL,
    CONSTRAINT attribution_allocations_cents_non_negative CHECK ((allocated_revenue_cents >= 0)),
    CONSTRAINT attribution_allocations_change_reason_format CHECK ((change_reason ~ '^[a-z][a-z_]{0,62}$'::text)),
    CONSTRAINT attribution_allocations_ratio_range CHECK (((allocation_ratio >= (0)::numeric) AND (allocation_ratio <= (1)::numeric))),
    CONSTRAINT attribution_allocations_touchpoint_count_non_negative CHECK ((touchpoint_count >= 0))
);

ALTER TABLE ONLY apportion.attribution_allocations FORCE ROW LEVEL SECURITY;

CREATE FUNCTION apportion.allocate_event(p_event_id uuid, p_model_version text) RETURNS SETOF apportion.attribution_allocations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
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

CREATE FUNCTION apportion.allocate_event_for(p_tenant uuid, p_event_id uuid, p_model_version text) RETURNS SETOF apportion.attribution_allocations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'allocate_event_for');
begin
  return query select * from apportion.allocate_event(p_event_id, p_model_version);
  perform set_config('app.tenant_id', v_previous, true);
end
$$;

CREATE FUNCTION apportion.allocation_rows(p_tenant uuid, p_kind text, p_lookback interval, p_fallback_channel text, p_half_life_seconds numeric, p_first_share numeric, p_last_share numeric, p_split_channels text[], p_split_weights numeric[], p_direct_channels text[], p_event_ids uuid[], p_window_start timestamp with time zone, p_window_end timestamp with time zone) RETURNS TABLE(event_id uuid, channel text, allocated_revenue_cents bigint, allocation_ratio numeric, touchpoint_count integer, currency character, event_occurred_at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
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

CREATE FUNCTION apportion.allocations_as_of(p_model_version text, p_at timestamp with time zone) RETURNS TABLE(event_id uuid, channel text, allocated_revenue_cents bigint, allocation_ratio numeric, touchpoint_count integer, currency character, event_occurred_at timestamp with time zone, correlation_id uuid, computed_at timestamp with time zone, change_reason text)
    LANGUAGE sql STABLE
    AS $$
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

CREATE FUNCTION apportion.allocations_for(p_tenant uuid, p_model_version text) RETURNS SETOF apportion.attribution_allocations
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'allocations_for');
begin
  perform apportion.require_model(p_model_version);
  return query select a.* from apportion.attribution_allocations a
                where a.tenant_id = p_tenant and a.model_version = p_model_version order by a.event_id, a.channel;
  perform set_config('app.tenant_id', v_previous, true);
end
$$;

CREATE FUNCTION apportion.bind_login(p_login regrole, p_tenant_id uuid) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  if p_login is null or not exists (select from pg_roles r where r.oid = p_login and r.rolcanlogin) then
    raise exception 'bind_login: % is not a login role', coalesce(p_login::text, 'null') using errcode = '22023';
  end if;
  if not exists (select from apportion.tenants t where t.id = p_tenant_id) then
    raise exception 'bind_login: tenant % does not exist', coalesce(p_tenant_id::text, 'null') using errcode = '22023';
  end if;
  insert into apportion.tenant_bindings (login, tenant_id) values (p_login, p_tenant_id) on conflict do nothing;
end
$$;

CREATE FUNCTION apportion.claim_and_run_jobs(p_worker_id text, p_queues text[], p_limit integer DEFAULT 100, p_lease_seconds integer DEFAULT 15, p_run_max integer DEFAULT 1) RETURNS TABLE(job_id bigint, tenant_id uuid, queue text, task text, correlation_id uuid, attempt integer, outcome text, ms numeric, error_code text, error_message text)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
#variable_conflict use_column
declare
  v_synchronous_commit text := current_setting('synchronous_commit');
  v_tenant_before text := current_setting('app.tenant_id', true);
  v_ids bigint[];
  v_tenants uuid[];
  v_job_queues text[];
  v_tasks text[];
  v_correlations uuid[];
  v_attempts integer[];
  v_run_ids bigint[];
  v_outcomes apportion.job_outcome[];
begin
  if p_run_max is null or p_run_max < 0 then
    raise exception 'claim_and_run_jobs: run_max must be 0 or more (got %)', p_run_max using errcode = '22023';
  end if;
  select array_agg(c.job_id), array_agg(c.tenant_id), array_agg(c.queue), array_agg(c.task),
         array_agg(c.correlation_id), array_agg(c.attempt)
    into v_ids, v_tenants, v_job_queues, v_tasks, v_correlations, v_attempts
    from apportion.claim_jobs(p_worker_id, p_queues, p_limit, p_lease_seconds) c;

  if cardinality(v_ids) between 1 and p_run_max then
    -- (A lone job, the usual case here, needs no statement to pick it.)
    v_run_ids := case when cardinality(v_ids) = 1 then v_ids
                      else array(select c.id from unnest(v_ids, v_tenants) as c (id, tenant_id)
                                  where c.tenant_id is not distinct from v_tenants[1]) end;
    perform set_config('synchronous_commit', v_synchronous_commit, true),
            set_config('app.tenant_id', coalesce(v_tenants[1]::text, ''), true);
    select array_agg(o) into v_outcomes from apportion.run_jobs(p_worker_id, v_run_ids) o;
    perform set_config('app.tenant_id', coalesce(v_tenant_before, ''), true);
  end if;

  return query
    select c.id, c.tenant_id, c.queue, c.task, c.correlation_id, c.attempts,
           o.outcome, o.ms, o.error_code, o.error_message
      from unnest(v_ids, v_tenants, v_job_queues, v_tasks, v_correlations, v_attempts)
             as c (id, tenant_id, queue, task, correlation_id, attempts)
      left join unnest(v_outcomes) o on o.job_id = c.id;
end
$$;

CREATE FUNCTION apportion.claim_jobs(p_worker_id text, p_queues text[], p_limit integer DEFAULT 100, p_lease_seconds integer DEFAULT 15) RETURNS TABLE(job_id bigint, tenant_id uuid, queue text, task text, correlation_id uuid, attempt integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET enable_bitmapscan TO 'off'
    SET enable_seqscan TO 'off'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
#variable_conflict use_column
declare
  v_expired boolean;
  v_due boolean := false;
  v_due_now boolean;
  v_reclaimed boolean := false;
  v_scheduled_done boolean := false;
  v_ids bigint[] := '{}'::bigint[];
  v_tenants uuid[];
  v_job_queues text[];
  v_tasks text[];
  v_correlations uuid[];
  v_attempts integer[];
begin
  if p_worker_id is null or p_worker_id = '' then
    raise exception 'claim_jobs: worker id is required' using errcode = '22023';
  end if;
  if p_limit is null or p_limit < 1 or p_limit > 10000 then
    raise exception 'claim_jobs: limit must be between 1 and 10000 (got %)', p_limit using errcode = '22023';
  end if;
  if p_lease_seconds is null or p_lease_seconds < 1 then
    raise exception 'claim_jobs: lease must be at least 1 second (got %)', p_lease_seconds using errcode = '22023';
  end if;
  -- A claim is one statement when nothing else is due (each statement
  -- counts on an idle worker's path from a job's arrival to its handler).
  -- Before it picks, that statement reads:
  -- - whether a lease expired and whether a scheduled job is due (most
  --   claims find neither). If one is, it picks nothing: the expired leases
  --   are reclaimed, or the due jobs join the claim index, and the claim
  --   runs again, so they compete for this claim like any other job;
  -- - the queues asked for that have a handler at all: a job of a task
  --   without one is parked when it is queued, but a job running when its
  --   queue lost its last handler comes back (retried, released, its lease
  --   expired) unparked, and must wait too;
  -- and it sets synchronous_commit off for this transaction: a claim lost
  -- in a crash only leaves its jobs queued, so its commit need not wait for
  -- the WAL flush.
  for v_try in 1..7 loop
    begin
      -- Scheduled jobs that are due join the claim index first, oldest first.
      if v_due then
        update apportion.jobs_live j
           set scheduled = false
         where j.ctid = any (array(select s.ctid from apportion.jobs_live s
                                    where s.state = 'queued' and s.scheduled and s.run_at <= now()
                                    order by s.run_at
                                    limit greatest(p_limit, 1000)
                                      for update skip locked));
      end if;
      -- Lock by ctid, update by ctid: the claim touches only the rows it takes.
      with probe as materialized (
        select not v_reclaimed and exists (select from apportion.jobs_live j
                                            where j.state = 'running' and j.locked_until < now()) as expired,
               not v_due and not v_scheduled_done
                 and exists (select from apportion.jobs_live j
                              where j.state = 'queued' and j.scheduled and j.run_at <= now()) as due,
               (select array_agg(distinct t.queue) from apportion.queue_tasks t
                 where t.queue = any (p_queues) and t.handler is not null) as queues
          from set_config('synchronous_commit', 'off', true) as s
      ),
      picked as (
        select j.ctid as tid
          from apportion.jobs_live j
         where (select not p.expired and not p.due from probe p)
           and j.state = 'queued' and not j.parked and not j.scheduled and j.run_at <= now()
           and j.queue = any ((select p.queues from probe p)::text[])
         order by j.tenant_id is not null, j.priority, j.run_at, j.id
         limit p_limit
           for update skip locked
      ),
      claimed as (
        update apportion.jobs_live j
           set state = 'running',
               attempts = j.attempts + 1,
               locked_by = p_worker_id,
               locked_until = now() + make_interval(secs => p_lease_seconds),
               started_at = now()
         where j.ctid = any (array(select tid from picked))
        returning j.id, j.tenant_id, j.queue, j.task, j.correlation_id, j.attempts
      )
      -- Collected, not returned as they come: rows already returned would
      -- stay in the result if the statement then failed and is retried.
      select p.expired, p.due, c.ids, c.tenants, c.queues, c.tasks, c.correlations, c.attempts
        into v_expired, v_due_now, v_ids, v_tenants, v_job_queues, v_tasks, v_correlations, v_attempts
        from probe p,
             (select array_agg(c.id) as ids, array_agg(c.tenant_id) as tenants, array_agg(c.queue) as queues,
                     array_agg(c.task) as tasks, array_agg(c.correlation_id) as correlations,
                     array_agg(c.attempts) as attempts
                from claimed c) c;
    exception when serialization_failure then
      -- A job this statement saw as queued was claimed, run and moved to
      -- jobs_done meanwhile (Postgres cannot follow a row into another
      -- partition). Nothing was claimed; look again.
      v_ids := null;
      continue;
    end;
    -- (Each is done once per claim: what comes due meanwhile waits for the next.)
    v_scheduled_done := v_scheduled_done or v_due;
    v_due := v_due_now;
    if v_expired then
      perform apportion.reclaim_expired_leases(p_limit);
      v_reclaimed := true;
    end if;
    exit when not (v_expired or v_due_now);
  end loop;

  return query
    select * from unnest(v_ids, v_tenants, v_job_queues, v_tasks, v_correlations, v_attempts);
end
$$;

CREATE FUNCTION apportion.compute_allocations(p_model_version text, p_event_ids uuid[], p_window_start timestamp with time zone DEFAULT NULL::timestamp with time zone, p_window_end timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(event_id uuid, channel text, allocated_revenue_cents bigint, allocation_ratio numeric, touchpoint_count integer, currency character, event_occurred_at timestamp with time zone)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET jit TO 'off'
    SET max_parallel_workers_per_gather TO '0'
    SET enable_hashagg TO 'off'
    AS $_$
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
$_$;

CREATE FUNCTION apportion.create_tenant(p_name text, p_id uuid DEFAULT gen_random_uuid()) RETURNS uuid
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  if p_name is null or btrim(p_name) = '' then
    raise exception 'create_tenant: p_name must be a non-empty name' using errcode = '22023';
  end if;
  if p_id is null then
    raise exception 'create_tenant: p_id must not be null' using errcode = '22023';
  end if;
  insert into apportion.tenants (id, name) values (p_id, p_name);
  insert into apportion.channels (tenant_id, code, name, is_direct)
  select p_id, d.code, d.name, d.is_direct from apportion_internal.default_channels() d;
  return p_id;
end
$$;

CREATE FUNCTION apportion.currency_minor_units(p_code text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case
    when p_code = any ('{BIF,CLP,DJF,GNF,ISK,JPY,KMF,KRW,PYG,RWF,UGX,UYI,VND,VUV,XAF,XOF,XPF}'::text[]) then 0
    when p_code = any ('{AED,AFN,ALL,AMD,ANG,AOA,ARS,AUD,AWG,AZN,BAM,BBD,BDT,BGN,BMD,BND,BOB,BOV,BRL,BSD,BTN,BWP,BYN,BZD,CAD,CDF,CHE,CHF,CHW,CNY,COP,COU,CRC,CUC,CUP,CVE,CZK,DKK,DOP,DZD,EGP,ERN,ETB,EUR,FJD,FKP,GBP,GEL,GHS,GIP,GMD,GTQ,GYD,HKD,HNL,HTG,HUF,IDR,ILS,INR,IRR,JMD,KES,KGS,KHR,KPW,KYD,KZT,LAK,LBP,LKR,LRD,LSL,MAD,MDL,MGA,MKD,MMK,MNT,MOP,MRU,MUR,MVR,MWK,MXN,MXV,MYR,MZN,NAD,NGN,NIO,NOK,NPR,NZD,PAB,PEN,PGK,PHP,PKR,PLN,QAR,RON,RSD,RUB,SAR,SBD,SCR,SDG,SEK,SGD,SHP,SLE,SOS,SRD,SSP,STN,SVC,SYP,SZL,THB,TJS,TMT,TOP,TRY,TTD,TWD,TZS,UAH,USD,USN,UYU,UZS,VED,VES,WST,XCD,YER,ZAR,ZMW,ZWG}'::text[]) then 2
    when p_code = any ('{BHD,IQD,JOD,KWD,LYD,OMR,TND}'::text[]) then 3
    when p_code = any ('{CLF,UYW}'::text[]) then 4
  end
$$;

CREATE FUNCTION apportion.current_tenant_allowed() RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_tenant uuid := apportion.current_tenant_id();
  v_bound boolean;
  v_this boolean;
begin
  if v_tenant is null then
    return true;
  end if;
  -- One probe of the bindings key (login, tenant_id): any binding of this
  -- login, and whether one is this tenant's.
  select count(*) > 0, coalesce(bool_or(b.tenant_id = v_tenant), false) into v_bound, v_this
    from apportion.tenant_bindings b where b.login = to_regrole(quote_ident(session_user));
  if not v_bound or v_this then
    return true;
  end if;
  raise exception 'login % may not act for tenant %: it is bound to other tenants (apportion.tenant_bindings)', session_user, v_tenant
    using errcode = '42501';
end
$$;

CREATE FUNCTION apportion.daily_channel_revenue_as_of(p_at timestamp with time zone) RETURNS TABLE(tenant_id uuid, day date, model_version text, currency character, channel text, revenue_cents numeric, event_count bigint)
    LANGUAGE sql STABLE
    AS $$
  select apportion.current_tenant_id(), (a.event_occurred_at at time zone 'UTC')::date, m.model_version, a.currency, a.channel,
         sum(a.allocated_revenue_cents)::numeric, count(*)::bigint
    from apportion.attribution_models m
   cross join lateral apportion.allocations_as_of(m.model_version, p_at) a
   group by (a.event_occurred_at at time zone 'UTC')::date, m.model_version, a.currency, a.channel
   order by 2, 3, 4, 5
$$;

CREATE FUNCTION apportion.major_units(p_minor numeric, p_currency text) RETURNS numeric
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  v_units integer := apportion.currency_minor_units(p_currency);
begin
  if v_units is null then
    raise exception 'currency % is not an ISO 4217 code with minor units', coalesce(quote_literal(p_currency), 'null')
      using errcode = '22023', hint = 'See apportion.iso_currencies() for the codes apportion accepts.';
  end if;
  return round(p_minor / (10::numeric ^ v_units), v_units);
end
$$;

CREATE VIEW apportion.daily_channel_revenue WITH (security_invoker='true') AS
 SELECT a.tenant_id,
    ((a.event_occurred_at AT TIME ZONE 'UTC'::text))::date AS day,
    a.model_version,
    a.currency,
    a.channel,
    sum(a.allocated_revenue_cents) AS revenue_cents,
    count(*) AS event_count,
    apportion.major_units(sum(a.allocated_revenue_cents), (a.currency)::text) AS revenue_major
   FROM apportion.attribution_allocations a
  GROUP BY a.tenant_id, (((a.event_occurred_at AT TIME ZONE 'UTC'::text))::date), a.model_version, a.currency, a.channel;

CREATE FUNCTION apportion.daily_channel_revenue_for(p_tenant uuid) RETURNS SETOF apportion.daily_channel_revenue
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'daily_channel_revenue_for');
begin
  return query select d.* from apportion.daily_channel_revenue d where d.tenant_id = p_tenant
                order by d.day, d.model_version, d.currency, d.channel;
  perform set_config('app.tenant_id', v_previous, true);
end
$$;

CREATE FUNCTION apportion.deactivate_model(p_model_version text) RETURNS void
    LANGUAGE plpgsql
    AS $$
declare
  v_tenant uuid := apportion.require_tenant();
begin
  perform apportion.require_model(p_model_version);
  delete from apportion.tenant_models
   where tenant_id = v_tenant and model_version = p_model_version;
end
$$;

CREATE FUNCTION apportion.enqueue(p_queue text, p_task text, p_payload jsonb DEFAULT '{}'::jsonb, p_correlation_id uuid DEFAULT NULL::uuid, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_priority integer DEFAULT 0, p_job_key text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_tenant uuid;
  v_id bigint;
begin
  -- (Checked here too: the column is a smallint, and a value past its range
  -- would fail as 22003 before the insert path's check.)
  if p_priority not between -100 and 100 then
    raise exception 'priority must be between -100 and 100 (got %)', p_priority using errcode = '22023';
  end if;
  -- System tasks run as system jobs: no tenant, whoever enqueues them.
  select case when t.tenant_scope = 'system' then null else apportion.current_tenant_id() end into v_tenant
    from apportion.queue_tasks t where t.queue = p_queue and t.task = p_task;
  if p_job_key is null then
    -- (No savepoint: nothing to catch without a key.)
    insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id, priority, run_at)
    values (v_tenant, p_queue, p_task, p_payload,
            coalesce(p_correlation_id, nullif(current_setting('app.correlation_id', true), '')::uuid),
            coalesce(p_priority, 0), coalesce(p_run_at, now()))
    returning id into v_id;
    return v_id;
  end if;
  select j.id into v_id from apportion.jobs j
   where j.state = 'queued' and j.job_key = p_job_key and j.queue = p_queue and j.task = p_task
     and j.tenant_id is not distinct from v_tenant;
  if found then
    return v_id;
  end if;
  begin
    insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id, job_key, priority, run_at)
    values (v_tenant, p_queue, p_task, p_payload,
            coalesce(p_correlation_id, nullif(current_setting('app.correlation_id', true), '')::uuid),
            p_job_key, coalesce(p_priority, 0), coalesce(p_run_at, now()))
    returning id into v_id;
  exception when unique_violation then
    -- A concurrent enqueue with the same job key won.
    select j.id into v_id from apportion.jobs j
     where j.state = 'queued' and j.job_key = p_job_key and j.queue = p_queue and j.task = p_task
       and j.tenant_id is not distinct from v_tenant;
  end;
  return v_id;
end
$$;

CREATE FUNCTION apportion.enqueue_for(p_tenant uuid, p_queue text, p_task text, p_payload jsonb DEFAULT '{}'::jsonb, p_correlation_id uuid DEFAULT NULL::uuid, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_priority integer DEFAULT 0, p_job_key text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'enqueue_for');
  v_id bigint;
begin
  v_id := apportion.enqueue(p_queue, p_task, p_payload, p_correlation_id, p_run_at, p_priority, p_job_key);
  perform set_config('app.tenant_id', v_previous, true);
  return v_id;
end
$$;

CREATE FUNCTION apportion.enqueue_many(p_queue text, p_task text, p_payloads jsonb, p_correlation_id uuid DEFAULT NULL::uuid, p_priority integer DEFAULT 0) RETURNS SETOF bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_tenant uuid;
begin
  if p_payloads is null or jsonb_typeof(p_payloads) <> 'array' then
    raise exception 'enqueue_many: payloads must be a json array of objects' using errcode = '22023';
  end if;
  if jsonb_array_length(p_payloads) = 0 then
    return;  -- no job, nothing to check
  end if;
  if jsonb_array_length(p_payloads) > 10000 then
    raise exception 'enqueue_many: at most 10000 payloads per call (got %)', jsonb_array_length(p_payloads) using errcode = '22023';
  end if;
  if p_priority not between -100 and 100 then
    raise exception 'priority must be between -100 and 100 (got %)', p_priority using errcode = '22023';
  end if;
  select case when t.tenant_scope = 'system' then null else apportion.current_tenant_id() end into v_tenant
    from apportion.queue_tasks t where t.queue = p_queue and t.task = p_task;
  return query
    insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id, priority)
    select v_tenant, p_queue, p_task, p.value,
           coalesce(p_correlation_id, nullif(current_setting('app.correlation_id', true), '')::uuid),
           coalesce(p_priority, 0)
      from jsonb_array_elements(p_payloads) with ordinality p
     order by p.ordinality
    returning id;
end
$$;

CREATE FUNCTION apportion.enter_tenant(p_tenant uuid, p_function text) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := coalesce(current_setting('app.tenant_id', true), '');
begin
  if p_tenant is null then
    raise exception '%: p_tenant is required', p_function using errcode = '22023';
  end if;
  perform set_config('app.tenant_id', p_tenant::text, true);
  return v_previous;
end
$$;

CREATE FUNCTION apportion.exact_fraction(p_a numeric, p_b numeric, OUT num numeric, OUT den numeric) RETURNS record
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select div(x.a, g.g) * sign(x.b), div(abs(x.b), g.g)
    from (select trunc(p_a * power(10::numeric, s.s)) as a, trunc(p_b * power(10::numeric, s.s)) as b
            from (select greatest(scale(p_a), scale(p_b), 0) as s) s) x
   cross join lateral (select nullif(gcd(x.a, x.b), 0) as g) g
$$;

CREATE FUNCTION apportion.explain_allocation(p_event_id uuid, p_model_version text) RETURNS TABLE(touch_id uuid, channel text, occurred_at timestamp with time zone, touch_position integer, counted boolean, reason text, weight_num numeric, weight_den numeric, weight numeric, removal_effect_num numeric, removal_effect_den numeric, channel_weight_num numeric, channel_weight_den numeric, channel_weight numeric, share_num numeric, share_den numeric, floor_cents bigint, remainder_num numeric, remainder_den numeric, tie_break_md5 text, leftover_cent boolean, allocated_revenue_cents bigint, touchpoint_count integer)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

CREATE FUNCTION apportion.explain_allocation_for(p_tenant uuid, p_event_id uuid, p_model_version text) RETURNS TABLE(touch_id uuid, channel text, occurred_at timestamp with time zone, touch_position integer, counted boolean, reason text, weight_num numeric, weight_den numeric, weight numeric, removal_effect_num numeric, removal_effect_den numeric, channel_weight_num numeric, channel_weight_den numeric, channel_weight numeric, share_num numeric, share_den numeric, floor_cents bigint, remainder_num numeric, remainder_den numeric, tie_break_md5 text, leftover_cent boolean, allocated_revenue_cents bigint, touchpoint_count integer)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'explain_allocation_for');
begin
  return query select * from apportion.explain_allocation(p_event_id, p_model_version);
  perform set_config('app.tenant_id', v_previous, true);
end
$$;

CREATE FUNCTION apportion.ingest_events_for(p_tenant uuid, p_rows jsonb) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'ingest_events_for');
  v_count bigint;
begin
  if jsonb_typeof(p_rows) is distinct from 'array' then
    raise exception 'ingest_events_for: p_rows must be a json array of events' using errcode = '22023';
  end if;
  insert into apportion.attribution_events (tenant_id, id, customer_id, occurred_at, revenue_cents, currency,
                                            external_event_id, event_type, raw_payload)
  select p_tenant, coalesce(r.id, gen_random_uuid()), r.customer_id, r.occurred_at, r.revenue_cents, r.currency,
         r.external_event_id, coalesce(r.event_type, 'purchase'), coalesce(r.raw_payload, '{}')
    from jsonb_to_recordset(p_rows) as r (id uuid, customer_id text, occurred_at timestamptz, revenue_cents bigint, currency text,
                                          external_event_id text, event_type text, raw_payload jsonb);
  get diagnostics v_count = row_count;
  perform set_config('app.tenant_id', v_previous, true);
  return v_count;
end
$$;

CREATE FUNCTION apportion.ingest_refunds_for(p_tenant uuid, p_rows jsonb) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'ingest_refunds_for');
  v_count bigint;
begin
  if jsonb_typeof(p_rows) is distinct from 'array' then
    raise exception 'ingest_refunds_for: p_rows must be a json array of refunds' using errcode = '22023';
  end if;
  insert into apportion.refunds (tenant_id, id, event_id, amount_cents, occurred_at, external_refund_id, reason)
  select p_tenant, coalesce(r.id, gen_random_uuid()), r.event_id, r.amount_cents, r.occurred_at, r.external_refund_id, r.reason
    from jsonb_to_recordset(p_rows) as r (id uuid, event_id uuid, amount_cents bigint, occurred_at timestamptz,
                                          external_refund_id text, reason text);
  get diagnostics v_count = row_count;
  perform set_config('app.tenant_id', v_previous, true);
  return v_count;
end
$$;

CREATE FUNCTION apportion.ingest_touchpoints_for(p_tenant uuid, p_rows jsonb) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'ingest_touchpoints_for');
  v_count bigint;
begin
  if jsonb_typeof(p_rows) is distinct from 'array' then
    raise exception 'ingest_touchpoints_for: p_rows must be a json array of touchpoints' using errcode = '22023';
  end if;
  insert into apportion.touchpoints (tenant_id, id, customer_id, channel, occurred_at, campaign, external_id, properties)
  select p_tenant, coalesce(r.id, gen_random_uuid()), r.customer_id, r.channel, r.occurred_at, r.campaign, r.external_id,
         coalesce(r.properties, '{}')
    from jsonb_to_recordset(p_rows) as r (id uuid, customer_id text, channel text, occurred_at timestamptz, campaign text,
                                          external_id text, properties jsonb);
  get diagnostics v_count = row_count;
  perform set_config('app.tenant_id', v_previous, true);
  return v_count;
end
$$;

CREATE FUNCTION apportion.iso_currencies() RETURNS TABLE(code text, minor_units integer, name text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  values
    ('AED', 2, 'UAE Dirham'),
    ('AFN', 2, 'Afghani'),
    ('ALL', 2, 'Lek'),
    ('AMD', 2, 'Armenian Dram'),
    ('ANG', 2, 'Netherlands Antillean Guilder'),
    ('AOA', 2, 'Kwanza'),
    ('ARS', 2, 'Argentine Peso'),
    ('AUD', 2, 'Australian Dollar'),
    ('AWG', 2, 'Aruban Florin'),
    ('AZN', 2, 'Azerbaijan Manat'),
    ('BAM', 2, 'Convertible Mark'),
    ('BBD', 2, 'Barbados Dollar'),
    ('BDT', 2, 'Taka'),
    ('BGN', 2, 'Bulgarian Lev'),
    ('BHD', 3, 'Bahraini Dinar'),
    ('BIF', 0, 'Burundi Franc'),
    ('BMD', 2, 'Bermudian Dollar'),
    ('BND', 2, 'Brunei Dollar'),
    ('BOB', 2, 'Boliviano'),
    ('BOV', 2, 'Mvdol'),
    ('BRL', 2, 'Brazilian Real'),
    ('BSD', 2, 'Bahamian Dollar'),
    ('BTN', 2, 'Ngultrum'),
    ('BWP', 2, 'Pula'),
    ('BYN', 2, 'Belarusian Ruble'),
    ('BZD', 2, 'Belize Dollar'),
    ('CAD', 2, 'Canadian Dollar'),
    ('CDF', 2, 'Congolese Franc'),
    ('CHE', 2, 'WIR Euro'),
    ('CHF', 2, 'Swiss Franc'),
    ('CHW', 2, 'WIR Franc'),
    ('CLF', 4, 'Unidad de Fomento'),
    ('CLP', 0, 'Chilean Peso'),
    ('CNY', 2, 'Yuan Renminbi'),
    ('COP', 2, 'Colombian Peso'),
    ('COU', 2, 'Unidad de Valor Real'),
    ('CRC', 2, 'Costa Rican Colon'),
    ('CUC', 2, 'Peso Convertible'),
    ('CUP', 2, 'Cuban Peso'),
    ('CVE', 2, 'Cabo Verde Escudo'),
    ('CZK', 2, 'Czech Koruna'),
    ('DJF', 0, 'Djibouti Franc'),
    ('DKK', 2, 'Danish Krone'),
    ('DOP', 2, 'Dominican Peso'),
    ('DZD', 2, 'Algerian Dinar'),
    ('EGP', 2, 'Egyptian Pound'),
    ('ERN', 2, 'Nakfa'),
    ('ETB', 2, 'Ethiopian Birr'),
    ('EUR', 2, 'Euro'),
    ('FJD', 2, 'Fiji Dollar'),
    ('FKP', 2, 'Falkland Islands Pound'),
    ('GBP', 2, 'Pound Sterling'),
    ('GEL', 2, 'Lari'),
    ('GHS', 2, 'Ghana Cedi'),
    ('GIP', 2, 'Gibraltar Pound'),
    ('GMD', 2, 'Dalasi'),
    ('GNF', 0, 'Guinean Franc'),
    ('GTQ', 2, 'Quetzal'),
    ('GYD', 2, 'Guyana Dollar'),
    ('HKD', 2, 'Hong Kong Dollar'),
    ('HNL', 2, 'Lempira'),
    ('HTG', 2, 'Gourde'),
    ('HUF', 2, 'Forint'),
    ('IDR', 2, 'Rupiah'),
    ('ILS', 2, 'New Israeli Sheqel'),
    ('INR', 2, 'Indian Rupee'),
    ('IQD', 3, 'Iraqi Dinar'),
    ('IRR', 2, 'Iranian Rial'),
    ('ISK', 0, 'Iceland Krona'),
    ('JMD', 2, 'Jamaican Dollar'),
    ('JOD', 3, 'Jordanian Dinar'),
    ('JPY', 0, 'Yen'),
    ('KES', 2, 'Kenyan Shilling'),
    ('KGS', 2, 'Som'),
    ('KHR', 2, 'Riel'),
    ('KMF', 0, 'Comorian Franc'),
    ('KPW', 2, 'North Korean Won'),
    ('KRW', 0, 'Won'),
    ('KWD', 3, 'Kuwaiti Dinar'),
    ('KYD', 2, 'Cayman Islands Dollar'),
    ('KZT', 2, 'Tenge'),
    ('LAK', 2, 'Lao Kip'),
    ('LBP', 2, 'Lebanese Pound'),
    ('LKR', 2, 'Sri Lanka Rupee'),
    ('LRD', 2, 'Liberian Dollar'),
    ('LSL', 2, 'Loti'),
    ('LYD', 3, 'Libyan Dinar'),
    ('MAD', 2, 'Moroccan Dirham'),
    ('MDL', 2, 'Moldovan Leu'),
    ('MGA', 2, 'Malagasy Ariary'),
    ('MKD', 2, 'Denar'),
    ('MMK', 2, 'Kyat'),
    ('MNT', 2, 'Tugrik'),
    ('MOP', 2, 'Pataca'),
    ('MRU', 2, 'Ouguiya'),
    ('MUR', 2, 'Mauritius Rupee'),
    ('MVR', 2, 'Rufiyaa'),
    ('MWK', 2, 'Malawi Kwacha'),
    ('MXN', 2, 'Mexican Peso'),
    ('MXV', 2, 'Mexican Unidad de Inversion (UDI)'),
    ('MYR', 2, 'Malaysian Ringgit'),
    ('MZN', 2, 'Mozambique Metical'),
    ('NAD', 2, 'Namibia Dollar'),
    ('NGN', 2, 'Naira'),
    ('NIO', 2, 'Cordoba Oro'),
    ('NOK', 2, 'Norwegian Krone'),
    ('NPR', 2, 'Nepalese Rupee'),
    ('NZD', 2, 'New Zealand Dollar'),
    ('OMR', 3, 'Rial Omani'),
    ('PAB', 2, 'Balboa'),
    ('PEN', 2, 'Sol'),
    ('PGK', 2, 'Kina'),
    ('PHP', 2, 'Philippine Peso'),
    ('PKR', 2, 'Pakistan Rupee'),
    ('PLN', 2, 'Zloty'),
    ('PYG', 0, 'Guarani'),
    ('QAR', 2, 'Qatari Rial'),
    ('RON', 2, 'Romanian Leu'),
    ('RSD', 2, 'Serbian Dinar'),
    ('RUB', 2, 'Russian Ruble'),
    ('RWF', 0, 'Rwanda Franc'),
    ('SAR', 2, 'Saudi Riyal'),
    ('SBD', 2, 'Solomon Islands Dollar'),
    ('SCR', 2, 'Seychelles Rupee'),
    ('SDG', 2, 'Sudanese Pound'),
    ('SEK', 2, 'Swedish Krona'),
    ('SGD', 2, 'Singapore Dollar'),
    ('SHP', 2, 'Saint Helena Pound'),
    ('SLE', 2, 'Leone'),
    ('SOS', 2, 'Somali Shilling'),
    ('SRD', 2, 'Surinam Dollar'),
    ('SSP', 2, 'South Sudanese Pound'),
    ('STN', 2, 'Dobra'),
    ('SVC', 2, 'El Salvador Colon'),
    ('SYP', 2, 'Syrian Pound'),
    ('SZL', 2, 'Lilangeni'),
    ('THB', 2, 'Baht'),
    ('TJS', 2, 'Somoni'),
    ('TMT', 2, 'Turkmenistan New Manat'),
    ('TND', 3, 'Tunisian Dinar'),
    ('TOP', 2, 'Pa’anga'),
    ('TRY', 2, 'Turkish Lira'),
    ('TTD', 2, 'Trinidad and Tobago Dollar'),
    ('TWD', 2, 'New Taiwan Dollar'),
    ('TZS', 2, 'Tanzanian Shilling'),
    ('UAH', 2, 'Hryvnia'),
    ('UGX', 0, 'Uganda Shilling'),
    ('USD', 2, 'US Dollar'),
    ('USN', 2, 'US Dollar (Next day)'),
    ('UYI', 0, 'Uruguay Peso en Unidades Indexadas (UI)'),
    ('UYU', 2, 'Peso Uruguayo'),
    ('UYW', 4, 'Unidad Previsional'),
    ('UZS', 2, 'Uzbekistan Sum'),
    ('VED', 2, 'Bolívar Soberano'),
    ('VES', 2, 'Bolívar Soberano'),
    ('VND', 0, 'Dong'),
    ('VUV', 0, 'Vatu'),
    ('WST', 2, 'Tala'),
    ('XAF', 0, 'CFA Franc BEAC'),
    ('XCD', 2, 'East Caribbean Dollar'),
    ('XOF', 0, 'CFA Franc BCEAO'),
    ('XPF', 0, 'CFP Franc'),
    ('YER', 2, 'Yemeni Rial'),
    ('ZAR', 2, 'Rand'),
    ('ZMW', 2, 'Zambian Kwacha'),
    ('ZWG', 2, 'Zimbabwe Gold')
$$;

CREATE FUNCTION apportion.job_status(p_job_id bigint) RETURNS TABLE(state text, attempts integer, result jsonb, error_code text, error_message text, correlation_id uuid)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  select j.state, j.attempts, j.result, j.error_code, j.error_message, j.correlation_id
    from apportion.jobs j
   where j.id = p_job_id
$$;

CREATE FUNCTION apportion.markov_paths(p_tenant uuid, p_lookback interval, p_start timestamp with time zone, p_end timestamp with time zone) RETURNS TABLE(converting boolean, path_key text, step bigint, channel text, last_step boolean)
    LANGUAGE sql STABLE
    AS $$
  with ev as materialized (
    -- (Bounds precomputed: under row level security only a plain
    -- comparison can be an index condition.)
    select e.id, e.customer_id, e.occurred_at,
           (e.occurred_at at time zone 'UTC' - p_lookback) at time zone 'UTC' as window_from
      from apportion.attribution_events e
     where e.tenant_id = p_tenant and e.occurred_at >= p_start and e.occurred_at < p_end
  ),
  converting_touch as (
    select true as converting, ev.id::text as path_key, t.channel, t.occurred_at, t.id
      from ev
      join apportion.touchpoints t
        on t.tenant_id = p_tenant and t.customer_id = ev.customer_id
       and t.occurred_at >= ev.window_from and t.occurred_at <= ev.occurred_at
  ),
  -- A touch counts for some event of its customer iff it counts for the
  -- customer's first event at or after it (event time - lookback only grows
  -- with the event's time): a running minimum over the customer's touches
  -- and events, newest first (events before touches at equal times, since
  -- a touch at the event's time counts). Events are read a few days past
  -- end + lookback (month and year lengths vary); the rule itself is
  -- allocation's, exactly.
  stream as (
    select t.customer_id, t.occurred_at, t.id, t.channel, false as is_event
      from apportion.touchpoints t
     where t.tenant_id = p_tenant and t.occurred_at >= p_start and t.occurred_at < p_end
    union all
    select e.customer_id, e.occurred_at, e.id, null, true
      from apportion.attribution_events e
     where e.tenant_id = p_tenant and e.occurred_at >= p_start
       and e.occurred_at <= (p_end at time zone 'UTC' + p_lookback + interval '4 days') at time zone 'UTC'
  ),
  next_event as (
    select s.*, min(case when s.is_event then s.occurred_at end)
                  over (partition by s.customer_id order by s.occurred_at desc, s.is_event desc
                        rows between unbounded preceding and current row) as next_event_at
      from stream s
  ),
  null_touch as (
    select false as converting, n.customer_id as path_key, n.channel, n.occurred_at, n.id
      from next_event n
     where not n.is_event
       and (n.next_event_at is null or n.occurred_at < (n.next_event_at at time zone 'UTC' - p_lookback) at time zone 'UTC')
  ),
  touch as (
    select c.*, lag(c.channel) over w as previous_channel
      from (select * from converting_touch union all select * from null_touch) c
    window w as (partition by c.converting, c.path_key order by c.occurred_at, c.id)
  )
  select t.converting, t.path_key,
         row_number() over w,
         t.channel,
         lead(t.channel) over w is null
    from touch t
   where t.previous_channel is distinct from t.channel
  window w as (partition by t.converting, t.path_key order by t.occurred_at, t.id)
$$;

CREATE FUNCTION apportion.markov_solve(p_from text[], p_to text[], p_count bigint[]) RETURNS TABLE(channel text, removal_effect_num numeric, removal_effect_den numeric, p_conversion_num numeric, p_conversion_den numeric)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_channels text[];
  k integer;
  w integer;             -- columns of the augmented matrix: 2k + 1
  a numeric[];           -- k x (2k+1), row-major in one dimension
  s numeric[];           -- start counts per channel
  v_start_total numeric := 0;
  r integer;
  v_from integer;
  v_to integer;
  v_pivot numeric;
  v_previous numeric := 1;
  v_factor numeric;
  v_tmp numeric;
  v_det numeric;
  v_t numeric := 0;
  v_s numeric;
  v_num numeric;
  v_den numeric;
  v_g numeric;
  v_p_num numeric;
  v_p_den numeric;
begin
  select coalesce(array_agg(d.x order by d.x collate "C"), '{}')
    into v_channels
    from (select distinct x from unnest(p_from || p_to) x where left(x, 1) <> '(') d;
  k := cardinality(v_channels);
  w := 2 * k + 1;
  if k = 0 then
    return;
  end if;
  a := array_fill(0::numeric, array[k * w]);
  s := array_fill(0::numeric, array[k]);
  for i in 1 .. k loop
    a[(i - 1) * w + k + i] := 1;  -- the identity block
  end loop;

  for r in 1 .. cardinality(p_from) loop
    v_from := array_position(v_channels, p_from[r]);
    v_to := array_position(v_channels, p_to[r]);
    if p_from[r] = '(start)' then
      if v_to is null then
        raise exception 'markov_solve: a path must start at a channel (got (start) -> %)', p_to[r] using errcode = '22023';
      end if;
      s[v_to] := s[v_to] + p_count[r];
      v_start_total := v_start_total + p_count[r];
    elsif v_from is null then
      raise exception 'markov_solve: unknown state %', p_from[r] using errcode = '22023';
    else
      a[(v_from - 1) * w + v_from] := a[(v_from - 1) * w + v_from] + p_count[r];
      if v_to is not null then
        a[(v_from - 1) * w + v_to] := a[(v_from - 1) * w + v_to] - p_count[r];
      elsif p_to[r] = '(conversion)' then
        a[(v_from - 1) * w + w] := a[(v_from - 1) * w + w] + p_count[r];
      elsif p_to[r] is distinct from '(null)' then
        raise exception 'markov_solve: unknown state %', p_to[r] using errcode = '22023';
      end if;
    end if;
  end loop;
  if v_start_total = 0 then
    raise exception 'markov_solve: no transitions out of (start)' using errcode = '22023';
  end if;

  -- Fraction-free Gauss-Jordan: for each pivot row c, every other row i
  -- becomes (a_cc * row_i - a_ic * row_c) / previous pivot, exactly.
  for c in 1 .. k loop
    r := c;
    while a[(r - 1) * w + c] = 0 loop
      r := r + 1;
      if r > k then
        raise exception 'markov_solve: the chain has a channel with no way to absorption' using errcode = 'XX000';
      end if;
    end loop;
    if r <> c then
      for j in 1 .. w loop
        v_tmp := a[(r - 1) * w + j];
        a[(r - 1) * w + j] := a[(c - 1) * w + j];
        a[(c - 1) * w + j] := v_tmp;
      end loop;
    end if;
    v_pivot := a[(c - 1) * w + c];
    for i in 1 .. k loop
      continue when i = c;
      v_factor := a[(i - 1) * w + c];
      for j in 1 .. w loop
        continue when j = c;
        v_tmp := v_pivot * a[(i - 1) * w + j] - v_factor * a[(c - 1) * w + j];
        a[(i - 1) * w + j] := div(v_tmp, v_previous);
        if a[(i - 1) * w + j] * v_previous <> v_tmp then
          raise exception 'markov_solve: inexact elimination step (row %, column %)', i, j using errcode = 'XX000';
        end if;
      end loop;
      a[(i - 1) * w + c] := 0;
    end loop;
    v_previous := v_pivot;
  end loop;
  -- Now a = [det I | det G | det x] (the same det on the diagonal of every row).
  v_det := v_previous;

  for j in 1 .. k loop
    v_t := v_t + s[j] * a[(j - 1) * w + w];
  end loop;
  -- P = T / (det * N_start), T scaled by det.
  v_p_num := v_t;
  v_p_den := v_det * v_start_total;
  if v_p_den < 0 then
    v_p_num := -v_p_num;
    v_p_den := -v_p_den;
  end if;
  v_g := gcd(v_p_num, v_p_den);
  v_p_num := div(v_p_num, v_g);
  v_p_den := div(v_p_den, v_g);

  for c in 1 .. k loop
    channel := v_channels[c];
    p_conversion_num := v_p_num;
    p_conversion_den := v_p_den;
    if v_t = 0 then
      -- Nothing converts: no channel can lose anything.
      removal_effect_num := 0;
      removal_effect_den := 1;
    else
      v_s := 0;
      for j in 1 .. k loop
        v_s := v_s + s[j] * a[(j - 1) * w + k + c];
      end loop;
      v_num := a[(c - 1) * w + w] * v_s;
      v_den := a[(c - 1) * w + k + c] * v_t;
      if v_den < 0 then
        v_num := -v_num;
        v_den := -v_den;
      end if;
      v_g := gcd(v_num, v_den);
      if v_g = 0 then
        v_g := 1;
      end if;
      removal_effect_num := div(v_num, v_g);
      removal_effect_den := div(v_den, v_g);
    end if;
    return next;
  end loop;
end
$$;

CREATE FUNCTION apportion.markov_summary(p_model_version text) RETURNS TABLE(channel text, transitions_in bigint, transitions_out bigint, removal_effect_num numeric, removal_effect_den numeric, removal_effect numeric, share_num numeric, share_den numeric, share numeric, p_conversion_num numeric, p_conversion_den numeric, p_conversion numeric)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_trained apportion.trained_models;
begin
  perform apportion.require_model(p_model_version);
  v_trained := apportion.require_trained(p_model_version);
  return query
  select e.channel,
         coalesce((select sum(t.transition_count) from apportion.markov_transitions t
                    where t.tenant_id = e.tenant_id and t.model_version = e.model_version and t.to_state = e.channel), 0)::bigint,
         coalesce((select sum(t.transition_count) from apportion.markov_transitions t
                    where t.tenant_id = e.tenant_id and t.model_version = e.model_version and t.from_state = e.channel), 0)::bigint,
         e.removal_effect_num, e.removal_effect_den,
         div(e.removal_effect_num * 2000000 + e.removal_effect_den, 2 * e.removal_effect_den) * 0.000001,
         sh.num, sh.den,
         div(sh.num * 2000000 + sh.den, 2 * sh.den) * 0.000001,
         v_trained.p_conversion_num, v_trained.p_conversion_den,
         div(v_trained.p_conversion_num * 2000000 + v_trained.p_conversion_den, 2 * v_trained.p_conversion_den) * 0.000001
    from apportion.markov_removal_effects e
   cross join lateral (
     select sum(x.weight) as total from apportion.markov_removal_effects x
      where x.tenant_id = e.tenant_id and x.model_version = e.model_version
   ) tot
   cross join lateral (
     select case when tot.total = 0 then 0 else div(e.weight, gcd(e.weight, tot.total)) end as num,
            case when tot.total = 0 then 1 else div(tot.total, gcd(e.weight, tot.total)) end as den
   ) sh
   where e.tenant_id = v_trained.tenant_id and e.model_version = p_model_version
   order by e.channel collate "C";
end
$$;

CREATE FUNCTION apportion.markov_training_window(p_params jsonb, OUT training_start timestamp with time zone, OUT training_end timestamp with time zone) RETURNS record
    LANGUAGE plpgsql IMMUTABLE
    AS $$
begin
  training_start := apportion.param_timestamp(p_params, 'training_start');
  training_end := apportion.param_timestamp(p_params, 'training_end');
  if training_end <= training_start then
    raise exception 'model params: training_end (%) must be after training_start (%)',
      p_params ->> 'training_end', p_params ->> 'training_start' using errcode = '22023';
  end if;
end
$$;

CREATE FUNCTION apportion.markov_transition_counts(p_tenant uuid, p_lookback interval, p_start timestamp with time zone, p_end timestamp with time zone) RETURNS TABLE(from_state text, to_state text, transition_count bigint)
    LANGUAGE sql STABLE
    AS $$
  select v.from_state, v.to_state, count(*)
    from (select p.*, lag(p.channel) over (partition by p.converting, p.path_key order by p.step) as previous_channel
            from apportion.markov_paths(p_tenant, p_lookback, p_start, p_end) p) p
   cross join lateral (
     values (coalesce(p.previous_channel, '(start)'), p.channel),
            (p.channel, case when not p.last_step then null
                             when p.converting then '(conversion)' else '(null)' end)
   ) v (from_state, to_state)
   where v.to_state is not null
   group by v.from_state, v.to_state
$$;

CREATE FUNCTION apportion.mask_payload_values(p_message text, p_payload jsonb) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
declare
  v_message text := p_message;
  v_value text;
begin
  if v_message is null then
    return null;
  end if;
  if jsonb_typeof(p_payload) in ('object', 'array') then
    for v_value in
      -- Longest first, so that no value is masked only in part.
      select v.value from (
        select distinct s.value #>> '{}' as value
          from jsonb_path_query(p_payload, 'strict $.** ? (@.type() == "string" || @.type() == "number")') s (value)
      ) v
       where length(v.value) >= 3
       order by length(v.value) desc, v.value
    loop
      v_message := replace(v_message, v_value, '…');
    end loop;
  end if;
  v_message := regexp_replace(v_message, '''[^'']*''', '''…''', 'g');
  return regexp_replace(v_message, '"[^"]*"', '"…"', 'g');
end
$_$;

CREATE FUNCTION apportion.model_lookback(p_params jsonb) RETURNS interval
    LANGUAGE sql IMMUTABLE
    AS $$
  select apportion.param_interval(p_params, 'lookback', interval '30 days')
$$;

CREATE FUNCTION apportion.open_failures(p_correlation_id uuid DEFAULT NULL::uuid, p_limit integer DEFAULT 50) RETURNS TABLE(job_id bigint, tenant_id uuid, queue text, task text, error_code text, error_message text, attempts integer, correlation_id uuid, failed_at timestamp with time zone)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  select f.job_id, f.tenant_id, f.queue, f.task, f.error_code,
         apportion.mask_payload_values(f.error_message, f.payload), f.attempts, f.correlation_id, f.failed_at
    from apportion.worker_failed_jobs f
   where f.status = 'open' and (p_correlation_id is null or f.correlation_id = p_correlation_id)
   order by f.failed_at desc, f.id desc
   limit least(greatest(coalesce(p_limit, 50), 1), 1000)
$$;

CREATE FUNCTION apportion.param_interval(p_params jsonb, p_key text, p_default interval) RETURNS interval
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v jsonb := p_params -> p_key;
  v_interval interval;
begin
  if v is null then
    return p_default;
  end if;
  if jsonb_typeof(v) <> 'string' then
    raise exception 'model params: % must be an interval as text, like "30 days" (got %)', p_key, v
      using errcode = '22023';
  end if;
  begin
    v_interval := (v #>> '{}')::interval;
  exception when others then
    raise exception 'model params: % must be an interval as text, like "30 days" (got %)', p_key, v
      using errcode = '22023';
  end;
  if v_interval <= interval '0' then
    raise exception 'model params: % must be positive (got %)', p_key, v using errcode = '22023';
  end if;
  -- Bounded, so that no event's window leaves the timestamp range (events
  -- and touches lie in years 1..9999).
  if v_interval > interval '10 years' then
    raise exception 'model params: % must be at most 10 years (got %)', p_key, v using errcode = '22023';
  end if;
  return v_interval;
end
$$;

CREATE FUNCTION apportion.param_share(p_params jsonb, p_key text, p_default numeric) RETURNS numeric
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v jsonb := p_params -> p_key;
begin
  if v is null then
    return p_default;
  end if;
  if jsonb_typeof(v) <> 'number' or (v::text)::numeric < 0 or (v::text)::numeric > 1 then
    raise exception 'model params: % must be a number between 0 and 1 (got %)', p_key, v using errcode = '22023';
  end if;
  return (v::text)::numeric;
end
$$;

CREATE FUNCTION apportion.param_timestamp(p_params jsonb, p_key text) RETURNS timestamp with time zone
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
declare
  v jsonb := p_params -> p_key;
  v_text text;
  v_at timestamptz;
begin
  if v is null then
    raise exception 'model params: % is required, an ISO-8601 timestamp like "2025-06-01T00:00:00Z"', p_key
      using errcode = '22023';
  end if;
  v_text := v #>> '{}';
  if jsonb_typeof(v) <> 'string'
     or v_text !~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$' then
    raise exception 'model params: % must be an ISO-8601 timestamp like "2025-06-01T00:00:00Z" (got %)', p_key, v
      using errcode = '22023';
  end if;
  begin
    if v_text ~ '(Z|[+-]\d{2}(:?\d{2})?)$' and v_text ~ 'T|\s' then
      v_at := v_text::timestamptz;
    else
      v_at := v_text::timestamp at time zone 'UTC';
    end if;
  exception when others then
    raise exception 'model params: % must be an ISO-8601 timestamp like "2025-06-01T00:00:00Z" (got %)', p_key, v
      using errcode = '22023';
  end;
  if v_at < timestamptz '0001-01-01 00:00:00+00' or v_at >= timestamptz '10000-01-01 00:00:00+00' then
    raise exception 'model params: % must lie in years 1 to 9999 (got %)', p_key, v using errcode = '22023';
  end if;
  return v_at;
end
$_$;

CREATE FUNCTION apportion.payload_keys_only(p_payload jsonb, p_allowed text[], p_task text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v_extra text;
begin
  select string_agg(k, ', ') into v_extra from jsonb_object_keys(p_payload) k where not k = any (p_allowed);
  if v_extra is not null then
    raise exception '%: unexpected payload field(s) %; allowed: %', p_task, v_extra,
      coalesce(nullif(array_to_string(p_allowed, ', '), ''), 'none') using errcode = '22023';
  end if;
end
$$;

CREATE FUNCTION apportion.payload_text(p_payload jsonb, p_key text, p_task text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    AS $$
begin
  if not (p_payload ? p_key) then
    raise exception '%: payload.% is required', p_task, p_key using errcode = '22023';
  end if;
  if jsonb_typeof(p_payload -> p_key) <> 'string' then
    raise exception '%: payload.% must be a string (got %)', p_task, p_key, p_payload -> p_key using errcode = '22023';
  end if;
  return p_payload ->> p_key;
end
$$;

CREATE FUNCTION apportion.payload_timestamptz(p_payload jsonb, p_key text, p_task text) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v text := apportion.payload_text(p_payload, p_key, p_task);
begin
  return v::timestamptz;
exception when others then
  raise exception '%: payload.% must be an ISO-8601 timestamp (got %)', p_task, p_key, quote_literal(v) using errcode = '22023';
end
$$;

CREATE FUNCTION apportion.payload_uuid(p_payload jsonb, p_key text, p_task text) RETURNS uuid
    LANGUAGE plpgsql IMMUTABLE
    AS $$
declare
  v text := apportion.payload_text(p_payload, p_key, p_task);
begin
  return v::uuid;
exception when invalid_text_representation then
  raise exception '%: payload.% must be a uuid (got %)', p_task, p_key, quote_literal(v) using errcode = '22023';
end
$$;

CREATE FUNCTION apportion.pending_allocations_overview() RETURNS TABLE(model_version text, pending bigint, oldest_pending_seconds numeric)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  select p.model_version, count(*), round(extract(epoch from now() - min(p.enqueued_at)), 3)
    from apportion.pending_allocations p
   group by p.model_version
   order by p.model_version
$$;

CREATE FUNCTION apportion.prune_jobs(p_retention interval DEFAULT '7 days'::interval) RETURNS TABLE(jobs_deleted bigint, failures_deleted bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  if p_retention is null or p_retention < interval '0' then
    raise exception 'prune_jobs: retention must be a non-negative interval (got %)', p_retention using errcode = '22023';
  end if;
  return query
  with settled as (
    delete from apportion.worker_failed_jobs f
     where f.status <> 'open' and f.settled_at < now() - p_retention
    returning f.job_id
  ),
  done as (
    delete from apportion.jobs_done j
     where j.finished_at < now() - p_retention
       and (j.state = 'succeeded'
            or not exists (select from apportion.worker_failed_jobs f where f.job_id = j.id and f.status = 'open'))
    returning 1
  )
  select (select count(*) from done), (select count(*) from settled);
end
$$;

CREATE FUNCTION apportion.queue_overview() RETURNS TABLE(queue text, queued bigint, queued_runnable bigint, running bigint, oldest_runnable_seconds numeric, open_failures bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  select q.queue,
         count(j.id) filter (where j.state = 'queued'),
         count(j.id) filter (where j.state = 'queued' and j.run_at <= now()),
         count(j.id) filter (where j.state = 'running'),
         round(extract(epoch from now() - min(j.run_at) filter (where j.state = 'queued' and j.run_at <= now())), 3),
         (select count(*) from apportion.worker_failed_jobs f where f.queue = q.queue and f.status = 'open')
    from (select distinct t.queue from apportion.queue_tasks t) q
    left join apportion.jobs_live j on j.queue = q.queue
   group by q.queue
   order by q.queue
$$;

CREATE FUNCTION apportion.reclaim_expired_leases(p_limit integer DEFAULT 1000) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_job record;
  v_count integer := 0;
  v_entry jsonb;
  v_message text;
  v_queues text[] := '{}'::text[];
begin
  for v_job in
    select j.id, j.queue, j.attempts, j.max_attempts, j.locked_by, j.started_at
      from apportion.jobs_live j
     where j.state = 'running' and j.locked_until < now()
     order by j.locked_until
     limit p_limit
       for update skip locked
  loop
    v_entry := jsonb_build_object('attempt', v_job.attempts, 'worker', v_job.locked_by, 'started_at', v_job.started_at,
                                  'finished_at', now(), 'outcome', 'lease_expired');
    if v_job.attempts < v_job.max_attempts then
      update apportion.jobs_live j
         set state = 'queued',
             run_at = now(),
             locked_by = null,
             locked_until = null,
             error_code = 'AP002',
             error_message = format('lease expired: worker %s stopped before finishing', j.locked_by),
             attempt_log = j.attempt_log || v_entry
       where j.id = v_job.id;
      v_queues := v_queues || v_job.queue;
    else
      v_message := format('lease expired on attempt %s of %s: worker %s stopped before finishing',
                          v_job.attempts, v_job.max_attempts, v_job.locked_by);
      update apportion.jobs j
         set state = 'failed',
             finished_at = now(),
             locked_by = null,
             locked_until = null,
             error_code = 'AP002',
             error_message = v_message,
             attempt_log = j.attempt_log
                           || (v_entry || jsonb_build_object('outcome', 'failed', 'error_code', 'AP002', 'error_message', v_message))
       where j.id = v_job.id and j.state = 'running';
    end if;
    v_count := v_count + 1;
  end loop;
  -- Listeners wake for the names of the queues they work.
  perform pg_notify('apportion_jobs', q.queue) from (select distinct unnest(v_queues) as queue) q;
  return v_count;
end
$$;

CREATE FUNCTION apportion.recompute_window(p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_model_version text) RETURNS TABLE(event_count bigint, allocation_count bigint)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

CREATE FUNCTION apportion.recompute_window_for(p_tenant uuid, p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_model_version text) RETURNS TABLE(event_count bigint, allocation_count bigint)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'recompute_window_for');
begin
  return query select * from apportion.recompute_window(p_window_start, p_window_end, p_model_version);
  perform set_config('app.tenant_id', v_previous, true);
end
$$;

CREATE FUNCTION apportion.register_model(p_model_version text, p_kind text, p_params jsonb DEFAULT '{}'::jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
declare
  v_existing apportion.attribution_models;
  v_params record;
  v_unknown text[];
begin
  if p_model_version is null or p_model_version !~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$' then
    raise exception 'register_model: model_version must be 1-64 characters of letters, digits and ._+- starting with a letter or digit (got %)', coalesce(quote_literal(p_model_version), 'null')
      using errcode = '22023';
  end if;
  select * into v_params from apportion.resolve_model_params(p_kind, coalesce(p_params, 'null'::jsonb));

  -- Channels must be known: in the default taxonomy or some tenant's.
  select array_agg(c) into v_unknown
    from unnest(array[v_params.fallback_channel] || coalesce(v_params.split_channels, array[]::text[])) c
   where not exists (select from apportion_internal.default_channels() d where d.code = c)
     and not exists (select from apportion.channels ch where ch.code = c);
  if v_unknown is not null then
    raise exception 'register_model: unknown channel(s) %: not in the default taxonomy nor any tenant''s', array_to_string(v_unknown, ', ')
      using errcode = '22023';
  end if;

  select * into v_existing from apportion.attribution_models where model_version = p_model_version for update;
  if found then
    if v_existing.kind = p_kind and v_existing.params = p_params then
      return;
    end if;
    raise exception 'register_model: model version % is already registered as % %; a model version is immutable, register a new version instead',
      p_model_version, v_existing.kind, v_existing.params using errcode = '23505';
  end if;
  insert into apportion.attribution_models (model_version, kind, params) values (p_model_version, p_kind, p_params);
end
$_$;

CREATE FUNCTION apportion.release_jobs(p_worker_id text, p_job_ids bigint[]) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_count integer;
  v_queues text[];
begin
  with released as (
    update apportion.jobs_live j
       set state = 'queued',
           attempts = j.attempts - 1,
           locked_by = null,
           locked_until = null,
           run_at = now()
     where j.id in (select l.id from apportion.jobs_live l
                     where l.id = any (p_job_ids) and l.state = 'running' and l.locked_by = p_worker_id
                       for update skip locked)
    returning j.queue
  )
  select count(*), array_agg(distinct r.queue) into v_count, v_queues from released r;
  -- Listeners wake for the names of the queues they work.
  perform pg_notify('apportion_jobs', q.queue) from unnest(v_queues) as q (queue);
  return v_count;
end
$$;

CREATE FUNCTION apportion.replay_failed_job(p_job_id bigint) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_failure apportion.worker_failed_jobs;
  v_new_id bigint;
begin
  select * into v_failure from apportion.worker_failed_jobs f
   where f.job_id = p_job_id and f.status = 'open'
   order by f.id desc limit 1
     for update;
  if not found then
    raise exception 'replay_failed_job: no open failure for job % visible to the current tenant', p_job_id
      using errcode = '22023';
  end if;
  insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id)
  values (v_failure.tenant_id, v_failure.queue, v_failure.task, v_failure.payload, v_failure.correlation_id)
  returning id into v_new_id;
  update apportion.worker_failed_jobs f
     set status = 'replayed', replayed_job_id = v_new_id, settled_at = now()
   where f.id = v_failure.id;
  return v_new_id;
end
$$;

CREATE FUNCTION apportion.require_as_of(p_model_version text, p_at timestamp with time zone) RETURNS uuid
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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

CREATE TABLE apportion.attribution_models (
    model_version text NOT NULL,
    kind text NOT NULL,
    params jsonb DEFAULT '{}'::jsonb NOT NULL,
    registered_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT attribution_models_kind_known CHECK ((kind = ANY (ARRAY['last_touch'::text, 'last_non_direct'::text, 'first_touch'::text, 'linear'::text, 'time_decay'::text, 'position_based'::text, 'fixed_split'::text, 'markov'::text]))),
    CONSTRAINT attribution_models_params_is_object CHECK ((jsonb_typeof(params) = 'object'::text)),
    CONSTRAINT attribution_models_version_format CHECK ((model_version ~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$'::text))
);

CREATE FUNCTION apportion.require_model(p_model_version text) RETURNS apportion.attribution_models
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_model apportion.attribution_models;
begin
  select * into v_model from apportion.attribution_models where model_version = p_model_version;
  if not found then
    raise exception 'model version % is not registered', coalesce(quote_literal(p_model_version), 'null')
      using errcode = '22023';
  end if;
  return v_model;
end
$$;

CREATE FUNCTION apportion.require_tenant() RETURNS uuid
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_tenant uuid := apportion.current_tenant_id();
begin
  if v_tenant is null then
    raise exception 'no tenant set: run select set_config(''app.tenant_id'', ''<tenant uuid>'', true) in this transaction first'
      using errcode = '42501';
  end if;
  return v_tenant;
end
$$;

CREATE TABLE apportion.trained_models (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    model_version text NOT NULL,
    path_count bigint NOT NULL,
    conversion_count bigint NOT NULL,
    p_conversion_num numeric NOT NULL,
    p_conversion_den numeric NOT NULL,
    trained_at timestamp with time zone DEFAULT now() NOT NULL,
    correlation_id uuid,
    CONSTRAINT trained_models_conversion_count_in_range CHECK (((conversion_count >= 0) AND (conversion_count <= path_count))),
    CONSTRAINT trained_models_p_conversion_den_positive CHECK ((p_conversion_den > (0)::numeric)),
    CONSTRAINT trained_models_path_count_positive CHECK ((path_count > 0))
);

ALTER TABLE ONLY apportion.trained_models FORCE ROW LEVEL SECURITY;

CREATE FUNCTION apportion.require_trained(p_model_version text) RETURNS apportion.trained_models
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_tenant uuid := apportion.require_tenant();
  v_trained apportion.trained_models;
begin
  select * into v_trained from apportion.trained_models t
   where t.tenant_id = v_tenant and t.model_version = p_model_version;
  if not found then
    raise exception 'model version % (kind markov) is not trained for the current tenant', quote_literal(p_model_version)
      using errcode = '55000',
            hint = format('Call apportion.train_model(%L) or enqueue attribution.train_model {"model_version": %s} first.',
                          p_model_version, to_jsonb(p_model_version));
  end if;
  return v_trained;
end
$$;

CREATE FUNCTION apportion.resolve_failed_job(p_job_id bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  update apportion.worker_failed_jobs f
     set status = 'resolved', settled_at = now()
   where f.job_id = p_job_id and f.status = 'open';
  if not found then
    raise exception 'resolve_failed_job: no open failure for job % visible to the current tenant', p_job_id
      using errcode = '22023';
  end if;
end
$$;

CREATE FUNCTION apportion.resolve_model_params(p_kind text, p_params jsonb) RETURNS TABLE(lookback interval, fallback_channel text, half_life_seconds numeric, first_share numeric, last_share numeric, split_channels text[], split_weights numeric[])
    LANGUAGE plpgsql IMMUTABLE
    AS $_$
declare
  v_allowed text[] := array['lookback', 'fallback_channel'];
  v_key text;
  v_channels jsonb;
  v_weights jsonb;
  v_code text;
begin
  if p_kind is null or p_kind not in ('last_touch', 'last_non_direct', 'first_touch', 'linear',
                                      'time_decay', 'position_based', 'fixed_split', 'markov') then
    raise exception 'model kind % is unknown; known kinds: last_touch, last_non_direct, first_touch, linear, time_decay, position_based, fixed_split, markov', coalesce(quote_literal(p_kind), 'null')
      using errcode = '22023';
  end if;
  if p_params is null or jsonb_typeof(p_params) <> 'object' then
    raise exception 'model params must be a json object (got %)', coalesce(p_params::text, 'null') using errcode = '22023';
  end if;

  v_allowed := v_allowed || case p_kind
    when 'time_decay' then array['half_life']
    when 'position_based' then array['first', 'last']
    when 'fixed_split' then array['channels', 'weights']
    when 'markov' then array['training_start', 'training_end']
    else array[]::text[] end;
  for v_key in select jsonb_object_keys(p_params) loop
    if not v_key = any (v_allowed) then
      raise exception 'model params: % is not a parameter of kind % (allowed: %)', v_key, p_kind, array_to_string(v_allowed, ', ')
        using errcode = '22023';
    end if;
  end loop;

  lookback := apportion.model_lookback(p_params);
  fallback_channel := coalesce(p_params ->> 'fallback_channel', 'unattributed');
  if jsonb_typeof(p_params -> 'fallback_channel') is distinct from 'string' and p_params ? 'fallback_channel'
     or fallback_channel !~ '^[a-z][a-z0-9_]{0,62}$' then
    raise exception 'model params: fallback_channel must be a channel code (got %)', p_params -> 'fallback_channel'
      using errcode = '22023';
  end if;

  if p_kind = 'time_decay' then
    half_life_seconds := extract(epoch from apportion.param_interval(p_params, 'half_life', interval '7 days'));
  end if;

  if p_kind = 'markov' then
    -- The training window is read by train_model (markov_training_window);
    -- here it is only validated.
    perform apportion.markov_training_window(p_params);
  end if;

  if p_kind = 'position_based' then
    first_share := apportion.param_share(p_params, 'first', 0.4);
    last_share := apportion.param_share(p_params, 'last', 0.4);
    if first_share + last_share > 1 then
      raise exception 'model params: first + last must not exceed 1 (got % + % = %)', first_share, last_share, first_share + last_share
        using errcode = '22023';
    end if;
  end if;

  if p_kind = 'fixed_split' then
    v_channels := p_params -> 'channels';
    if v_channels is null or jsonb_typeof(v_channels) <> 'array' or jsonb_array_length(v_channels) = 0 then
      raise exception 'model params: fixed_split needs channels, a non-empty array of channel codes' using errcode = '22023';
    end if;
    for v_code in select value #>> '{}' from jsonb_array_elements(v_channels) loop
      if v_code is null or v_code !~ '^[a-z][a-z0-9_]{0,62}$' then
        raise exception 'model params: channels must hold channel codes (got %)', v_channels using errcode = '22023';
      end if;
    end loop;
    select array_agg(value #>> '{}' order by ordinality) into split_channels
      from jsonb_array_elements(v_channels) with ordinality;
    if (select count(distinct c) from unnest(split_channels) c) <> cardinality(split_channels) then
      raise exception 'model params: channels must not repeat a channel (got %)', v_channels using errcode = '22023';
    end if;
    v_weights := p_params -> 'weights';
    if v_weights is null then
      -- Equal shares: exact fractions are kept by the engine (weight = 1/n).
      split_weights := null;
    else
      if jsonb_typeof(v_weights) <> 'array' or jsonb_array_length(v_weights) <> cardinality(split_channels) then
        raise exception 'model params: weights must be an array with one number per channel (% channels, got %)', cardinality(split_channels), v_weights
          using errcode = '22023';
      end if;
      if exists (select from jsonb_array_elements(v_weights) w where jsonb_typeof(w) <> 'number' or (w::text)::numeric < 0) then
        raise exception 'model params: weights must be non-negative numbers (got %)', v_weights using errcode = '22023';
      end if;
      select array_agg((value::text)::numeric order by ordinality) into split_weights
        from jsonb_array_elements(v_weights) with ordinality;
      if (select sum(w) from unnest(split_weights) w) <> 1 then
        raise exception 'model params: weights must sum to exactly 1 (got %, sum %)', v_weights, (select sum(w) from unnest(split_weights) w)
          using errcode = '22023';
      end if;
    end if;
  end if;
  return next;
end
$_$;

CREATE FUNCTION apportion.run_jobs(p_worker_id text, p_job_ids bigint[]) RETURNS SETOF apportion.job_outcome
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_outcome text;
  v_job record;
  v_result jsonb;
  v_started timestamptz;
  v_state text;
  v_message text;
  v_entry jsonb;
  v_ok_ids bigint[] := '{}'::bigint[];
  v_ok_results jsonb[] := '{}'::jsonb[];
  v_ok_started timestamptz[] := '{}'::timestamptz[];
  v_ok_finished timestamptz[] := '{}'::timestamptz[];
  v_tenant text := coalesce(current_setting('app.tenant_id', true), '');
  v_nestloop text := current_setting('enable_nestloop');
  v_want text;
  v_canceled boolean := false;
begin
  for v_job in
    select j.id, j.tenant_id, j.queue, j.task, j.payload, j.correlation_id, j.attempts, j.max_attempts
      from apportion.jobs j
     where j.id = any (p_job_ids) and j.state = 'running' and j.locked_by = p_worker_id
     order by j.priority, j.run_at, j.id
       for update of j
  loop
    -- The tenant stays the caller's (RLS showed only its jobs and system
    -- jobs); system jobs run with no tenant. Each setting is compared with
    -- the live one, not the previous job's, so a handler that changed it
    -- cannot hand its value on to the next job.
    v_want := case when v_job.tenant_id is null then '' else v_tenant end;
    if current_setting('app.tenant_id', true) is distinct from v_want then
      perform set_config('app.tenant_id', v_want, true);
    end if;
    v_want := coalesce(v_job.correlation_id::text, '');
    if current_setting('app.correlation_id', true) is distinct from v_want then
      perform set_config('app.correlation_id', v_want, true);
    end if;
    v_started := clock_timestamp();
    begin
      v_result := apportion.run_task(v_job.queue, v_job.task, v_job.payload);
      v_ok_ids := v_ok_ids || v_job.id;
      v_ok_results := v_ok_results || v_result;
      v_ok_started := v_ok_started || v_started;
      v_ok_finished := v_ok_finished || clock_timestamp();
      continue;
    exception when others or query_canceled then
      -- (OTHERS alone does not catch a statement timeout or cancel.)
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
    end;
    -- The handler's work is rolled back; record the attempt. Errors of
    -- classes 22, 23, 42 and AP would fail the same way again.
    v_outcome := case when left(v_state, 2) not in ('22', '23', '42', 'AP') and v_job.attempts < v_job.max_attempts
                      then 'retry' else 'failed' end;
    v_entry := jsonb_build_object('attempt', v_job.attempts, 'worker', p_worker_id, 'started_at', v_started,
                                  'finished_at', clock_timestamp(), 'outcome', v_outcome,
                                  'error_code', v_state, 'error_message', v_message);
    update apportion.jobs j
       set state = case v_outcome when 'retry' then 'queued' else 'failed' end,
           run_at = case v_outcome when 'retry'
                      then now() + least(interval '1 hour',
                                         interval '1 second' * power(2, v_job.attempts - 1) * (0.75 + random() * 0.5))
                      else j.run_at end,
           finished_at = case v_outcome when 'retry' then null else clock_timestamp() end,
           locked_by = null,
           locked_until = null,
           error_code = v_state,
           error_message = v_message,
           attempt_log = j.attempt_log || v_entry
     where j.id = v_job.id and j.state = 'running';
    return next row(v_job.id, v_outcome, v_job.attempts,
                    round(extract(epoch from clock_timestamp() - v_started) * 1000, 3),
                    v_state, apportion.mask_payload_values(v_message, v_job.payload))::apportion.job_outcome;
    if v_state = '57014' then
      -- Canceled (the orchestrator's job timeout, or an operator's
      -- pg_cancel_backend): this job is retried or failed as above, and the
      -- batch stops here, so the statement ends and the runner is free.
      v_canceled := true;
      exit;
    end if;
  end loop;
  if v_canceled then
    -- The jobs not started go back, unstarted: the attempt is not counted.
    update apportion.jobs j
       set state = 'queued', attempts = j.attempts - 1, locked_by = null, locked_until = null, run_at = now()
     where j.id = any (p_job_ids) and j.state = 'running' and j.locked_by = p_worker_id and not j.id = any (v_ok_ids);
  end if;
  perform set_config('app.tenant_id', v_tenant, true), set_config('app.correlation_id', '', true);

  -- Every success in one statement. Nested loops are off for it: right
  -- after autovacuum analyzed a momentarily empty jobs_live, the planner
  -- would join the batch by scanning every running job once per success.
  perform set_config('enable_nestloop', 'off', true);
  return query
  update apportion.jobs j
     set state = 'succeeded',
         result = r.result,
         finished_at = r.finished_at,
         locked_by = null,
         locked_until = null,
         error_code = null,
         error_message = null,
         attempt_log = j.attempt_log
                       || jsonb_build_object('attempt', j.attempts, 'worker', p_worker_id, 'started_at', r.started_at,
                                             'finished_at', r.finished_at, 'outcome', 'succeeded')
    from unnest(v_ok_ids, v_ok_results, v_ok_started, v_ok_finished) as r (id, result, started_at, finished_at)
   -- (j.id = any too: an index condition, so a small batch probes its rows.)
   where j.id = r.id and j.id = any (v_ok_ids) and j.state = 'running'
  returning j.id, 'succeeded'::text, j.attempts, round(extract(epoch from r.finished_at - r.started_at) * 1000, 3),
            null::text, null::text;
  perform set_config('enable_nestloop', v_nestloop, true);
end
$$;

CREATE FUNCTION apportion.run_task(p_queue text, p_task text, p_payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    AS $$
begin
  case p_queue || '.' || p_task
    when 'attribution.allocate_event' then
      if apportion.current_tenant_id() is null then raise exception 'task %.% needs a tenant: its job carries none', p_queue, p_task using errcode = '42501'; end if;
      return apportion.task_allocate_event(p_payload);
    when 'attribution.allocate_pending' then
      if apportion.current_tenant_id() is null then raise exception 'task %.% needs a tenant: its job carries none', p_queue, p_task using errcode = '42501'; end if;
      return apportion.task_allocate_pending(p_payload);
    when 'attribution.recompute_window' then
      if apportion.current_tenant_id() is null then raise exception 'task %.% needs a tenant: its job carries none', p_queue, p_task using errcode = '42501'; end if;
      return apportion.task_recompute_window(p_payload);
    when 'attribution.train_model' then
      if apportion.current_tenant_id() is null then raise exception 'task %.% needs a tenant: its job carries none', p_queue, p_task using errcode = '42501'; end if;
      return apportion.task_train_model(p_payload);
    when 'housekeeping.noop' then
      return apportion.task_noop(p_payload);
    when 'housekeeping.ping' then
      return apportion.task_ping(p_payload);
    when 'housekeeping.prune' then
      if apportion.current_tenant_id() is not null then raise exception 'task %.% is a system task: its jobs carry no tenant', p_queue, p_task using errcode = '42501'; end if;
      return apportion.task_prune(p_payload);
    when 'maintenance.reclaim_leases' then
      if apportion.current_tenant_id() is not null then raise exception 'task %.% is a system task: its jobs carry no tenant', p_queue, p_task using errcode = '42501'; end if;
      return apportion.task_reclaim_leases(p_payload);
    else
      raise exception 'task %.% has no handler yet; its jobs wait until one exists', p_queue, p_task using errcode = 'AP001';
  end case;
end
$$;

CREATE FUNCTION apportion.run_tenant_jobs(p_worker_id text, p_tenant_id uuid, p_job_ids bigint[]) RETURNS SETOF apportion.job_outcome
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  perform set_config('app.tenant_id', coalesce(p_tenant_id::text, ''), true);
  return query select * from apportion.run_jobs(p_worker_id, p_job_ids);
end
$$;

CREATE FUNCTION apportion.schema_version() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select 2
$$;

CREATE FUNCTION apportion.store_allocations(p_model_version text, p_event_ids uuid[], p_window_start timestamp with time zone DEFAULT NULL::timestamp with time zone, p_window_end timestamp with time zone DEFAULT NULL::timestamp with time zone, p_reason text DEFAULT 'recompute'::text) RETURNS TABLE(event_count bigint, allocation_count bigint)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;

CREATE FUNCTION apportion.store_refund_allocations(p_event_ids uuid[], p_model_version text DEFAULT NULL::text, p_reason text DEFAULT 'refund'::text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
declare
  v_tenant uuid := apportion.require_tenant();
  v_correlation uuid := nullif(current_setting('app.correlation_id', true), '')::uuid;
  v_at timestamptz := clock_timestamp();
  v_pair record;
  v_refund record;
  v_channels text[];
  v_left numeric[];
  v_parts numeric[];
  v_refund_ids uuid[] := '{}'::uuid[];
  v_event_ids uuid[] := '{}'::uuid[];
  v_models text[] := '{}'::text[];
  v_split_channels text[] := '{}'::text[];
  v_cents bigint[] := '{}'::bigint[];
  v_changed bigint;
begin
  if p_reason is null or p_reason !~ '^[a-z][a-z_]{0,62}$' then
    raise exception 'store_refund_allocations: p_reason must be a lower-case word like refund (got %)', coalesce(quote_literal(p_reason), 'null')
      using errcode = '22023';
  end if;
  for v_pair in
    select distinct a.event_id, a.model_version
      from apportion.attribution_allocations a
     where a.tenant_id = v_tenant and a.event_id = any (p_event_ids)
       and (p_model_version is null or a.model_version = p_model_version)
       and exists (select from apportion.refunds f where f.tenant_id = v_tenant and f.event_id = a.event_id)
     order by a.event_id, a.model_version
  loop
    select array_agg(a.channel order by a.channel collate "C"), array_agg(a.allocated_revenue_cents::numeric order by a.channel collate "C")
      into v_channels, v_left
      from apportion.attribution_allocations a
     where a.tenant_id = v_tenant and a.event_id = v_pair.event_id and a.model_version = v_pair.model_version;
    for v_refund in
      select f.id, f.amount_cents from apportion.refunds f
       where f.tenant_id = v_tenant and f.event_id = v_pair.event_id
       order by f.occurred_at, f.id
    loop
      -- This refund over what is left: floor, then largest remainders.
      select array_agg(s.part order by s.i) into v_parts
        from (
          select r.i, r.fl + (r.rk <= r.leftover)::int as part
            from (
              select f.*, v_refund.amount_cents - sum(f.fl) over () as leftover,
                     row_number() over (order by f.rem desc, md5(v_refund.id::text || ':' || f.channel) collate "C") as rk
                from (
                  select u.i, u.channel, div(v_refund.amount_cents * u.left_c, t.total) as fl,
                         v_refund.amount_cents * u.left_c - div(v_refund.amount_cents * u.left_c, t.total) * t.total as rem
                    from unnest(v_channels, v_left) with ordinality as u (channel, left_c, i)
                   cross join (select sum(x) as total from unnest(v_left) x) t
                   where t.total > 0
                ) f
            ) r
        ) s;
      if v_parts is null then
        raise exception 'refund % of event %: nothing left to refund under model version %', v_refund.id, v_pair.event_id, v_pair.model_version
          using errcode = '23514';
      end if;
      for v_i in 1 .. cardinality(v_channels) loop
        continue when v_parts[v_i] = 0;
        v_refund_ids := v_refund_ids || v_refund.id;
        v_event_ids := v_event_ids || v_pair.event_id;
        v_models := v_models || v_pair.model_version;
        v_split_channels := v_split_channels || v_channels[v_i];
        v_cents := v_cents || v_parts[v_i]::bigint;
      end loop;
      select array_agg(u.left_c - u.part order by u.i) into v_left
        from unnest(v_left, v_parts) with ordinality as u (left_c, part, i);
    end loop;
  end loop;

  -- Why and when replaced or deleted splits ended (the history triggers read it).
  perform set_config('apportion.refund_change_reason', p_reason, true), set_config('apportion.refund_change_at', v_at::text, true);
  with computed as (
    select * from unnest(v_refund_ids, v_event_ids, v_models, v_split_channels, v_cents)
                  as c (refund_id, event_id, model_version, channel, refunded_cents)
  ),
  written as (
    insert into apportion.refund_allocations as ra
      (tenant_id, refund_id, event_id, model_version, channel, refunded_cents, computed_at, correlation_id, change_reason)
    select v_tenant, c.refund_id, c.event_id, c.model_version, c.channel, c.refunded_cents, v_at, v_correlation, p_reason
      from computed c
    on conflict (tenant_id, refund_id, model_version, channel) do update
       set refunded_cents = excluded.refunded_cents, computed_at = excluded.computed_at,
           correlation_id = excluded.correlation_id, change_reason = excluded.change_reason
     where ra.refunded_cents is distinct from excluded.refunded_cents
    returning 1
  ),
  stale as (
    delete from apportion.refund_allocations ra
     where ra.tenant_id = v_tenant and ra.event_id = any (p_event_ids)
       and (p_model_version is null or ra.model_version = p_model_version)
       and not exists (select from computed c
                        where c.refund_id = ra.refund_id and c.model_version = ra.model_version and c.channel = ra.channel)
    returning 1
  )
  select (select count(*) from written) + (select count(*) from stale) into v_changed;
  perform set_config('apportion.refund_change_reason', '', true), set_config('apportion.refund_change_at', '', true);
  return v_changed;
end
$_$;

CREATE FUNCTION apportion.task_allocate_event(p_payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_task constant text := 'attribution.allocate_event';
  v_event_id uuid;
  v_model text;
  v_rows bigint;
begin
  perform apportion.payload_keys_only(p_payload, array['event_id', 'model_version'], v_task);
  v_event_id := apportion.payload_uuid(p_payload, 'event_id', v_task);
  v_model := apportion.payload_text(p_payload, 'model_version', v_task);
  select count(*) into v_rows from apportion.allocate_event(v_event_id, v_model);
  return jsonb_build_object('event_id', v_event_id, 'model_version', v_model, 'allocation_count', v_rows);
end
$$;

CREATE FUNCTION apportion.task_allocate_pending(p_payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_task constant text := 'attribution.allocate_pending';
  v_batch constant integer := 1000;
  v_tenant uuid := apportion.require_tenant();
  v_model text;
  v_ids uuid[];
  v_correlations uuid[];
  v_isolated uuid[] := '{}'::uuid[];
  v_result record;
  v_events bigint := 0;
  v_rows bigint := 0;
begin
  perform apportion.payload_keys_only(p_payload, array['model_version'], v_task);
  v_model := apportion.payload_text(p_payload, 'model_version', v_task);
  if (apportion.require_model(v_model)).kind = 'markov'
     and not exists (select from apportion.trained_models t where t.tenant_id = v_tenant and t.model_version = v_model) then
    -- Not trained yet for this tenant: the pending events wait, untouched,
    -- and training (attribution.train_model) wakes them.
    return jsonb_build_object('model_version', v_model, 'event_count', 0, 'allocation_count', 0,
                              'waiting_for', 'training');
  end if;

  select array_agg(p.event_id order by p.event_id), array_agg(p.correlation_id order by p.event_id)
    into v_ids, v_correlations
    from (select p.event_id, p.correlation_id from apportion.pending_allocations p
           where p.tenant_id = v_tenant and p.model_version = v_model
           order by p.event_id
           limit v_batch
             for update skip locked) p;
  if v_ids is null then
    return jsonb_build_object('model_version', v_model, 'event_count', 0, 'allocation_count', 0);
  end if;

  begin
    select * into v_result from apportion.store_allocations(v_model, v_ids, null, null, 'late_touchpoint');
    v_events := v_result.event_count;
    v_rows := v_result.allocation_count;
  exception when others then
    for v_i in 1 .. cardinality(v_ids) loop
      begin
        select * into v_result from apportion.store_allocations(v_model, array[v_ids[v_i]], null, null, 'late_touchpoint');
        v_events := v_events + v_result.event_count;
        v_rows := v_rows + v_result.allocation_count;
      exception when others then
        v_isolated := v_isolated || v_ids[v_i];
        insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id)
        values (v_tenant, 'attribution', 'allocate_event',
                jsonb_build_object('event_id', v_ids[v_i], 'model_version', v_model), v_correlations[v_i]);
      end;
    end loop;
  end;

  delete from apportion.pending_allocations p
   where p.tenant_id = v_tenant and p.model_version = v_model and p.event_id = any (v_ids);
  if cardinality(v_ids) = v_batch then
    insert into apportion.jobs (tenant_id, queue, task, payload)
    values (v_tenant, 'attribution', 'allocate_pending', jsonb_build_object('model_version', v_model));
  end if;
  return jsonb_build_object('model_version', v_model, 'event_count', v_events, 'allocation_count', v_rows,
                            'isolated_event_ids', to_jsonb(v_isolated));
end
$$;

CREATE FUNCTION apportion.task_noop(p_payload jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    AS $$
  select null::jsonb
$$;

CREATE FUNCTION apportion.task_ping(p_payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  perform apportion.payload_keys_only(p_payload, array[]::text[], 'housekeeping.ping');
  return jsonb_build_object('status', 'ok', 'database_user', session_user, 'role', current_user,
                            'at', clock_timestamp());
end
$$;

CREATE FUNCTION apportion.task_prune(p_payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_task constant text := 'housekeeping.prune';
  v_retention interval := interval '7 days';
  v_result record;
begin
  perform apportion.payload_keys_only(p_payload, array['retention'], v_task);
  if p_payload ? 'retention' then
    v_retention := apportion.param_interval(p_payload, 'retention', interval '7 days');
  end if;
  select * into v_result from apportion.prune_jobs(v_retention);
  return jsonb_build_object('jobs_deleted', v_result.jobs_deleted, 'failures_deleted', v_result.failures_deleted,
                            'retention', v_retention::text);
end
$$;

CREATE FUNCTION apportion.task_reclaim_leases(p_payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  perform apportion.payload_keys_only(p_payload, array[]::text[], 'maintenance.reclaim_leases');
  return jsonb_build_object('reclaimed', apportion.reclaim_expired_leases(10000));
end
$$;

CREATE FUNCTION apportion.task_recompute_window(p_payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_task constant text := 'attribution.recompute_window';
  v_result record;
begin
  perform apportion.payload_keys_only(p_payload, array['window_start', 'window_end', 'model_version'], v_task);
  select * into v_result from apportion.recompute_window(
    apportion.payload_timestamptz(p_payload, 'window_start', v_task),
    apportion.payload_timestamptz(p_payload, 'window_end', v_task),
    apportion.payload_text(p_payload, 'model_version', v_task));
  return jsonb_build_object('event_count', v_result.event_count, 'allocation_count', v_result.allocation_count);
end
$$;

CREATE FUNCTION apportion.task_train_model(p_payload jsonb) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_task constant text := 'attribution.train_model';
  v_result record;
begin
  perform apportion.payload_keys_only(p_payload, array['model_version'], v_task);
  select * into v_result from apportion.train_model(apportion.payload_text(p_payload, 'model_version', v_task));
  return jsonb_build_object('model_version', v_result.model_version, 'path_count', v_result.path_count,
                            'conversion_count', v_result.conversion_count, 'channel_count', v_result.channel_count,
                            'p_conversion', v_result.p_conversion_num::text || '/' || v_result.p_conversion_den::text);
end
$$;

CREATE FUNCTION apportion.train_model(p_model_version text) RETURNS TABLE(model_version text, path_count bigint, conversion_count bigint, channel_count integer, p_conversion_num numeric, p_conversion_den numeric)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET jit TO 'off'
    SET max_parallel_workers_per_gather TO '0'
    AS $$
declare
  v_tenant uuid := apportion.require_tenant();
  v_model apportion.attribution_models := apportion.require_model(p_model_version);
  v_params record;
  v_window record;
  v_from text[];
  v_to text[];
  v_count bigint[];
  v_paths bigint;
  v_conversions bigint;
  v_channels text[];
  v_re_num numeric[];
  v_re_den numeric[];
  v_p_num numeric;
  v_p_den numeric;
  v_lcm numeric := 1;
  v_trained_at timestamptz;
begin
  if v_model.kind <> 'markov' then
    raise exception 'train_model: model version % is of kind %; only kind markov is trained', quote_literal(p_model_version), v_model.kind
      using errcode = '22023';
  end if;
  -- One training per (tenant, version) at a time; the second finds the first's.
  perform pg_advisory_xact_lock(hashtext('apportion.train_model'), hashtext(v_tenant::text || ':' || p_model_version));
  select t.trained_at into v_trained_at from apportion.trained_models t
   where t.tenant_id = v_tenant and t.model_version = p_model_version;
  if found then
    raise exception 'train_model: model version % is already trained for the current tenant (at %); trained state never changes',
      quote_literal(p_model_version), v_trained_at
      using errcode = '23505', hint = 'Register a new model version to train again.';
  end if;

  select * into v_params from apportion.resolve_model_params(v_model.kind, v_model.params);
  select * into v_window from apportion.markov_training_window(v_model.params);

  -- The tenant's data in one statement, so in one snapshot.
  select array_agg(c.from_state order by c.from_state collate "C", c.to_state collate "C"),
         array_agg(c.to_state order by c.from_state collate "C", c.to_state collate "C"),
         array_agg(c.transition_count order by c.from_state collate "C", c.to_state collate "C")
    into v_from, v_to, v_count
    from apportion.markov_transition_counts(v_tenant, v_params.lookback, v_window.training_start, v_window.training_end) c;
  if v_from is null then
    raise exception 'train_model: no paths to train % on: no touchpoints of the current tenant in its training window [%, %)',
      quote_literal(p_model_version), v_model.params ->> 'training_start', v_model.params ->> 'training_end'
      using errcode = '22023', hint = 'Register a version whose training window holds data.';
  end if;
  select coalesce(sum(x.n) filter (where x.f = '(start)'), 0), coalesce(sum(x.n) filter (where x.t = '(conversion)'), 0)
    into v_paths, v_conversions
    from unnest(v_from, v_to, v_count) x (f, t, n);

  select array_agg(s.channel order by s.channel collate "C"),
         array_agg(s.removal_effect_num order by s.channel collate "C"),
         array_agg(s.removal_effect_den order by s.channel collate "C"),
         min(s.p_conversion_num), min(s.p_conversion_den)
    into v_channels, v_re_num, v_re_den, v_p_num, v_p_den
    from apportion.markov_solve(v_from, v_to, v_count) s;

  -- The least common multiple of the denominators turns every removal
  -- effect into an integer weight.
  for i in 1 .. cardinality(v_re_den) loop
    v_lcm := div(v_lcm, gcd(v_lcm, v_re_den[i])) * v_re_den[i];
  end loop;

  insert into apportion.trained_models
    (tenant_id, model_version, path_count, conversion_count, p_conversion_num, p_conversion_den, correlation_id)
  values (v_tenant, p_model_version, v_paths, v_conversions, v_p_num, v_p_den,
          nullif(current_setting('app.correlation_id', true), '')::uuid);
  insert into apportion.markov_transitions (tenant_id, model_version, from_state, to_state, transition_count)
  select v_tenant, p_model_version, x.f, x.t, x.n from unnest(v_from, v_to, v_count) x (f, t, n);
  insert into apportion.markov_removal_effects
    (tenant_id, model_version, channel, removal_effect_num, removal_effect_den, weight)
  select v_tenant, p_model_version, x.c, x.num, x.den, x.num * div(v_lcm, x.den)
    from unnest(v_channels, v_re_num, v_re_den) x (c, num, den);

  -- Wake the live path's work that waited for this training (when the
  -- caller may enqueue: the worker, through attribution.train_model):
  -- always when the version is active for the tenant, since pending events
  -- committed while this runs are invisible here and their own job may
  -- have found the version untrained.
  if has_any_column_privilege('apportion.jobs', 'insert') then
    if exists (select from apportion.tenant_models m where m.tenant_id = v_tenant and m.model_version = p_model_version)
       or exists (select from apportion.pending_allocations p
                   where p.tenant_id = v_tenant and p.model_version = p_model_version) then
      insert into apportion.jobs (tenant_id, queue, task, payload)
      values (v_tenant, 'attribution', 'allocate_pending', jsonb_build_object('model_version', p_model_version));
    end if;
  end if;

  model_version := p_model_version;
  path_count := v_paths;
  conversion_count := v_conversions;
  channel_count := cardinality(v_channels);
  p_conversion_num := v_p_num;
  p_conversion_den := v_p_den;
  return next;
end
$$;

CREATE FUNCTION apportion.train_model_for(p_tenant uuid, p_model_version text) RETURNS TABLE(model_version text, path_count bigint, conversion_count bigint, channel_count integer, p_conversion_num numeric, p_conversion_den numeric)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'train_model_for');
begin
  return query select * from apportion.train_model(p_model_version);
  perform set_config('app.tenant_id', v_previous, true);
end
$$;

CREATE FUNCTION apportion.unbind_login(p_login regrole, p_tenant_id uuid) RETURNS boolean
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  with gone as (delete from apportion.tenant_bindings b where b.login = p_login and b.tenant_id = p_tenant_id returning 1)
  select exists (select from gone)
$$;

CREATE FUNCTION apportion_internal.check_and_split_refunds() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_over record;
  v_events uuid[];
begin
  select array_agg(distinct n.event_id order by n.event_id) into v_events from new_refunds n;
  perform pg_advisory_xact_lock(hashtext('apportion.refunds'), hashtext(x::text))
     from unnest(v_events) x order by x;
  -- No allocation of these tenants may be written meanwhile: the splits are
  -- computed from committed allocations, and a run that writes after this
  -- commits re-splits what it changed (store_allocations takes one of
  -- these locks and nothing after it, so the order cannot deadlock).
  perform pg_advisory_xact_lock(hashtext('apportion.store_allocations'), hashtext(t.tenant_id::text || ':' || m.model_version))
     from (select distinct n.tenant_id from new_refunds n) t
    cross join apportion.attribution_models m
    order by t.tenant_id, m.model_version;
  select e.id, e.revenue_cents, e.currency, sum(f.amount_cents) as refunded into v_over
    from apportion.attribution_events e
    join apportion.refunds f on f.tenant_id = e.tenant_id and f.event_id = e.id
   where (e.tenant_id, e.id) in (select n.tenant_id, n.event_id from new_refunds n)
   group by e.id, e.revenue_cents, e.currency
  having sum(f.amount_cents) > e.revenue_cents
   order by e.id
   limit 1;
  if found then
    raise exception 'refunds of event % would total % %, more than its revenue of % %: refused', v_over.id,
      v_over.refunded, v_over.currency, v_over.revenue_cents, v_over.currency
      using errcode = '23514', hint = 'An event''s refunds never exceed its revenue; the whole statement was refused.';
  end if;
  perform apportion.store_refund_allocations(v_events);
  return null;
end
$$;

CREATE FUNCTION apportion_internal.check_tenant_write() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
declare
  v_tenant uuid := apportion.current_tenant_id();
begin
  -- Administrators (the owner role, superusers) write any tenant's rows,
  -- e.g. create_tenant's default channels; their RLS policy allows it.
  if v_tenant is null and pg_has_role(current_user, 'apportion_owner', 'member') then
    return new;
  end if;
  if v_tenant is null then
    raise exception 'no tenant set: writes to apportion.% need app.tenant_id (select set_config(''app.tenant_id'', ''<tenant uuid>'', true))', tg_table_name
      using errcode = '42501';
  end if;
  if new.tenant_id is distinct from v_tenant then
    raise exception 'tenant_id % is not the current tenant (app.tenant_id = %): rows may only be written for the current tenant', new.tenant_id, v_tenant
      using errcode = '42501';
  end if;
  return new;
end
$$;

CREATE FUNCTION apportion_internal.default_channels() RETURNS TABLE(code text, name text, is_direct boolean)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  values
    ('direct',         'Direct',         true),
    ('email',          'Email',          false),
    ('google_search',  'Google Search',  false),
    ('organic_search', 'Organic Search', false),
    ('paid_social',    'Paid Social',    false),
    ('referral',       'Referral',       false),
    ('display',        'Display',        false),
    ('unattributed',   'Unattributed',   false)
$$;

CREATE FUNCTION apportion_internal.define_tenant_policies(p_table regclass) RETURNS void
    LANGUAGE plpgsql
    AS $$
begin
  execute format('drop policy if exists tenant_isolation on %s', p_table);
  execute format('create policy tenant_isolation on %s to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator'
                 ' using (tenant_id = apportion.current_tenant_id() and (select apportion.current_tenant_allowed()))'
                 ' with check (tenant_id = apportion.current_tenant_id() and (select apportion.current_tenant_allowed()))', p_table);
  execute format('drop policy if exists owner_admin on %s', p_table);
  execute format('create policy owner_admin on %s to apportion_owner using (true) with check (true)', p_table);
end
$$;

CREATE FUNCTION apportion_internal.enforce_queued_job_caps() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
declare
  v_over record;
begin
  select t.id, t.max_queued_jobs into v_over
    from (select distinct n.tenant_id from new_jobs n where n.tenant_id is not null) n
    join apportion.tenants t on t.id = n.tenant_id
   where (select count(*) from (select from apportion.jobs j
                                 where j.tenant_id = t.id and j.state = 'queued'
                                 limit t.max_queued_jobs + 1) q) > t.max_queued_jobs
   limit 1;
  if found then
    raise exception 'tenant % has more than % queued jobs, its limit: wait for them to run, or ask the operator to raise tenants.max_queued_jobs', v_over.id, v_over.max_queued_jobs
      using errcode = 'AP003';
  end if;
  return null;
end
$$;

CREATE FUNCTION apportion_internal.enqueue_new_events() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  with pending as (
    insert into apportion.pending_allocations (tenant_id, model_version, event_id, correlation_id)
    select e.tenant_id, m.model_version, e.id, nullif(current_setting('app.correlation_id', true), '')::uuid
      from new_events e
      join apportion.tenant_models m on m.tenant_id = e.tenant_id
    returning tenant_id, model_version
  )
  insert into apportion.jobs (tenant_id, queue, task, payload)
  select p.tenant_id, 'attribution', 'allocate_pending', jsonb_build_object('model_version', p.model_version)
    from (select distinct tenant_id, model_version from pending) p;
  return null;
end
$$;

CREATE FUNCTION apportion_internal.ensure_half_life_factors(p_half_life_us bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  if exists (select from apportion.half_life_factors f where f.half_life_us = p_half_life_us) then
    return;
  end if;
  insert into apportion.half_life_factors (half_life_us, part, digits, factor)
  select p_half_life_us, p.part, d.digits,
         round(power(2::numeric, -round(round(d.digits * 1000::numeric ^ p.part, 61) / p_half_life_us, 60)), 50)
    from generate_series(0, 4) p (part)
   cross join lateral generate_series(0, least(999, div(p_half_life_us - 1, 1000::numeric ^ p.part))::int) d (digits)
  union all
  select p_half_life_us, 5, q, round(5::numeric ^ q * ('1e-' || q)::numeric, 50)
    from generate_series(0, 133) q;
end
$$;

CREATE FUNCTION apportion_internal.forbid_model_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  if new.kind is distinct from old.kind or new.params is distinct from old.params
     or new.model_version is distinct from old.model_version then
    raise exception 'model version % is immutable: register a new version instead of changing it', old.model_version
      using errcode = '23514';
  end if;
  return new;
end
$$;

CREATE FUNCTION apportion_internal.forbid_trained_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  raise exception 'trained state of model version % is immutable: register a new version to train again', old.model_version
    using errcode = '23514';
end
$$;

CREATE FUNCTION apportion_internal.generate_task_dispatcher() RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
declare
  v_cases text;
begin
  -- A system task runs only without a tenant, a tenant task only with one
  -- (a job inserted with the wrong tenant fails with 42501).
  select string_agg(format(E'when %L then\n      %s%s',
                           t.queue || '.' || t.task,
                           case t.tenant_scope
                             when 'system' then 'if apportion.current_tenant_id() is not null then raise exception ''task %.% is a system task: its jobs carry no tenant'', p_queue, p_task using errcode = ''42501''; end if;' || E'\n      '
                             when 'tenant' then 'if apportion.current_tenant_id() is null then raise exception ''task %.% needs a tenant: its job carries none'', p_queue, p_task using errcode = ''42501''; end if;' || E'\n      '
                             else '' end,
                           format('return %I.%I(p_payload);', n.nspname, p.proname)),
                    E'\n    ' order by t.queue, t.task)
    into v_cases
    from apportion.queue_tasks t
    join pg_proc p on p.oid = t.handler::regproc
    join pg_namespace n on n.oid = p.pronamespace
   where t.handler is not null;
  execute format($f$
create or replace function apportion.run_task(p_queue text, p_task text, p_payload jsonb)
returns jsonb
language plpgsql
as $body$
begin
  case p_queue || '.' || p_task
    %s
    else
      raise exception 'task %%.%% has no handler yet; its jobs wait until one exists', p_queue, p_task using errcode = 'AP001';
  end case;
end
$body$;
grant execute on function apportion.run_task(text, text, jsonb) to apportion_worker$f$, coalesce(v_cases, 'when null then return null;'));
end
$_$;

CREATE FUNCTION apportion_internal.model_registered() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  perform apportion_internal.ensure_half_life_factors((p.half_life_seconds * 1000000)::bigint)
     from apportion.resolve_model_params(new.kind, new.params) p;
  return null;
end
$$;

CREATE FUNCTION apportion_internal.notify_new_jobs() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  perform pg_notify('apportion_jobs', q.queue) from (select distinct j.queue from new_jobs j) q;
  return null;
end
$$;

CREATE FUNCTION apportion_internal.prepare_job() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
declare
  v_task apportion.queue_tasks;
begin
  select * into v_task from apportion.queue_tasks t where t.queue = new.queue and t.task = new.task;
  if not found then
    if not exists (select from apportion.queue_tasks t where t.queue = new.queue) then
      raise exception 'unknown queue %: queues are attribution, housekeeping, maintenance, llm', coalesce(quote_literal(new.queue), 'null')
        using errcode = '22023';
    end if;
    raise exception 'unknown task %.%: tasks of queue % are %', new.queue, coalesce(new.task, 'null'), new.queue,
      (select string_agg(t.task, ', ' order by t.task) from apportion.queue_tasks t where t.queue = new.queue)
      using errcode = '22023';
  end if;
  if v_task.tenant_scope = 'tenant' and new.tenant_id is null then
    perform apportion.require_tenant();
    raise exception 'task %.% needs a tenant: its job must carry a tenant_id', new.queue, new.task using errcode = '42501';
  end if;
  if v_task.tenant_scope = 'system' and new.tenant_id is not null then
    raise exception 'task %.% is a system task: its jobs carry no tenant', new.queue, new.task using errcode = '42501';
  end if;
  if new.payload is null or jsonb_typeof(new.payload) <> 'object' then
    raise exception 'payload must be a json object (got %)', coalesce(jsonb_typeof(new.payload), 'null') using errcode = '22023';
  end if;
  if octet_length(new.payload::text) > 65536 then
    raise exception 'payload too large: % bytes, the limit is 65536', octet_length(new.payload::text) using errcode = '22023';
  end if;
  if not isfinite(new.run_at) then
    raise exception 'run_at must be a finite timestamp (got %)', new.run_at using errcode = '22023';
  end if;
  if new.priority not between -100 and 100 then
    raise exception 'priority must be between -100 and 100 (got %)', new.priority using errcode = '22023';
  end if;
  if octet_length(new.job_key) > 512 then
    raise exception 'job_key too long: % bytes, the limit is 512', octet_length(new.job_key) using errcode = '22023';
  end if;
  new.max_attempts := v_task.max_attempts;
  -- No handler: kept waiting outside the claim index (queue_tasks_changed
  -- unparks the task's jobs when it gets one).
  new.parked := v_task.handler is null;
  -- Not yet due: kept outside the claim index too (a claim moves it in when
  -- it is due, db/42_queue_claim.sql).
  new.scheduled := new.run_at > now();
  return new;
end
$$;

CREATE FUNCTION apportion_internal.queue_tasks_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  perform apportion_internal.generate_task_dispatcher();
  update apportion.jobs_live j
     set parked = (t.handler is null)
    from apportion.queue_tasks t
   where t.queue = j.queue and t.task = j.task and j.state = 'queued' and j.parked is distinct from (t.handler is null);
  return null;
end
$$;

CREATE FUNCTION apportion_internal.record_allocation_history() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION apportion_internal.record_failure() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  insert into apportion.worker_failed_jobs
    (tenant_id, job_id, queue, task, payload, error_code, error_message, attempts, correlation_id)
  values (new.tenant_id, new.id, new.queue, new.task, new.payload, new.error_code,
          new.error_message, new.attempts, new.correlation_id);
  return null;
end
$$;

CREATE FUNCTION apportion_internal.record_refund_allocation_history() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  insert into apportion.refund_allocation_history
    (tenant_id, refund_id, event_id, model_version, channel, refunded_cents, correlation_id, change_reason,
     valid_from, valid_to, ended_reason, ended_correlation_id)
  select o.tenant_id, o.refund_id, o.event_id, o.model_version, o.channel, o.refunded_cents, o.correlation_id, o.change_reason,
         o.computed_at,
         greatest(coalesce(nullif(current_setting('apportion.refund_change_at', true), '')::timestamptz, clock_timestamp()), o.computed_at),
         coalesce(nullif(current_setting('apportion.refund_change_reason', true), ''), lower(tg_op)),
         nullif(current_setting('app.correlation_id', true), '')::uuid
    from old_rows o;
  return null;
end
$$;

CREATE FUNCTION apportion_internal.reschedule_job() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  if not isfinite(new.run_at) then
    raise exception 'run_at must be a finite timestamp (got %)', new.run_at using errcode = '22023';
  end if;
  new.scheduled := new.state = 'queued' and new.run_at > now();
  return new;
end
$$;

CREATE FUNCTION apportion_internal.restate_for_late_touches() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  v_correlation uuid := nullif(current_setting('app.correlation_id', true), '')::uuid;
begin
  with affected as (
    select distinct e.tenant_id, m.model_version, e.id as event_id,
           e.occurred_at >= now() - t.restatement_horizon as in_horizon
      from new_touches n
      join apportion.tenant_models m on m.tenant_id = n.tenant_id
      join apportion.attribution_models am on am.model_version = m.model_version and am.kind <> 'fixed_split'
      join apportion.tenants t on t.id = n.tenant_id
     cross join lateral (select apportion.model_lookback(am.params) as lookback) lb
      join apportion.attribution_events e
        on e.tenant_id = n.tenant_id and e.customer_id = n.customer_id
       and e.occurred_at >= n.occurred_at
       -- An index range a few days wider than the lookback (month and year
       -- lengths vary), then allocation's own rule, exactly.
       and e.occurred_at <= (n.occurred_at at time zone 'UTC' + lb.lookback + interval '4 days') at time zone 'UTC'
       and n.occurred_at >= (e.occurred_at at time zone 'UTC' - lb.lookback) at time zone 'UTC'
     where exists (select from apportion.attribution_allocations a
                    where a.tenant_id = e.tenant_id and a.event_id = e.id and a.model_version = m.model_version)
        or exists (select from apportion.pending_allocations p
                    where p.tenant_id = e.tenant_id and p.model_version = m.model_version and p.event_id = e.id)
  ),
  skipped as (
    insert into apportion.restatement_skips (tenant_id, model_version, event_count, correlation_id)
    select a.tenant_id, a.model_version, count(*), v_correlation
      from affected a where not a.in_horizon
     group by a.tenant_id, a.model_version
    returning 1
  ),
  pending as (
    insert into apportion.pending_allocations as p (tenant_id, model_version, event_id, correlation_id)
    select a.tenant_id, a.model_version, a.event_id, v_correlation from affected a where a.in_horizon
    on conflict (tenant_id, model_version, event_id) do update set enqueued_at = excluded.enqueued_at
    returning p.tenant_id, p.model_version
  )
  insert into apportion.jobs (tenant_id, queue, task, payload)
  select p.tenant_id, 'attribution', 'allocate_pending', jsonb_build_object('model_version', p.model_version)
    from (select distinct pending.tenant_id, pending.model_version from pending) p
   where (select count(*) from skipped) >= 0;
  return null;
end
$$;

CREATE TABLE apportion.allocation_history (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    event_id uuid NOT NULL,
    model_version text NOT NULL,
    channel text NOT NULL,
    allocated_revenue_cents bigint NOT NULL,
    allocation_ratio numeric(7,6) NOT NULL,
    touchpoint_count integer NOT NULL,
    currency character(3) NOT NULL,
    event_occurred_at timestamp with time zone NOT NULL,
    correlation_id uuid,
    change_reason text NOT NULL,
    valid_from timestamp with time zone NOT NULL,
    valid_to timestamp with time zone NOT NULL,
    ended_reason text NOT NULL,
    ended_correlation_id uuid
);

ALTER TABLE ONLY apportion.allocation_history FORCE ROW LEVEL SECURITY;

CREATE VIEW apportion.allocation_changes WITH (security_invoker='true') AS
 WITH versions AS (
         SELECT a.tenant_id,
            a.event_id,
            a.model_version,
            a.channel,
            a.allocated_revenue_cents AS cents,
            a.change_reason,
            a.correlation_id,
            a.computed_at AS valid_from,
            NULL::timestamp with time zone AS valid_to,
            NULL::text AS ended_reason,
            NULL::uuid AS ended_correlation_id
           FROM apportion.attribution_allocations a
        UNION ALL
         SELECT h.tenant_id,
            h.event_id,
            h.model_version,
            h.channel,
            h.allocated_revenue_cents,
            h.change_reason,
            h.correlation_id,
            h.valid_from,
            h.valid_to,
            h.ended_reason,
            h.ended_correlation_id
           FROM apportion.allocation_history h
        ), ordered AS (
         SELECT v.tenant_id,
            v.event_id,
            v.model_version,
            v.channel,
            v.cents,
            v.change_reason,
            v.correlation_id,
            v.valid_from,
            v.valid_to,
            v.ended_reason,
            v.ended_correlation_id,
            lag(v.cents) OVER k AS previous_cents,
            lag(v.valid_to) OVER k AS previous_to,
            lead(v.valid_from) OVER k AS next_from
           FROM versions v
          WINDOW k AS (PARTITION BY v.tenant_id, v.event_id, v.model_version, v.channel ORDER BY v.valid_from, v.valid_to)
        )
 SELECT o.tenant_id,
    o.event_id,
    o.model_version,
    o.channel,
    o.valid_from AS changed_at,
    o.change_reason AS reason,
        CASE
            WHEN (o.previous_to = o.valid_from) THEN o.previous_cents
            ELSE NULL::bigint
        END AS before_cents,
    o.cents AS after_cents,
    o.correlation_id
   FROM ordered o
UNION ALL
 SELECT o.tenant_id,
    o.event_id,
    o.model_version,
    o.channel,
    o.valid_to AS changed_at,
    o.ended_reason AS reason,
    o.cents AS before_cents,
    NULL::bigint AS after_cents,
    o.ended_correlation_id AS correlation_id
   FROM ordered o
  WHERE ((o.valid_to IS NOT NULL) AND (o.next_from IS DISTINCT FROM o.valid_to));

CREATE TABLE apportion.attribution_events (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    customer_id text NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    revenue_cents bigint NOT NULL,
    currency character(3) NOT NULL,
    external_event_id text,
    event_type text DEFAULT 'purchase'::text NOT NULL,
    raw_payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    ingested_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT attribution_events_currency_iso_code CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT attribution_events_customer_id_length CHECK (((length(customer_id) >= 1) AND (length(customer_id) <= 256))),
    CONSTRAINT attribution_events_event_type_length CHECK (((length(event_type) >= 1) AND (length(event_type) <= 64))),
    CONSTRAINT attribution_events_external_event_id_length CHECK (((length(external_event_id) >= 1) AND (length(external_event_id) <= 256))),
    CONSTRAINT attribution_events_revenue_cents_non_negative CHECK ((revenue_cents >= 0))
);

ALTER TABLE ONLY apportion.attribution_events FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.channels (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    is_direct boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT channels_code_format CHECK ((code ~ '^[a-z][a-z0-9_]{0,62}$'::text))
);

ALTER TABLE ONLY apportion.channels FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.refund_allocations (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    refund_id uuid NOT NULL,
    event_id uuid NOT NULL,
    model_version text NOT NULL,
    channel text NOT NULL,
    refunded_cents bigint NOT NULL,
    computed_at timestamp with time zone DEFAULT now() NOT NULL,
    correlation_id uuid,
    change_reason text DEFAULT 'refund'::text NOT NULL,
    CONSTRAINT refund_allocations_change_reason_format CHECK ((change_reason ~ '^[a-z][a-z_]{0,62}$'::text)),
    CONSTRAINT refund_allocations_refunded_cents_positive CHECK ((refunded_cents > 0))
);

ALTER TABLE ONLY apportion.refund_allocations FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.refunds (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    event_id uuid NOT NULL,
    amount_cents bigint NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    external_refund_id text,
    reason text,
    ingested_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT refunds_amount_cents_positive CHECK ((amount_cents > 0)),
    CONSTRAINT refunds_external_refund_id_length CHECK (((length(external_refund_id) >= 1) AND (length(external_refund_id) <= 256))),
    CONSTRAINT refunds_occurred_at_in_years_1_to_9999 CHECK (((occurred_at >= '0001-01-01 00:00:00+00'::timestamp with time zone) AND (occurred_at < '10000-01-01 00:00:00+00'::timestamp with time zone))),
    CONSTRAINT refunds_reason_length CHECK ((length(reason) <= 1024))
);

ALTER TABLE ONLY apportion.refunds FORCE ROW LEVEL SECURITY;

CREATE VIEW apportion.daily_channel_net_revenue WITH (security_invoker='true') AS
 WITH gross AS (
         SELECT a.tenant_id,
            ((a.event_occurred_at AT TIME ZONE 'UTC'::text))::date AS day,
            a.model_version,
            a.currency,
            a.channel,
            sum(a.allocated_revenue_cents) AS cents
           FROM apportion.attribution_allocations a
          GROUP BY a.tenant_id, (((a.event_occurred_at AT TIME ZONE 'UTC'::text))::date), a.model_version, a.currency, a.channel
        ), refunded AS (
         SELECT ra.tenant_id,
            ra.model_version,
            ra.channel,
            a.currency,
            a.event_occurred_at,
            f.occurred_at AS refunded_at,
            ra.refunded_cents
           FROM ((apportion.refund_allocations ra
             JOIN apportion.attribution_allocations a ON (((a.tenant_id = ra.tenant_id) AND (a.event_id = ra.event_id) AND (a.model_version = ra.model_version) AND (a.channel = ra.channel))))
             JOIN apportion.refunds f ON (((f.tenant_id = ra.tenant_id) AND (f.id = ra.refund_id))))
        ), refunded_by_event_day AS (
         SELECT r.tenant_id,
            ((r.event_occurred_at AT TIME ZONE 'UTC'::text))::date AS day,
            r.model_version,
            r.currency,
            r.channel,
            sum(r.refunded_cents) AS cents
           FROM refunded r
          GROUP BY r.tenant_id, (((r.event_occurred_at AT TIME ZONE 'UTC'::text))::date), r.model_version, r.currency, r.channel
        ), refunded_by_refund_day AS (
         SELECT r.tenant_id,
            ((r.refunded_at AT TIME ZONE 'UTC'::text))::date AS day,
            r.model_version,
            r.currency,
            r.channel,
            sum(r.refunded_cents) AS cents
           FROM refunded r
          GROUP BY r.tenant_id, (((r.refunded_at AT TIME ZONE 'UTC'::text))::date), r.model_version, r.currency, r.channel
        )
 SELECT 'accrual'::text AS basis,
    tenant_id,
    day,
    model_version,
    currency,
    channel,
    COALESCE(g.cents, (0)::numeric) AS gross_cents,
    COALESCE(r.cents, (0)::numeric) AS refunded_cents,
    (COALESCE(g.cents, (0)::numeric) - COALESCE(r.cents, (0)::numeric)) AS net_cents
   FROM (gross g
     FULL JOIN refunded_by_event_day r USING (tenant_id, day, model_version, currency, channel))
UNION ALL
 SELECT 'cash'::text AS basis,
    tenant_id,
    day,
    model_version,
    currency,
    channel,
    COALESCE(g.cents, (0)::numeric) AS gross_cents,
    COALESCE(r.cents, (0)::numeric) AS refunded_cents,
    (COALESCE(g.cents, (0)::numeric) - COALESCE(r.cents, (0)::numeric)) AS net_cents
   FROM (gross g
     FULL JOIN refunded_by_refund_day r USING (tenant_id, day, model_version, currency, channel));

CREATE TABLE apportion.db_sources (
    name text NOT NULL,
    sha256 text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE apportion.half_life_factors (
    half_life_us bigint NOT NULL,
    part smallint NOT NULL,
    digits integer NOT NULL,
    factor numeric NOT NULL,
    CONSTRAINT half_life_factors_digits_range CHECK (((digits >= 0) AND (digits <= 999))),
    CONSTRAINT half_life_factors_half_life_positive CHECK ((half_life_us > 0)),
    CONSTRAINT half_life_factors_part_range CHECK (((part >= 0) AND (part <= 5)))
);

CREATE SEQUENCE apportion.jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE TABLE apportion.jobs (
    id bigint DEFAULT nextval('apportion.jobs_id_seq'::regclass) NOT NULL,
    tenant_id uuid DEFAULT apportion.current_tenant_id(),
    queue text NOT NULL,
    task text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    correlation_id uuid DEFAULT (NULLIF(current_setting('app.correlation_id'::text, true), ''::text))::uuid,
    job_key text,
    priority smallint DEFAULT 0 NOT NULL,
    run_at timestamp with time zone DEFAULT now() NOT NULL,
    state text DEFAULT 'queued'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 5 NOT NULL,
    locked_by text,
    locked_until timestamp with time zone,
    result jsonb,
    error_code text,
    error_message text,
    attempt_log jsonb DEFAULT '[]'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    parked boolean DEFAULT false NOT NULL,
    scheduled boolean DEFAULT false NOT NULL,
    CONSTRAINT jobs_max_attempts_positive CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
    CONSTRAINT jobs_payload_is_object CHECK ((jsonb_typeof(payload) = 'object'::text)),
    CONSTRAINT jobs_state_known CHECK ((state = ANY (ARRAY['queued'::text, 'running'::text, 'succeeded'::text, 'failed'::text])))
)
PARTITION BY LIST (state);

ALTER TABLE ONLY apportion.jobs FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.jobs_done (
    id bigint DEFAULT nextval('apportion.jobs_id_seq'::regclass) NOT NULL,
    tenant_id uuid DEFAULT apportion.current_tenant_id(),
    queue text NOT NULL,
    task text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    correlation_id uuid DEFAULT (NULLIF(current_setting('app.correlation_id'::text, true), ''::text))::uuid,
    job_key text,
    priority smallint DEFAULT 0 NOT NULL,
    run_at timestamp with time zone DEFAULT now() NOT NULL,
    state text DEFAULT 'queued'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 5 NOT NULL,
    locked_by text,
    locked_until timestamp with time zone,
    result jsonb,
    error_code text,
    error_message text,
    attempt_log jsonb DEFAULT '[]'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    parked boolean DEFAULT false NOT NULL,
    scheduled boolean DEFAULT false NOT NULL,
    CONSTRAINT jobs_max_attempts_positive CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
    CONSTRAINT jobs_payload_is_object CHECK ((jsonb_typeof(payload) = 'object'::text)),
    CONSTRAINT jobs_state_known CHECK ((state = ANY (ARRAY['queued'::text, 'running'::text, 'succeeded'::text, 'failed'::text])))
);

ALTER TABLE ONLY apportion.jobs_done FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.jobs_live (
    id bigint DEFAULT nextval('apportion.jobs_id_seq'::regclass) NOT NULL,
    tenant_id uuid DEFAULT apportion.current_tenant_id(),
    queue text NOT NULL,
    task text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    correlation_id uuid DEFAULT (NULLIF(current_setting('app.correlation_id'::text, true), ''::text))::uuid,
    job_key text,
    priority smallint DEFAULT 0 NOT NULL,
    run_at timestamp with time zone DEFAULT now() NOT NULL,
    state text DEFAULT 'queued'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 5 NOT NULL,
    locked_by text,
    locked_until timestamp with time zone,
    result jsonb,
    error_code text,
    error_message text,
    attempt_log jsonb DEFAULT '[]'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    parked boolean DEFAULT false NOT NULL,
    scheduled boolean DEFAULT false NOT NULL,
    CONSTRAINT jobs_max_attempts_positive CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
    CONSTRAINT jobs_payload_is_object CHECK ((jsonb_typeof(payload) = 'object'::text)),
    CONSTRAINT jobs_state_known CHECK ((state = ANY (ARRAY['queued'::text, 'running'::text, 'succeeded'::text, 'failed'::text])))
)
WITH (fillfactor='70', autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='2000', autovacuum_vacuum_cost_delay='0', autovacuum_analyze_scale_factor='0', autovacuum_analyze_threshold='5000');

ALTER TABLE ONLY apportion.jobs_live FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.markov_removal_effects (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    model_version text NOT NULL,
    channel text NOT NULL,
    removal_effect_num numeric NOT NULL,
    removal_effect_den numeric NOT NULL,
    weight numeric NOT NULL,
    CONSTRAINT markov_removal_effects_den_positive CHECK ((removal_effect_den > (0)::numeric)),
    CONSTRAINT markov_removal_effects_num_non_negative CHECK ((removal_effect_num >= (0)::numeric)),
    CONSTRAINT markov_removal_effects_weight_integer CHECK (((weight >= (0)::numeric) AND (weight = trunc(weight))))
);

ALTER TABLE ONLY apportion.markov_removal_effects FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.markov_transitions (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    model_version text NOT NULL,
    from_state text NOT NULL,
    to_state text NOT NULL,
    transition_count bigint NOT NULL,
    CONSTRAINT markov_transitions_count_positive CHECK ((transition_count > 0))
);

ALTER TABLE ONLY apportion.markov_transitions FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.pending_allocations (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    model_version text NOT NULL,
    event_id uuid NOT NULL,
    correlation_id uuid,
    enqueued_at timestamp with time zone DEFAULT now() NOT NULL
)
WITH (autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='2000', autovacuum_vacuum_cost_delay='0', autovacuum_analyze_scale_factor='0', autovacuum_analyze_threshold='5000');

ALTER TABLE ONLY apportion.pending_allocations FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.queue_tasks (
    queue text NOT NULL,
    task text NOT NULL,
    handler text,
    tenant_scope text NOT NULL,
    max_attempts integer DEFAULT 5 NOT NULL,
    description text NOT NULL,
    CONSTRAINT queue_tasks_max_attempts_positive CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
    CONSTRAINT queue_tasks_queue_known CHECK ((queue = ANY (ARRAY['attribution'::text, 'housekeeping'::text, 'maintenance'::text, 'llm'::text]))),
    CONSTRAINT queue_tasks_task_format CHECK ((task ~ '^[a-z][a-z0-9_]{0,62}$'::text)),
    CONSTRAINT queue_tasks_tenant_scope CHECK ((tenant_scope = ANY (ARRAY['tenant'::text, 'system'::text, 'any'::text])))
);

CREATE TABLE apportion.refund_allocation_history (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    refund_id uuid NOT NULL,
    event_id uuid NOT NULL,
    model_version text NOT NULL,
    channel text NOT NULL,
    refunded_cents bigint NOT NULL,
    correlation_id uuid,
    change_reason text NOT NULL,
    valid_from timestamp with time zone NOT NULL,
    valid_to timestamp with time zone NOT NULL,
    ended_reason text NOT NULL,
    ended_correlation_id uuid
);

ALTER TABLE ONLY apportion.refund_allocation_history FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.restatement_skips (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    model_version text NOT NULL,
    event_count bigint NOT NULL,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL,
    correlation_id uuid,
    CONSTRAINT restatement_skips_event_count_positive CHECK ((event_count > 0))
);

ALTER TABLE ONLY apportion.restatement_skips FORCE ROW LEVEL SECURITY;

CREATE VIEW apportion.restatements_skipped WITH (security_invoker='true') AS
 SELECT s.tenant_id,
    s.model_version,
    (sum(s.event_count))::bigint AS skipped_events,
    max(s.recorded_at) AS last_skipped_at
   FROM apportion.restatement_skips s
  GROUP BY s.tenant_id, s.model_version;

CREATE TABLE apportion.schema_migrations (
    id integer NOT NULL,
    name character varying(255) NOT NULL,
    run_on timestamp without time zone NOT NULL
);

CREATE SEQUENCE apportion.schema_migrations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE apportion.schema_migrations_id_seq OWNED BY apportion.schema_migrations.id;

CREATE TABLE apportion.tenant_bindings (
    login regrole NOT NULL,
    tenant_id uuid NOT NULL,
    bound_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY apportion.tenant_bindings FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.tenant_models (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    model_version text NOT NULL,
    activated_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY apportion.tenant_models FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.tenants (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    max_queued_jobs integer DEFAULT 1000000 NOT NULL,
    restatement_horizon interval DEFAULT '90 days'::interval NOT NULL,
    CONSTRAINT tenants_max_queued_jobs_positive CHECK ((max_queued_jobs > 0)),
    CONSTRAINT tenants_name_not_blank CHECK ((btrim(name) <> ''::text)),
    CONSTRAINT tenants_restatement_horizon_range CHECK (((restatement_horizon >= '00:00:00'::interval) AND (restatement_horizon <= '100 years'::interval)))
);

ALTER TABLE ONLY apportion.tenants FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.touchpoints (
    tenant_id uuid DEFAULT apportion.current_tenant_id() NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    customer_id text NOT NULL,
    channel text NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    campaign text,
    external_id text,
    properties jsonb DEFAULT '{}'::jsonb NOT NULL,
    ingested_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT touchpoints_customer_id_length CHECK (((length(customer_id) >= 1) AND (length(customer_id) <= 256))),
    CONSTRAINT touchpoints_external_id_length CHECK (((length(external_id) >= 1) AND (length(external_id) <= 256))),
    CONSTRAINT touchpoints_properties_is_object CHECK ((jsonb_typeof(properties) = 'object'::text))
);

ALTER TABLE ONLY apportion.touchpoints FORCE ROW LEVEL SECURITY;

CREATE TABLE apportion.worker_failed_jobs (
    id bigint NOT NULL,
    tenant_id uuid,
    job_id bigint NOT NULL,
    queue text NOT NULL,
    task text NOT NULL,
    payload jsonb NOT NULL,
    error_code text NOT NULL,
    error_message text NOT NULL,
    attempts integer NOT NULL,
    correlation_id uuid,
    failed_at timestamp with time zone DEFAULT now() NOT NULL,
    status text DEFAULT 'open'::text NOT NULL,
    replayed_job_id bigint,
    settled_at timestamp with time zone,
    CONSTRAINT worker_failed_jobs_status_known CHECK ((status = ANY (ARRAY['open'::text, 'replayed'::text, 'resolved'::text])))
);

ALTER TABLE ONLY apportion.worker_failed_jobs FORCE ROW LEVEL SECURITY;

ALTER TABLE apportion.worker_failed_jobs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME apportion.worker_failed_jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE ONLY apportion.jobs ATTACH PARTITION apportion.jobs_done FOR VALUES IN ('succeeded', 'failed');

ALTER TABLE ONLY apportion.jobs ATTACH PARTITION apportion.jobs_live FOR VALUES IN ('queued', 'running');

ALTER TABLE ONLY apportion.schema_migrations ALTER COLUMN id SET DEFAULT nextval('apportion.schema_migrations_id_seq'::regclass);

ALTER TABLE ONLY apportion.attribution_allocations
    ADD CONSTRAINT attribution_allocations_key PRIMARY KEY (tenant_id, event_id, model_version, channel);

ALTER TABLE apportion.attribution_events
    ADD CONSTRAINT attribution_events_currency_iso_4217_with_minor_units CHECK ((apportion.currency_minor_units((currency)::text) IS NOT NULL)) NOT VALID;

ALTER TABLE ONLY apportion.attribution_events
    ADD CONSTRAINT attribution_events_external_event_id_unique UNIQUE (tenant_id, external_event_id);

ALTER TABLE apportion.attribution_events
    ADD CONSTRAINT attribution_events_occurred_at_in_years_1_to_9999 CHECK (((occurred_at >= '0001-01-01 00:00:00+00'::timestamp with time zone) AND (occurred_at < '10000-01-01 00:00:00+00'::timestamp with time zone))) NOT VALID;

ALTER TABLE ONLY apportion.attribution_events
    ADD CONSTRAINT attribution_events_pkey PRIMARY KEY (tenant_id, id);

ALTER TABLE ONLY apportion.attribution_models
    ADD CONSTRAINT attribution_models_pkey PRIMARY KEY (model_version);

ALTER TABLE ONLY apportion.channels
    ADD CONSTRAINT channels_pkey PRIMARY KEY (tenant_id, code);

ALTER TABLE ONLY apportion.db_sources
    ADD CONSTRAINT db_sources_pkey PRIMARY KEY (name);

ALTER TABLE ONLY apportion.half_life_factors
    ADD CONSTRAINT half_life_factors_pkey PRIMARY KEY (half_life_us, part, digits);

ALTER TABLE ONLY apportion.jobs
    ADD CONSTRAINT jobs_key PRIMARY KEY (id, state);

ALTER TABLE ONLY apportion.jobs_done
    ADD CONSTRAINT jobs_done_pkey PRIMARY KEY (id, state);

ALTER TABLE ONLY apportion.jobs_live
    ADD CONSTRAINT jobs_live_pkey PRIMARY KEY (id, state);

ALTER TABLE ONLY apportion.markov_removal_effects
    ADD CONSTRAINT markov_removal_effects_pkey PRIMARY KEY (tenant_id, model_version, channel);

ALTER TABLE ONLY apportion.markov_transitions
    ADD CONSTRAINT markov_transitions_pkey PRIMARY KEY (tenant_id, model_version, from_state, to_state);

ALTER TABLE ONLY apportion.pending_allocations
    ADD CONSTRAINT pending_allocations_pkey PRIMARY KEY (tenant_id, model_version, event_id);

ALTER TABLE ONLY apportion.queue_tasks
    ADD CONSTRAINT queue_tasks_pkey PRIMARY KEY (queue, task);

ALTER TABLE ONLY apportion.refund_allocations
    ADD CONSTRAINT refund_allocations_pkey PRIMARY KEY (tenant_id, refund_id, model_version, channel);

ALTER TABLE ONLY apportion.refunds
    ADD CONSTRAINT refunds_external_refund_id_unique UNIQUE (tenant_id, external_refund_id);

ALTER TABLE ONLY apportion.refunds
    ADD CONSTRAINT refunds_pkey PRIMARY KEY (tenant_id, id);

ALTER TABLE ONLY apportion.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY apportion.tenant_bindings
    ADD CONSTRAINT tenant_bindings_pkey PRIMARY KEY (login, tenant_id);

ALTER TABLE ONLY apportion.tenant_models
    ADD CONSTRAINT tenant_models_pkey PRIMARY KEY (tenant_id, model_version);

ALTER TABLE ONLY apportion.tenants
    ADD CONSTRAINT tenants_pkey PRIMARY KEY (id);

ALTER TABLE ONLY apportion.touchpoints
    ADD CONSTRAINT touchpoints_external_id_unique UNIQUE (tenant_id, external_id);

ALTER TABLE apportion.touchpoints
    ADD CONSTRAINT touchpoints_occurred_at_in_years_1_to_9999 CHECK (((occurred_at >= '0001-01-01 00:00:00+00'::timestamp with time zone) AND (occurred_at < '10000-01-01 00:00:00+00'::timestamp with time zone))) NOT VALID;

ALTER TABLE ONLY apportion.touchpoints
    ADD CONSTRAINT touchpoints_pkey PRIMARY KEY (tenant_id, id);

ALTER TABLE ONLY apportion.trained_models
    ADD CONSTRAINT trained_models_pkey PRIMARY KEY (tenant_id, model_version);

ALTER TABLE ONLY apportion.worker_failed_jobs
    ADD CONSTRAINT worker_failed_jobs_pkey PRIMARY KEY (id);

CREATE INDEX allocation_history_as_of_idx ON apportion.allocation_history USING btree (tenant_id, model_version, valid_to, valid_from);

CREATE INDEX allocation_history_key_idx ON apportion.allocation_history USING btree (tenant_id, event_id, model_version, channel, valid_from);

CREATE INDEX attribution_allocations_as_of_idx ON apportion.attribution_allocations USING btree (tenant_id, model_version, computed_at);

CREATE INDEX attribution_allocations_daily_idx ON apportion.attribution_allocations USING btree (tenant_id, model_version, (((event_occurred_at AT TIME ZONE 'UTC'::text))::date));

CREATE INDEX attribution_events_customer_idx ON apportion.attribution_events USING btree (tenant_id, customer_id, occurred_at);

CREATE INDEX attribution_events_occurred_at_idx ON apportion.attribution_events USING btree (tenant_id, occurred_at);

CREATE INDEX jobs_correlation_idx ON ONLY apportion.jobs USING btree (correlation_id) WHERE (correlation_id IS NOT NULL);

CREATE INDEX jobs_done_correlation_id_idx ON apportion.jobs_done USING btree (correlation_id) WHERE (correlation_id IS NOT NULL);

CREATE INDEX jobs_done_finished_idx ON apportion.jobs_done USING brin (finished_at);

CREATE INDEX jobs_lease_idx ON apportion.jobs_live USING btree (locked_until) WHERE (state = 'running'::text);

CREATE INDEX jobs_live_correlation_id_idx ON apportion.jobs_live USING btree (correlation_id) WHERE (correlation_id IS NOT NULL);

CREATE INDEX jobs_queued_by_tenant_idx ON apportion.jobs_live USING btree (tenant_id) WHERE (state = 'queued'::text);

CREATE UNIQUE INDEX jobs_queued_key_idx ON apportion.jobs_live USING btree (COALESCE(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), queue, task, job_key) WHERE ((state = 'queued'::text) AND (job_key IS NOT NULL));

CREATE INDEX jobs_runnable_idx ON apportion.jobs_live USING btree (((tenant_id IS NOT NULL)), priority, run_at, id) WHERE ((state = 'queued'::text) AND (NOT parked) AND (NOT scheduled));

CREATE INDEX jobs_scheduled_idx ON apportion.jobs_live USING btree (run_at) WHERE ((state = 'queued'::text) AND scheduled);

CREATE INDEX refund_allocation_history_key_idx ON apportion.refund_allocation_history USING btree (tenant_id, refund_id, model_version, channel, valid_from);

CREATE INDEX refund_allocations_event_idx ON apportion.refund_allocations USING btree (tenant_id, event_id, model_version);

CREATE INDEX refunds_event_idx ON apportion.refunds USING btree (tenant_id, event_id, occurred_at, id);

CREATE INDEX refunds_occurred_at_idx ON apportion.refunds USING btree (tenant_id, occurred_at);

CREATE INDEX restatement_skips_tenant_idx ON apportion.restatement_skips USING btree (tenant_id, model_version);

CREATE INDEX touchpoints_lookback_idx ON apportion.touchpoints USING btree (tenant_id, customer_id, occurred_at, id) INCLUDE (channel);

CREATE INDEX worker_failed_jobs_correlation_idx ON apportion.worker_failed_jobs USING btree (correlation_id) WHERE (correlation_id IS NOT NULL);

CREATE INDEX worker_failed_jobs_job_idx ON apportion.worker_failed_jobs USING btree (job_id);

CREATE INDEX worker_failed_jobs_tenant_idx ON apportion.worker_failed_jobs USING btree (tenant_id, failed_at);

ALTER INDEX apportion.jobs_correlation_idx ATTACH PARTITION apportion.jobs_done_correlation_id_idx;

ALTER INDEX apportion.jobs_key ATTACH PARTITION apportion.jobs_done_pkey;

ALTER INDEX apportion.jobs_correlation_idx ATTACH PARTITION apportion.jobs_live_correlation_id_idx;

ALTER INDEX apportion.jobs_key ATTACH PARTITION apportion.jobs_live_pkey;

CREATE TRIGGER attribution_allocations_history_delete AFTER DELETE ON apportion.attribution_allocations REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION apportion_internal.record_allocation_history();

CREATE TRIGGER attribution_allocations_history_update AFTER UPDATE ON apportion.attribution_allocations REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION apportion_internal.record_allocation_history();

CREATE TRIGGER attribution_events_check_tenant BEFORE INSERT OR UPDATE ON apportion.attribution_events FOR EACH ROW WHEN (((new.tenant_id IS NULL) OR (new.tenant_id IS DISTINCT FROM apportion.current_tenant_id()))) EXECUTE FUNCTION apportion_internal.check_tenant_write();

CREATE TRIGGER attribution_events_enqueue_allocation AFTER INSERT ON apportion.attribution_events REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION apportion_internal.enqueue_new_events();

CREATE TRIGGER attribution_models_half_life_factors AFTER INSERT ON apportion.attribution_models FOR EACH ROW WHEN ((new.kind = 'time_decay'::text)) EXECUTE FUNCTION apportion_internal.model_registered();

CREATE TRIGGER attribution_models_immutable BEFORE UPDATE ON apportion.attribution_models FOR EACH ROW EXECUTE FUNCTION apportion_internal.forbid_model_change();

CREATE TRIGGER channels_check_tenant BEFORE INSERT OR UPDATE ON apportion.channels FOR EACH ROW WHEN (((new.tenant_id IS NULL) OR (new.tenant_id IS DISTINCT FROM apportion.current_tenant_id()))) EXECUTE FUNCTION apportion_internal.check_tenant_write();

CREATE TRIGGER jobs_cap AFTER INSERT ON apportion.jobs REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION apportion_internal.enforce_queued_job_caps();

CREATE TRIGGER jobs_done_record_failure AFTER INSERT ON apportion.jobs_done FOR EACH ROW WHEN ((new.state = 'failed'::text)) EXECUTE FUNCTION apportion_internal.record_failure();

CREATE TRIGGER jobs_live_prepare BEFORE INSERT ON apportion.jobs_live FOR EACH ROW EXECUTE FUNCTION apportion_internal.prepare_job();

CREATE TRIGGER jobs_live_reschedule BEFORE UPDATE OF run_at ON apportion.jobs_live FOR EACH ROW EXECUTE FUNCTION apportion_internal.reschedule_job();

CREATE TRIGGER jobs_notify AFTER INSERT ON apportion.jobs REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION apportion_internal.notify_new_jobs();

CREATE TRIGGER markov_removal_effects_immutable BEFORE DELETE OR UPDATE ON apportion.markov_removal_effects FOR EACH ROW EXECUTE FUNCTION apportion_internal.forbid_trained_change();

CREATE TRIGGER markov_transitions_immutable BEFORE DELETE OR UPDATE ON apportion.markov_transitions FOR EACH ROW EXECUTE FUNCTION apportion_internal.forbid_trained_change();

CREATE TRIGGER queue_tasks_regenerate_dispatcher AFTER INSERT OR DELETE OR UPDATE ON apportion.queue_tasks FOR EACH STATEMENT EXECUTE FUNCTION apportion_internal.queue_tasks_changed();

CREATE TRIGGER refund_allocations_history_delete AFTER DELETE ON apportion.refund_allocations REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION apportion_internal.record_refund_allocation_history();

CREATE TRIGGER refund_allocations_history_update AFTER UPDATE ON apportion.refund_allocations REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION apportion_internal.record_refund_allocation_history();

CREATE TRIGGER refunds_check_and_split AFTER INSERT ON apportion.refunds REFERENCING NEW TABLE AS new_refunds FOR EACH STATEMENT EXECUTE FUNCTION apportion_internal.check_and_split_refunds();

CREATE TRIGGER refunds_check_tenant BEFORE INSERT ON apportion.refunds FOR EACH ROW EXECUTE FUNCTION apportion_internal.check_tenant_write();

CREATE TRIGGER touchpoints_check_tenant BEFORE INSERT OR UPDATE ON apportion.touchpoints FOR EACH ROW WHEN (((new.tenant_id IS NULL) OR (new.tenant_id IS DISTINCT FROM apportion.current_tenant_id()))) EXECUTE FUNCTION apportion_internal.check_tenant_write();

CREATE TRIGGER touchpoints_restate_allocations AFTER INSERT ON apportion.touchpoints REFERENCING NEW TABLE AS new_touches FOR EACH STATEMENT EXECUTE FUNCTION apportion_internal.restate_for_late_touches();

CREATE TRIGGER trained_models_immutable BEFORE DELETE OR UPDATE ON apportion.trained_models FOR EACH ROW EXECUTE FUNCTION apportion_internal.forbid_trained_change();

ALTER TABLE ONLY apportion.attribution_allocations
    ADD CONSTRAINT attribution_allocations_channel_fk FOREIGN KEY (tenant_id, channel) REFERENCES apportion.channels(tenant_id, code);

ALTER TABLE ONLY apportion.attribution_allocations
    ADD CONSTRAINT attribution_allocations_event_fk FOREIGN KEY (tenant_id, event_id) REFERENCES apportion.attribution_events(tenant_id, id) ON DELETE CASCADE;

ALTER TABLE ONLY apportion.attribution_allocations
    ADD CONSTRAINT attribution_allocations_model_version_fkey FOREIGN KEY (model_version) REFERENCES apportion.attribution_models(model_version);

ALTER TABLE ONLY apportion.attribution_events
    ADD CONSTRAINT attribution_events_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES apportion.tenants(id);

ALTER TABLE ONLY apportion.channels
    ADD CONSTRAINT channels_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES apportion.tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY apportion.jobs_live
    ADD CONSTRAINT jobs_task_registered FOREIGN KEY (queue, task) REFERENCES apportion.queue_tasks(queue, task);

ALTER TABLE ONLY apportion.markov_removal_effects
    ADD CONSTRAINT markov_removal_effects_tenant_id_model_version_fkey FOREIGN KEY (tenant_id, model_version) REFERENCES apportion.trained_models(tenant_id, model_version);

ALTER TABLE ONLY apportion.markov_transitions
    ADD CONSTRAINT markov_transitions_tenant_id_model_version_fkey FOREIGN KEY (tenant_id, model_version) REFERENCES apportion.trained_models(tenant_id, model_version);

ALTER TABLE ONLY apportion.refund_allocations
    ADD CONSTRAINT refund_allocations_model_version_fkey FOREIGN KEY (model_version) REFERENCES apportion.attribution_models(model_version);

ALTER TABLE ONLY apportion.refund_allocations
    ADD CONSTRAINT refund_allocations_tenant_id_refund_id_fkey FOREIGN KEY (tenant_id, refund_id) REFERENCES apportion.refunds(tenant_id, id);

ALTER TABLE ONLY apportion.refunds
    ADD CONSTRAINT refunds_event_fk FOREIGN KEY (tenant_id, event_id) REFERENCES apportion.attribution_events(tenant_id, id);

ALTER TABLE ONLY apportion.refunds
    ADD CONSTRAINT refunds_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES apportion.tenants(id);

ALTER TABLE ONLY apportion.tenant_bindings
    ADD CONSTRAINT tenant_bindings_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES apportion.tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY apportion.tenant_models
    ADD CONSTRAINT tenant_models_model_version_fkey FOREIGN KEY (model_version) REFERENCES apportion.attribution_models(model_version);

ALTER TABLE ONLY apportion.tenant_models
    ADD CONSTRAINT tenant_models_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES apportion.tenants(id) ON DELETE CASCADE;

ALTER TABLE ONLY apportion.touchpoints
    ADD CONSTRAINT touchpoints_channel_in_taxonomy FOREIGN KEY (tenant_id, channel) REFERENCES apportion.channels(tenant_id, code);

ALTER TABLE ONLY apportion.trained_models
    ADD CONSTRAINT trained_models_model_version_fkey FOREIGN KEY (model_version) REFERENCES apportion.attribution_models(model_version);

ALTER TABLE ONLY apportion.trained_models
    ADD CONSTRAINT trained_models_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES apportion.tenants(id);

ALTER TABLE apportion.allocation_history ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.attribution_allocations ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.attribution_events ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.channels ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.jobs ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.jobs_done ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.jobs_live ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.markov_removal_effects ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.markov_transitions ENABLE ROW LEVEL SECURITY;

CREATE POLICY owner_admin ON apportion.allocation_history TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.attribution_allocations TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.attribution_events TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.channels TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.jobs TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.jobs_done TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.jobs_live TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.markov_removal_effects TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.markov_transitions TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.pending_allocations TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.refund_allocation_history TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.refund_allocations TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.refunds TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.restatement_skips TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.tenant_bindings TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.tenant_models TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.tenants TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.touchpoints TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.trained_models TO apportion_owner USING (true) WITH CHECK (true);

CREATE POLICY owner_admin ON apportion.worker_failed_jobs TO apportion_owner USING (true) WITH CHECK (true);

ALTER TABLE apportion.pending_allocations ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.refund_allocation_history ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.refund_allocations ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.refunds ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.restatement_skips ENABLE ROW LEVEL SECURITY;

CREATE POLICY system_jobs ON apportion.jobs TO apportion_worker USING ((tenant_id IS NULL)) WITH CHECK ((tenant_id IS NULL));

CREATE POLICY system_jobs ON apportion.jobs_done TO apportion_worker USING ((tenant_id IS NULL)) WITH CHECK ((tenant_id IS NULL));

CREATE POLICY system_jobs ON apportion.jobs_live TO apportion_worker USING ((tenant_id IS NULL)) WITH CHECK ((tenant_id IS NULL));

CREATE POLICY system_jobs ON apportion.worker_failed_jobs TO apportion_worker USING ((tenant_id IS NULL)) WITH CHECK ((tenant_id IS NULL));

ALTER TABLE apportion.tenant_bindings ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON apportion.allocation_history TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.attribution_allocations TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.attribution_events TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.channels TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.jobs TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.jobs_done TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.jobs_live TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.markov_removal_effects TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.markov_transitions TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.pending_allocations TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.refund_allocation_history TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.refund_allocations TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.refunds TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.restatement_skips TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.tenant_models TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.tenants TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.touchpoints TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.trained_models TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

CREATE POLICY tenant_isolation ON apportion.worker_failed_jobs TO apportion_ingest, apportion_worker, apportion_reader, apportion_allocator USING (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed))) WITH CHECK (((tenant_id = apportion.current_tenant_id()) AND ( SELECT apportion.current_tenant_allowed() AS current_tenant_allowed)));

ALTER TABLE apportion.tenant_models ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.tenants ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.touchpoints ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.trained_models ENABLE ROW LEVEL SECURITY;

ALTER TABLE apportion.worker_failed_jobs ENABLE ROW LEVEL SECURITY;

GRANT USAGE ON SCHEMA apportion TO apportion_ingest;
GRANT USAGE ON SCHEMA apportion TO apportion_worker;
GRANT USAGE ON SCHEMA apportion TO apportion_reader;
GRANT USAGE ON SCHEMA apportion TO apportion_allocator;

REVOKE ALL ON TYPE apportion.job_outcome FROM PUBLIC;
GRANT ALL ON TYPE apportion.job_outcome TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.activate_model(p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.activate_model(p_model_version text) TO apportion_ingest;

REVOKE ALL ON FUNCTION apportion.activate_model_for(p_tenant uuid, p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.activate_model_for(p_tenant uuid, p_model_version text) TO apportion_ingest;

REVOKE ALL ON FUNCTION apportion.current_tenant_id() FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.current_tenant_id() TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.current_tenant_id() TO apportion_worker;
GRANT ALL ON FUNCTION apportion.current_tenant_id() TO apportion_reader;
GRANT ALL ON FUNCTION apportion.current_tenant_id() TO apportion_allocator;

GRANT SELECT ON TABLE apportion.attribution_allocations TO apportion_ingest;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE apportion.attribution_allocations TO apportion_worker;
GRANT SELECT ON TABLE apportion.attribution_allocations TO apportion_reader;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE apportion.attribution_allocations TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.allocate_event(p_event_id uuid, p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.allocate_event(p_event_id uuid, p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.allocate_event(p_event_id uuid, p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.allocate_event_for(p_tenant uuid, p_event_id uuid, p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.allocate_event_for(p_tenant uuid, p_event_id uuid, p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.allocate_event_for(p_tenant uuid, p_event_id uuid, p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.allocation_rows(p_tenant uuid, p_kind text, p_lookback interval, p_fallback_channel text, p_half_life_seconds numeric, p_first_share numeric, p_last_share numeric, p_split_channels text[], p_split_weights numeric[], p_direct_channels text[], p_event_ids uuid[], p_window_start timestamp with time zone, p_window_end timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.allocation_rows(p_tenant uuid, p_kind text, p_lookback interval, p_fallback_channel text, p_half_life_seconds numeric, p_first_share numeric, p_last_share numeric, p_split_channels text[], p_split_weights numeric[], p_direct_channels text[], p_event_ids uuid[], p_window_start timestamp with time zone, p_window_end timestamp with time zone) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.allocation_rows(p_tenant uuid, p_kind text, p_lookback interval, p_fallback_channel text, p_half_life_seconds numeric, p_first_share numeric, p_last_share numeric, p_split_channels text[], p_split_weights numeric[], p_direct_channels text[], p_event_ids uuid[], p_window_start timestamp with time zone, p_window_end timestamp with time zone) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.allocations_as_of(p_model_version text, p_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.allocations_as_of(p_model_version text, p_at timestamp with time zone) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.allocations_as_of(p_model_version text, p_at timestamp with time zone) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.allocations_as_of(p_model_version text, p_at timestamp with time zone) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.allocations_as_of(p_model_version text, p_at timestamp with time zone) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.allocations_for(p_tenant uuid, p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.allocations_for(p_tenant uuid, p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.allocations_for(p_tenant uuid, p_model_version text) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.allocations_for(p_tenant uuid, p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.bind_login(p_login regrole, p_tenant_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion.claim_and_run_jobs(p_worker_id text, p_queues text[], p_limit integer, p_lease_seconds integer, p_run_max integer) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.claim_and_run_jobs(p_worker_id text, p_queues text[], p_limit integer, p_lease_seconds integer, p_run_max integer) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.claim_jobs(p_worker_id text, p_queues text[], p_limit integer, p_lease_seconds integer) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.claim_jobs(p_worker_id text, p_queues text[], p_limit integer, p_lease_seconds integer) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.compute_allocations(p_model_version text, p_event_ids uuid[], p_window_start timestamp with time zone, p_window_end timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.compute_allocations(p_model_version text, p_event_ids uuid[], p_window_start timestamp with time zone, p_window_end timestamp with time zone) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.compute_allocations(p_model_version text, p_event_ids uuid[], p_window_start timestamp with time zone, p_window_end timestamp with time zone) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.create_tenant(p_name text, p_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion.currency_minor_units(p_code text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.currency_minor_units(p_code text) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.currency_minor_units(p_code text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.currency_minor_units(p_code text) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.currency_minor_units(p_code text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.current_tenant_allowed() FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.current_tenant_allowed() TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.current_tenant_allowed() TO apportion_worker;
GRANT ALL ON FUNCTION apportion.current_tenant_allowed() TO apportion_reader;
GRANT ALL ON FUNCTION apportion.current_tenant_allowed() TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.daily_channel_revenue_as_of(p_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.daily_channel_revenue_as_of(p_at timestamp with time zone) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.daily_channel_revenue_as_of(p_at timestamp with time zone) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.daily_channel_revenue_as_of(p_at timestamp with time zone) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.daily_channel_revenue_as_of(p_at timestamp with time zone) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.major_units(p_minor numeric, p_currency text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.major_units(p_minor numeric, p_currency text) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.major_units(p_minor numeric, p_currency text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.major_units(p_minor numeric, p_currency text) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.major_units(p_minor numeric, p_currency text) TO apportion_allocator;

GRANT SELECT ON TABLE apportion.daily_channel_revenue TO apportion_ingest;
GRANT SELECT ON TABLE apportion.daily_channel_revenue TO apportion_worker;
GRANT SELECT ON TABLE apportion.daily_channel_revenue TO apportion_reader;
GRANT SELECT ON TABLE apportion.daily_channel_revenue TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.daily_channel_revenue_for(p_tenant uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.daily_channel_revenue_for(p_tenant uuid) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.daily_channel_revenue_for(p_tenant uuid) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.daily_channel_revenue_for(p_tenant uuid) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.daily_channel_revenue_for(p_tenant uuid) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.deactivate_model(p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.deactivate_model(p_model_version text) TO apportion_ingest;

REVOKE ALL ON FUNCTION apportion.enqueue(p_queue text, p_task text, p_payload jsonb, p_correlation_id uuid, p_run_at timestamp with time zone, p_priority integer, p_job_key text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.enqueue(p_queue text, p_task text, p_payload jsonb, p_correlation_id uuid, p_run_at timestamp with time zone, p_priority integer, p_job_key text) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.enqueue(p_queue text, p_task text, p_payload jsonb, p_correlation_id uuid, p_run_at timestamp with time zone, p_priority integer, p_job_key text) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.enqueue_for(p_tenant uuid, p_queue text, p_task text, p_payload jsonb, p_correlation_id uuid, p_run_at timestamp with time zone, p_priority integer, p_job_key text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.enqueue_for(p_tenant uuid, p_queue text, p_task text, p_payload jsonb, p_correlation_id uuid, p_run_at timestamp with time zone, p_priority integer, p_job_key text) TO apportion_ingest;

REVOKE ALL ON FUNCTION apportion.enqueue_many(p_queue text, p_task text, p_payloads jsonb, p_correlation_id uuid, p_priority integer) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.enqueue_many(p_queue text, p_task text, p_payloads jsonb, p_correlation_id uuid, p_priority integer) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.enqueue_many(p_queue text, p_task text, p_payloads jsonb, p_correlation_id uuid, p_priority integer) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.enter_tenant(p_tenant uuid, p_function text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.enter_tenant(p_tenant uuid, p_function text) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.enter_tenant(p_tenant uuid, p_function text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.enter_tenant(p_tenant uuid, p_function text) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.enter_tenant(p_tenant uuid, p_function text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.exact_fraction(p_a numeric, p_b numeric, OUT num numeric, OUT den numeric) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.exact_fraction(p_a numeric, p_b numeric, OUT num numeric, OUT den numeric) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.exact_fraction(p_a numeric, p_b numeric, OUT num numeric, OUT den numeric) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.explain_allocation(p_event_id uuid, p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.explain_allocation(p_event_id uuid, p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.explain_allocation(p_event_id uuid, p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.explain_allocation_for(p_tenant uuid, p_event_id uuid, p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.explain_allocation_for(p_tenant uuid, p_event_id uuid, p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.explain_allocation_for(p_tenant uuid, p_event_id uuid, p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.ingest_events_for(p_tenant uuid, p_rows jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.ingest_events_for(p_tenant uuid, p_rows jsonb) TO apportion_ingest;

REVOKE ALL ON FUNCTION apportion.ingest_refunds_for(p_tenant uuid, p_rows jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.ingest_refunds_for(p_tenant uuid, p_rows jsonb) TO apportion_ingest;

REVOKE ALL ON FUNCTION apportion.ingest_touchpoints_for(p_tenant uuid, p_rows jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.ingest_touchpoints_for(p_tenant uuid, p_rows jsonb) TO apportion_ingest;

REVOKE ALL ON FUNCTION apportion.iso_currencies() FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.iso_currencies() TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.iso_currencies() TO apportion_worker;
GRANT ALL ON FUNCTION apportion.iso_currencies() TO apportion_reader;
GRANT ALL ON FUNCTION apportion.iso_currencies() TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.job_status(p_job_id bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.job_status(p_job_id bigint) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.job_status(p_job_id bigint) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.markov_paths(p_tenant uuid, p_lookback interval, p_start timestamp with time zone, p_end timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.markov_paths(p_tenant uuid, p_lookback interval, p_start timestamp with time zone, p_end timestamp with time zone) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.markov_paths(p_tenant uuid, p_lookback interval, p_start timestamp with time zone, p_end timestamp with time zone) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.markov_solve(p_from text[], p_to text[], p_count bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.markov_solve(p_from text[], p_to text[], p_count bigint[]) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.markov_solve(p_from text[], p_to text[], p_count bigint[]) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.markov_summary(p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.markov_summary(p_model_version text) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.markov_summary(p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.markov_summary(p_model_version text) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.markov_summary(p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.markov_training_window(p_params jsonb, OUT training_start timestamp with time zone, OUT training_end timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.markov_training_window(p_params jsonb, OUT training_start timestamp with time zone, OUT training_end timestamp with time zone) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.markov_training_window(p_params jsonb, OUT training_start timestamp with time zone, OUT training_end timestamp with time zone) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.markov_transition_counts(p_tenant uuid, p_lookback interval, p_start timestamp with time zone, p_end timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.markov_transition_counts(p_tenant uuid, p_lookback interval, p_start timestamp with time zone, p_end timestamp with time zone) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.markov_transition_counts(p_tenant uuid, p_lookback interval, p_start timestamp with time zone, p_end timestamp with time zone) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.mask_payload_values(p_message text, p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.mask_payload_values(p_message text, p_payload jsonb) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.model_lookback(p_params jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.model_lookback(p_params jsonb) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.model_lookback(p_params jsonb) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.model_lookback(p_params jsonb) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.open_failures(p_correlation_id uuid, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.open_failures(p_correlation_id uuid, p_limit integer) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.param_interval(p_params jsonb, p_key text, p_default interval) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.param_interval(p_params jsonb, p_key text, p_default interval) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.param_interval(p_params jsonb, p_key text, p_default interval) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.param_interval(p_params jsonb, p_key text, p_default interval) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.param_share(p_params jsonb, p_key text, p_default numeric) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.param_share(p_params jsonb, p_key text, p_default numeric) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.param_share(p_params jsonb, p_key text, p_default numeric) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.param_timestamp(p_params jsonb, p_key text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.param_timestamp(p_params jsonb, p_key text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.param_timestamp(p_params jsonb, p_key text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.payload_keys_only(p_payload jsonb, p_allowed text[], p_task text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.payload_keys_only(p_payload jsonb, p_allowed text[], p_task text) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.payload_text(p_payload jsonb, p_key text, p_task text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.payload_text(p_payload jsonb, p_key text, p_task text) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.payload_timestamptz(p_payload jsonb, p_key text, p_task text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.payload_timestamptz(p_payload jsonb, p_key text, p_task text) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.payload_uuid(p_payload jsonb, p_key text, p_task text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.payload_uuid(p_payload jsonb, p_key text, p_task text) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.pending_allocations_overview() FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.pending_allocations_overview() TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.prune_jobs(p_retention interval) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.prune_jobs(p_retention interval) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.queue_overview() FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.queue_overview() TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.reclaim_expired_leases(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.reclaim_expired_leases(p_limit integer) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.recompute_window(p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.recompute_window(p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.recompute_window(p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.recompute_window_for(p_tenant uuid, p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.recompute_window_for(p_tenant uuid, p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.recompute_window_for(p_tenant uuid, p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.register_model(p_model_version text, p_kind text, p_params jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion.release_jobs(p_worker_id text, p_job_ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.release_jobs(p_worker_id text, p_job_ids bigint[]) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.replay_failed_job(p_job_id bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.replay_failed_job(p_job_id bigint) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.require_as_of(p_model_version text, p_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.require_as_of(p_model_version text, p_at timestamp with time zone) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.require_as_of(p_model_version text, p_at timestamp with time zone) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.require_as_of(p_model_version text, p_at timestamp with time zone) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.require_as_of(p_model_version text, p_at timestamp with time zone) TO apportion_allocator;

GRANT SELECT ON TABLE apportion.attribution_models TO apportion_ingest;
GRANT SELECT ON TABLE apportion.attribution_models TO apportion_worker;
GRANT SELECT ON TABLE apportion.attribution_models TO apportion_reader;
GRANT SELECT ON TABLE apportion.attribution_models TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.require_model(p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.require_model(p_model_version text) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.require_model(p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.require_model(p_model_version text) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.require_model(p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.require_tenant() FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.require_tenant() TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.require_tenant() TO apportion_worker;
GRANT ALL ON FUNCTION apportion.require_tenant() TO apportion_reader;
GRANT ALL ON FUNCTION apportion.require_tenant() TO apportion_allocator;

GRANT SELECT ON TABLE apportion.trained_models TO apportion_ingest;
GRANT SELECT,INSERT ON TABLE apportion.trained_models TO apportion_worker;
GRANT SELECT ON TABLE apportion.trained_models TO apportion_reader;
GRANT SELECT,INSERT ON TABLE apportion.trained_models TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.require_trained(p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.require_trained(p_model_version text) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.require_trained(p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.require_trained(p_model_version text) TO apportion_reader;
GRANT ALL ON FUNCTION apportion.require_trained(p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.resolve_failed_job(p_job_id bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.resolve_failed_job(p_job_id bigint) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.resolve_model_params(p_kind text, p_params jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.resolve_model_params(p_kind text, p_params jsonb) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.resolve_model_params(p_kind text, p_params jsonb) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.run_jobs(p_worker_id text, p_job_ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.run_jobs(p_worker_id text, p_job_ids bigint[]) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.run_task(p_queue text, p_task text, p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.run_task(p_queue text, p_task text, p_payload jsonb) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.run_tenant_jobs(p_worker_id text, p_tenant_id uuid, p_job_ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.run_tenant_jobs(p_worker_id text, p_tenant_id uuid, p_job_ids bigint[]) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.schema_version() FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.schema_version() TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.schema_version() TO apportion_worker;
GRANT ALL ON FUNCTION apportion.schema_version() TO apportion_reader;
GRANT ALL ON FUNCTION apportion.schema_version() TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.store_allocations(p_model_version text, p_event_ids uuid[], p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.store_allocations(p_model_version text, p_event_ids uuid[], p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_reason text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.store_allocations(p_model_version text, p_event_ids uuid[], p_window_start timestamp with time zone, p_window_end timestamp with time zone, p_reason text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.store_refund_allocations(p_event_ids uuid[], p_model_version text, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.store_refund_allocations(p_event_ids uuid[], p_model_version text, p_reason text) TO apportion_ingest;
GRANT ALL ON FUNCTION apportion.store_refund_allocations(p_event_ids uuid[], p_model_version text, p_reason text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.store_refund_allocations(p_event_ids uuid[], p_model_version text, p_reason text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.task_allocate_event(p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.task_allocate_event(p_payload jsonb) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.task_allocate_pending(p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.task_allocate_pending(p_payload jsonb) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.task_noop(p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.task_noop(p_payload jsonb) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.task_ping(p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.task_ping(p_payload jsonb) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.task_prune(p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.task_prune(p_payload jsonb) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.task_reclaim_leases(p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.task_reclaim_leases(p_payload jsonb) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.task_recompute_window(p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.task_recompute_window(p_payload jsonb) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.task_train_model(p_payload jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.task_train_model(p_payload jsonb) TO apportion_worker;

REVOKE ALL ON FUNCTION apportion.train_model(p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.train_model(p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.train_model(p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.train_model_for(p_tenant uuid, p_model_version text) FROM PUBLIC;
GRANT ALL ON FUNCTION apportion.train_model_for(p_tenant uuid, p_model_version text) TO apportion_worker;
GRANT ALL ON FUNCTION apportion.train_model_for(p_tenant uuid, p_model_version text) TO apportion_allocator;

REVOKE ALL ON FUNCTION apportion.unbind_login(p_login regrole, p_tenant_id uuid) FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.check_and_split_refunds() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.check_tenant_write() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.default_channels() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.define_tenant_policies(p_table regclass) FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.enforce_queued_job_caps() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.enqueue_new_events() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.ensure_half_life_factors(p_half_life_us bigint) FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.forbid_model_change() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.forbid_trained_change() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.generate_task_dispatcher() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.model_registered() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.notify_new_jobs() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.prepare_job() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.queue_tasks_changed() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.record_allocation_history() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.record_failure() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.record_refund_allocation_history() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.reschedule_job() FROM PUBLIC;

REVOKE ALL ON FUNCTION apportion_internal.restate_for_late_touches() FROM PUBLIC;

GRANT SELECT ON TABLE apportion.allocation_history TO apportion_ingest;
GRANT SELECT,INSERT ON TABLE apportion.allocation_history TO apportion_worker;
GRANT SELECT ON TABLE apportion.allocation_history TO apportion_reader;
GRANT SELECT,INSERT ON TABLE apportion.allocation_history TO apportion_allocator;

GRANT SELECT ON TABLE apportion.allocation_changes TO apportion_ingest;
GRANT SELECT ON TABLE apportion.allocation_changes TO apportion_worker;
GRANT SELECT ON TABLE apportion.allocation_changes TO apportion_reader;
GRANT SELECT ON TABLE apportion.allocation_changes TO apportion_allocator;

GRANT SELECT,INSERT ON TABLE apportion.attribution_events TO apportion_ingest;
GRANT SELECT ON TABLE apportion.attribution_events TO apportion_worker;
GRANT SELECT ON TABLE apportion.attribution_events TO apportion_allocator;

GRANT SELECT,INSERT ON TABLE apportion.channels TO apportion_ingest;
GRANT SELECT ON TABLE apportion.channels TO apportion_worker;
GRANT SELECT ON TABLE apportion.channels TO apportion_reader;
GRANT SELECT ON TABLE apportion.channels TO apportion_allocator;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE apportion.refund_allocations TO apportion_ingest;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE apportion.refund_allocations TO apportion_worker;
GRANT SELECT ON TABLE apportion.refund_allocations TO apportion_reader;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE apportion.refund_allocations TO apportion_allocator;

GRANT SELECT,INSERT ON TABLE apportion.refunds TO apportion_ingest;
GRANT SELECT ON TABLE apportion.refunds TO apportion_worker;
GRANT SELECT ON TABLE apportion.refunds TO apportion_allocator;
GRANT SELECT ON TABLE apportion.refunds TO apportion_reader;

GRANT SELECT ON TABLE apportion.daily_channel_net_revenue TO apportion_ingest;
GRANT SELECT ON TABLE apportion.daily_channel_net_revenue TO apportion_worker;
GRANT SELECT ON TABLE apportion.daily_channel_net_revenue TO apportion_reader;
GRANT SELECT ON TABLE apportion.daily_channel_net_revenue TO apportion_allocator;

GRANT SELECT ON TABLE apportion.half_life_factors TO apportion_worker;
GRANT SELECT ON TABLE apportion.half_life_factors TO apportion_allocator;

GRANT USAGE ON SEQUENCE apportion.jobs_id_seq TO apportion_ingest;
GRANT USAGE ON SEQUENCE apportion.jobs_id_seq TO apportion_worker;

GRANT SELECT ON TABLE apportion.jobs TO apportion_ingest;
GRANT SELECT ON TABLE apportion.jobs TO apportion_worker;

GRANT INSERT(tenant_id) ON TABLE apportion.jobs TO apportion_ingest;
GRANT INSERT(tenant_id) ON TABLE apportion.jobs TO apportion_worker;

GRANT INSERT(queue) ON TABLE apportion.jobs TO apportion_ingest;
GRANT INSERT(queue) ON TABLE apportion.jobs TO apportion_worker;

GRANT INSERT(task) ON TABLE apportion.jobs TO apportion_ingest;
GRANT INSERT(task) ON TABLE apportion.jobs TO apportion_worker;

GRANT INSERT(payload) ON TABLE apportion.jobs TO apportion_ingest;
GRANT INSERT(payload) ON TABLE apportion.jobs TO apportion_worker;

GRANT INSERT(correlation_id) ON TABLE apportion.jobs TO apportion_ingest;
GRANT INSERT(correlation_id) ON TABLE apportion.jobs TO apportion_worker;

GRANT INSERT(job_key) ON TABLE apportion.jobs TO apportion_ingest;
GRANT INSERT(job_key) ON TABLE apportion.jobs TO apportion_worker;

GRANT INSERT(priority) ON TABLE apportion.jobs TO apportion_ingest;
GRANT INSERT(priority) ON TABLE apportion.jobs TO apportion_worker;

GRANT INSERT(run_at) ON TABLE apportion.jobs TO apportion_ingest;
GRANT INSERT(run_at),UPDATE(run_at) ON TABLE apportion.jobs TO apportion_worker;

GRANT UPDATE(state) ON TABLE apportion.jobs TO apportion_worker;

GRANT UPDATE(attempts) ON TABLE apportion.jobs TO apportion_worker;

GRANT UPDATE(locked_by) ON TABLE apportion.jobs TO apportion_worker;

GRANT UPDATE(locked_until) ON TABLE apportion.jobs TO apportion_worker;

GRANT UPDATE(result) ON TABLE apportion.jobs TO apportion_worker;

GRANT UPDATE(error_code) ON TABLE apportion.jobs TO apportion_worker;

GRANT UPDATE(error_message) ON TABLE apportion.jobs TO apportion_worker;

GRANT UPDATE(attempt_log) ON TABLE apportion.jobs TO apportion_worker;

GRANT UPDATE(started_at) ON TABLE apportion.jobs TO apportion_worker;

GRANT UPDATE(finished_at) ON TABLE apportion.jobs TO apportion_worker;

GRANT SELECT ON TABLE apportion.markov_removal_effects TO apportion_ingest;
GRANT SELECT,INSERT ON TABLE apportion.markov_removal_effects TO apportion_worker;
GRANT SELECT ON TABLE apportion.markov_removal_effects TO apportion_reader;
GRANT SELECT,INSERT ON TABLE apportion.markov_removal_effects TO apportion_allocator;

GRANT SELECT ON TABLE apportion.markov_transitions TO apportion_ingest;
GRANT SELECT,INSERT ON TABLE apportion.markov_transitions TO apportion_worker;
GRANT SELECT ON TABLE apportion.markov_transitions TO apportion_reader;
GRANT SELECT,INSERT ON TABLE apportion.markov_transitions TO apportion_allocator;

GRANT SELECT,INSERT ON TABLE apportion.pending_allocations TO apportion_ingest;
GRANT SELECT,DELETE,UPDATE ON TABLE apportion.pending_allocations TO apportion_worker;

GRANT UPDATE(enqueued_at) ON TABLE apportion.pending_allocations TO apportion_ingest;

GRANT SELECT ON TABLE apportion.queue_tasks TO apportion_ingest;
GRANT SELECT ON TABLE apportion.queue_tasks TO apportion_worker;
GRANT SELECT ON TABLE apportion.queue_tasks TO apportion_reader;

GRANT SELECT,INSERT ON TABLE apportion.refund_allocation_history TO apportion_ingest;
GRANT SELECT,INSERT ON TABLE apportion.refund_allocation_history TO apportion_worker;
GRANT SELECT ON TABLE apportion.refund_allocation_history TO apportion_reader;
GRANT SELECT,INSERT ON TABLE apportion.refund_allocation_history TO apportion_allocator;

GRANT SELECT,INSERT ON TABLE apportion.restatement_skips TO apportion_ingest;
GRANT SELECT ON TABLE apportion.restatement_skips TO apportion_worker;
GRANT SELECT ON TABLE apportion.restatement_skips TO apportion_reader;
GRANT SELECT ON TABLE apportion.restatement_skips TO apportion_allocator;

GRANT SELECT ON TABLE apportion.restatements_skipped TO apportion_ingest;
GRANT SELECT ON TABLE apportion.restatements_skipped TO apportion_worker;
GRANT SELECT ON TABLE apportion.restatements_skipped TO apportion_reader;
GRANT SELECT ON TABLE apportion.restatements_skipped TO apportion_allocator;

GRANT SELECT,INSERT,DELETE ON TABLE apportion.tenant_models TO apportion_ingest;
GRANT SELECT ON TABLE apportion.tenant_models TO apportion_worker;
GRANT SELECT ON TABLE apportion.tenant_models TO apportion_reader;
GRANT SELECT ON TABLE apportion.tenant_models TO apportion_allocator;

GRANT SELECT ON TABLE apportion.tenants TO apportion_ingest;
GRANT SELECT ON TABLE apportion.tenants TO apportion_worker;
GRANT SELECT ON TABLE apportion.tenants TO apportion_reader;
GRANT SELECT ON TABLE apportion.tenants TO apportion_allocator;

GRANT SELECT,INSERT ON TABLE apportion.touchpoints TO apportion_ingest;
GRANT SELECT ON TABLE apportion.touchpoints TO apportion_worker;
GRANT SELECT ON TABLE apportion.touchpoints TO apportion_allocator;

GRANT SELECT ON TABLE apportion.worker_failed_jobs TO apportion_ingest;
GRANT SELECT,INSERT ON TABLE apportion.worker_failed_jobs TO apportion_worker;

GRANT UPDATE(status) ON TABLE apportion.worker_failed_jobs TO apportion_worker;

GRANT UPDATE(replayed_job_id) ON TABLE apportion.worker_failed_jobs TO apportion_worker;

GRANT UPDATE(settled_at) ON TABLE apportion.worker_failed_jobs TO apportion_worker;
