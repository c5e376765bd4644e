-- Reports an analyst reads as apportion_reader, under the caller's RLS.

-- Revenue per day (UTC, by the event's time), channel and model version, so
-- models compare side by side for the same revenue.
create or replace view apportion.daily_channel_revenue
with (security_invoker = true)
as
select a.tenant_id,
       (a.event_occurred_at at time zone 'UTC')::date as day,
       a.model_version,
       a.currency,
       a.channel,
       sum(a.allocated_revenue_cents) as revenue_cents,
       count(*)::bigint as event_count,
       -- The same sum in major units of its currency (USD cents / 100, JPY as is, KWD fils / 1000).
       apportion.major_units(sum(a.allocated_revenue_cents), a.currency) as revenue_major
  from apportion.attribution_allocations a
 group by a.tenant_id, (a.event_occurred_at at time zone 'UTC')::date, a.model_version, a.currency, a.channel;

grant select on apportion.daily_channel_revenue to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;

-- The daily report as it stood at p_at (allocations_as_of for every model
-- version of the current tenant): what was reported then, reproduced.
create or replace function apportion.daily_channel_revenue_as_of(p_at timestamptz)
returns table (
  tenant_id uuid,
  day date,
  model_version text,
  currency char(3),
  channel text,
  revenue_cents numeric,
  event_count bigint
)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_tenant uuid := apportion.require_tenant();
begin
  if p_at is null or not isfinite(p_at) then
    raise exception 'daily_channel_revenue_as_of: p_at must be a finite timestamp (got %)', coalesce(p_at::text, 'null') using errcode = '22023';
  end if;
  return query
  select v_tenant, (v.event_occurred_at at time zone 'UTC')::date, v.model_version, v.currency, v.channel,
         sum(v.allocated_revenue_cents)::numeric, count(*)::bigint
    from (select a.model_version, a.currency, a.channel, a.event_occurred_at, a.allocated_revenue_cents
            from apportion.attribution_allocations a
           where a.tenant_id = v_tenant and a.computed_at <= p_at
          union all
          select h.model_version, h.currency, h.channel, h.event_occurred_at, h.allocated_revenue_cents
            from apportion.allocation_history h
           where h.tenant_id = v_tenant and h.valid_to > p_at and h.valid_from <= p_at) v
   group by (v.event_occurred_at at time zone 'UTC')::date, v.model_version, v.currency, v.channel
   order by 2, 3, 4, 5;
end
$$;
grant execute on function apportion.daily_channel_revenue_as_of(timestamptz) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
