-- Up Migration
-- The reporting index on allocations keys by day, the grouping of
-- apportion.daily_channel_revenue, instead of by timestamp: the engine writes
-- rows in event id order, which took timestamp keys to random places in the
-- index, while a tenant's rows of one model share a handful of day keys
-- (stored as posting lists).
set local role apportion_owner;

drop index apportion.attribution_allocations_report_idx;
create index attribution_allocations_daily_idx
  on apportion.attribution_allocations (tenant_id, model_version, ((event_occurred_at at time zone 'UTC')::date));

reset role;
