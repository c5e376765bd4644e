-- Refunds: full, partial, chargebacks (docs/attribution.md, "Refunds").
--
-- apportion.refunds is ingest: apportion_ingest inserts a tenant's refunds
-- of its events, idempotent on external_refund_id like events. An event's
-- refunds never total more than its revenue: a statement that would make
-- them is refused whole (23514).
-- Each refund is split over what is left of each channel's part of the
-- event's allocation, under every model version that allocated the event,
-- into apportion.refund_allocations: refunds of an event in order
-- (occurred_at, id); a refund of x cents gives channel c the floor of
-- x * left_c / sum(left), then the cents left over go to the largest
-- remainders, ties by md5(refund_id || ':' || channel). So each refund's
-- parts sum to x, no channel is refunded more than it was credited, and a
-- whole refund nets every channel to 0. The splits are recomputed whenever
-- the event's allocation changes (store_allocations) or a refund of it is
-- added.

-- Recompute the refund splits of these events of the current tenant, under
-- p_model_version or (null) every model version with allocations of them,
-- writing only what changes: a split whose amount is unchanged keeps its
-- row (and its computed_at); changed and vanished ones go to
-- refund_allocation_history, ended for p_reason (refund, or the reason of
-- the reallocation). Returns the number of split rows written or deleted.
drop function if exists apportion.store_refund_allocations(uuid[], text);
create or replace function apportion.store_refund_allocations(
  p_event_ids uuid[],
  p_model_version text default null,
  p_reason text default 'refund'
)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
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
$$;
grant execute on function apportion.store_refund_allocations(uuid[], text, text) to apportion_ingest, apportion_worker, apportion_allocator;
comment on function apportion.store_refund_allocations(uuid[], text, text) is
  'Recomputes the refund splits of these events of the current tenant, under one model version or (null) every version that allocated them, writing only those that change; replaced ones go to refund_allocation_history, ended for p_reason. Returns the split rows written or deleted. Refund ingest and every reallocation call it. Errors: 42501 when no tenant is set; 22023 for a p_reason that is not a lower-case word; 23514 when a refund finds nothing left to refund.';

-- Replaced or deleted refund splits go to the history, ended at the run's
-- time for its reason (else the clock, 'update' or 'delete').
create or replace function apportion_internal.record_refund_allocation_history()
returns trigger
language plpgsql
as $$
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

create or replace trigger refund_allocations_history_update
  after update on apportion.refund_allocations
  referencing old table as old_rows
  for each statement execute function apportion_internal.record_refund_allocation_history();
create or replace trigger refund_allocations_history_delete
  after delete on apportion.refund_allocations
  referencing old table as old_rows
  for each statement execute function apportion_internal.record_refund_allocation_history();

-- A refund statement: its events' refunds must not total more than their
-- revenue (each event locked for the check, so concurrent refunds of one
-- event cannot both pass; under READ COMMITTED, whose next statement sees
-- what the lock holder committed), then their splits are computed.
create or replace function apportion_internal.check_and_split_refunds()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
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

create or replace trigger refunds_check_and_split
  after insert on apportion.refunds
  referencing new table as new_refunds
  for each statement execute function apportion_internal.check_and_split_refunds();

create or replace trigger refunds_check_tenant
  before insert on apportion.refunds
  for each row execute function apportion_internal.check_tenant_write();

-- Refunds are ingest: never changed at runtime.

-- Gross, refunded and net revenue per day, model version, currency and
-- channel, by the event's day (basis accrual) and by the refund's day
-- (basis cash: a day's gross is its events', its refunds those made that
-- day, whatever day their event was). Never sums across currencies.
create or replace view apportion.daily_channel_net_revenue
with (security_invoker = true)
as
with gross as (
  select a.tenant_id, (a.event_occurred_at at time zone 'UTC')::date as day, a.model_version, a.currency, a.channel,
         sum(a.allocated_revenue_cents) as cents
    from apportion.attribution_allocations a
   group by 1, 2, 3, 4, 5
),
refunded as (
  -- Each split with its allocation row (same event, model and channel:
  -- splits follow the current allocation), for the event's day and currency.
  select ra.tenant_id, ra.model_version, ra.channel, a.currency, a.event_occurred_at, f.occurred_at as refunded_at,
         ra.refunded_cents
    from apportion.refund_allocations ra
    join apportion.attribution_allocations a
      on a.tenant_id = ra.tenant_id and a.event_id = ra.event_id and a.model_version = ra.model_version and a.channel = ra.channel
    join apportion.refunds f on f.tenant_id = ra.tenant_id and f.id = ra.refund_id
),
refunded_by_event_day as (
  select r.tenant_id, (r.event_occurred_at at time zone 'UTC')::date as day, r.model_version, r.currency, r.channel,
         sum(r.refunded_cents) as cents
    from refunded r
   group by 1, 2, 3, 4, 5
),
refunded_by_refund_day as (
  select r.tenant_id, (r.refunded_at at time zone 'UTC')::date as day, r.model_version, r.currency, r.channel,
         sum(r.refunded_cents) as cents
    from refunded r
   group by 1, 2, 3, 4, 5
)
select 'accrual'::text as basis, tenant_id, day, model_version, currency, channel,
       coalesce(g.cents, 0) as gross_cents, coalesce(r.cents, 0) as refunded_cents, coalesce(g.cents, 0) - coalesce(r.cents, 0) as net_cents
  from gross g
  full join refunded_by_event_day r using (tenant_id, day, model_version, currency, channel)
