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
       count(*)::bigint as event_count
  from apportion.attribution_allocations a
 group by a.tenant_id, (a.event_occurred_at at time zone 'UTC')::date, a.model_version, a.currency, a.channel;

grant select on apportion.daily_channel_revenue to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
