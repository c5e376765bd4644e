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
comment on view apportion.daily_channel_revenue is
  'The current tenant''s allocated revenue per day (UTC, by the event''s time), model version, currency and channel: models side by side for the same revenue, never summed across currencies. As it stood at a time: daily_channel_revenue_as_of.';
comment on column apportion.daily_channel_revenue.day is 'The event''s day, UTC.';
comment on column apportion.daily_channel_revenue.revenue_cents is 'The sum in minor units, exact (a day''s sum can pass the bigint range).';
comment on column apportion.daily_channel_revenue.event_count is 'The allocation rows summed: events credited to the channel that day.';
comment on column apportion.daily_channel_revenue.revenue_major is 'The sum in major units of its currency (USD cents / 100, JPY as is, KWD fils / 1000).';

-- The daily report as it stood at p_at: allocations_as_of for every model
-- version, grouped as daily_channel_revenue groups: what was reported then,
-- reproduced. (Plain SQL, inlined like allocations_as_of; its checks run
-- once per model version.)
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
language sql stable
as $$
  select apportion.current_tenant_id(), (a.event_occurred_at at time zone 'UTC')::date, m.model_version, a.currency, a.channel,
         sum(a.allocated_revenue_cents)::numeric, count(*)::bigint
    from apportion.attribution_models m
   cross join lateral apportion.allocations_as_of(m.model_version, p_at) a
   group by (a.event_occurred_at at time zone 'UTC')::date, m.model_version, a.currency, a.channel
   order by 2, 3, 4, 5
$$;
grant execute on function apportion.daily_channel_revenue_as_of(timestamptz) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
comment on function apportion.daily_channel_revenue_as_of(timestamptz) is
  'The current tenant''s daily report as it stood at p_at, every model version: allocations_as_of grouped as daily_channel_revenue groups (without revenue_major). Errors: 42501 when no tenant is set; 22023 when p_at is not a finite time.';