union all
select 'cash', tenant_id, day, model_version, currency, channel,
       coalesce(g.cents, 0), coalesce(r.cents, 0), coalesce(g.cents, 0) - coalesce(r.cents, 0)
  from gross g
  full join refunded_by_refund_day r using (tenant_id, day, model_version, currency, channel);

-- Tables -----------------------------------------------------------------------

alter table apportion.refunds alter column tenant_id set default apportion.current_tenant_id();
alter table apportion.refund_allocations alter column tenant_id set default apportion.current_tenant_id();
alter table apportion.refund_allocation_history alter column tenant_id set default apportion.current_tenant_id();
select apportion_internal.define_tenant_policies('apportion.refund_allocation_history');
grant select on apportion.refund_allocation_history to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
grant insert on apportion.refund_allocation_history to apportion_ingest, apportion_worker, apportion_allocator;
select apportion_internal.define_tenant_policies('apportion.refunds');
select apportion_internal.define_tenant_policies('apportion.refund_allocations');

grant select, insert on apportion.refunds to apportion_ingest;
grant select on apportion.refunds to apportion_worker, apportion_allocator, apportion_reader;
grant select on apportion.refund_allocations, apportion.daily_channel_net_revenue
  to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
-- Derived rows, rewritten by whoever refunds or reallocates.
grant insert, update, delete on apportion.refund_allocations to apportion_ingest, apportion_worker, apportion_allocator;

comment on table apportion.refunds is
  'Refunds and chargebacks of events, ingest: inserted under the current tenant, never changed at runtime. The inserting statement splits each refund over the event''s allocation under every model version that allocated it (refund_allocations). Errors: 23503 for an event the tenant does not have; 23505 for a repeated external_refund_id; 23514 for an amount that is not positive, a time outside years 1 to 9999, or refunds that would total more than the event''s revenue (the whole statement is refused); 42501 for another tenant''s row or no tenant set.';
comment on column apportion.refunds.tenant_id is 'The tenant (defaults to the current one).';
comment on column apportion.refunds.id is 'The refund''s id (generated when not given).';
comment on column apportion.refunds.event_id is 'The event refunded, an event of the tenant.';
comment on column apportion.refunds.amount_cents is 'The amount in minor units of the event''s currency, > 0.';
comment on column apportion.refunds.occurred_at is 'When the refund happened, in years 1 to 9999: its day in the cash basis of daily_channel_net_revenue.';
comment on column apportion.refunds.external_refund_id is
  'Your id for the refund, unique per tenant when present: insert ... on conflict (tenant_id, external_refund_id) do nothing skips re-sends.';
comment on column apportion.refunds.reason is 'Why, free text of at most 1024 characters.';

comment on table apportion.refund_allocations is
  'Each refund split over what is left of each channel''s part of its event, under every model version that allocated the event: recomputed when the event is reallocated or refunded again; unchanged splits are not rewritten.';
comment on column apportion.refund_allocations.tenant_id is 'The tenant (defaults to the current one).';
comment on column apportion.refund_allocations.refund_id is 'The refund split.';
comment on column apportion.refund_allocations.event_id is 'Its event.';
comment on column apportion.refund_allocations.model_version is 'The model version whose allocation it is split over.';
comment on column apportion.refund_allocations.channel is 'The channel refunded.';
comment on column apportion.refund_allocations.refunded_cents is 'The channel''s part of the refund in minor units, > 0: a refund''s parts sum to its amount.';
comment on column apportion.refund_allocations.computed_at is 'Since when the split holds this amount.';
comment on column apportion.refund_allocations.correlation_id is 'The correlation id of the transaction that wrote it.';
comment on column apportion.refund_allocations.change_reason is 'Why it was written: refund, or the reason of the reallocation.';

comment on table apportion.refund_allocation_history is
  'Every replaced or deleted refund split: its columns, valid_from, valid_to, ended_reason and ended_correlation_id. Written by triggers.';

comment on view apportion.daily_channel_net_revenue is
  'The current tenant''s gross, refunded and net revenue per day (UTC), model version, currency and channel, on two bases: accrual (refunds on their event''s day) and cash (refunds on the refund''s day). Models side by side, never summed across currencies.';
comment on column apportion.daily_channel_net_revenue.basis is 'accrual: by the event''s day; cash: refunds by the refund''s day.';
comment on column apportion.daily_channel_net_revenue.day is 'The day, UTC.';
comment on column apportion.daily_channel_net_revenue.gross_cents is 'The allocated revenue of the day''s events, in minor units.';
comment on column apportion.daily_channel_net_revenue.refunded_cents is 'The refunds counted on the day, in minor units.';
comment on column apportion.daily_channel_net_revenue.net_cents is 'gross_cents - refunded_cents.';
