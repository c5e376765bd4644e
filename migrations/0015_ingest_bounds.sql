-- Up Migration
-- Ingest refuses what the engine cannot compute with, instead of failing
-- later for everyone who reads it:
-- - occurred_at must lie in years 1..9999 (UTC): 'infinity' and '-infinity'
--   are refused, and no event or touch is so far out that its lookback
--   window leaves the timestamp range (lookbacks are at most 10 years).
--   NOT VALID: rows already stored are not re-checked (a database holding
--   such rows could not be migrated); new and updated rows are.
-- - The daily report sums in numeric: two events of the largest bigint
--   revenue on one day and channel overflowed bigint. The view is dropped
--   here and recreated by db/30_reporting.sql with numeric sums (a view's
--   column types cannot change in place; on a new database it does not
--   exist yet: db/ is applied after every migration).
set local role apportion_owner;

alter table apportion.touchpoints
  add constraint touchpoints_occurred_at_in_years_1_to_9999
  check (occurred_at >= '0001-01-01 00:00:00+00' and occurred_at < '10000-01-01 00:00:00+00') not valid;

alter table apportion.attribution_events
  add constraint attribution_events_occurred_at_in_years_1_to_9999
  check (occurred_at >= '0001-01-01 00:00:00+00' and occurred_at < '10000-01-01 00:00:00+00') not valid;

drop view if exists apportion.daily_channel_revenue;

reset role;
