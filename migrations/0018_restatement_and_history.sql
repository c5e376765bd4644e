-- Up Migration
-- Data that changes after it was allocated:
-- - late touchpoints restate the events they count for (db/46_queue_ingest.sql)
--   within each tenant's restatement horizon; events older than it are
--   skipped, and every skip is counted in apportion.restatement_skips;
-- - every version of an allocation row is kept: the current one in
--   attribution_allocations (with why it was written), superseded and
--   deleted ones in allocation_history, so allocations can be read as of
--   any time (db/20_allocation.sql).
set local role apportion_owner;

-- Late touchpoints look up their customer's events.
create index attribution_events_customer_idx on apportion.attribution_events (tenant_id, customer_id, occurred_at);

alter table apportion.tenants
  add column restatement_horizon interval not null default interval '90 days'
    constraint tenants_restatement_horizon_range check (restatement_horizon >= interval '0' and restatement_horizon <= interval '100 years');

create table apportion.restatement_skips (
  tenant_id uuid not null,
  model_version text not null,
  event_count bigint not null constraint restatement_skips_event_count_positive check (event_count > 0),
  recorded_at timestamptz not null default now(),
  correlation_id uuid
);
create index restatement_skips_tenant_idx on apportion.restatement_skips (tenant_id, model_version);
alter table apportion.restatement_skips enable row level security;
alter table apportion.restatement_skips force row level security;

-- Why the current version of a row was written: allocated (its first
-- write), late_touchpoint, recompute.
alter table apportion.attribution_allocations
  add column change_reason text not null default 'allocated'
    constraint attribution_allocations_change_reason_format check (change_reason ~ '^[a-z][a-z_]{0,62}$');
-- As-of reads skip the current rows written after the time asked for.
create index attribution_allocations_as_of_idx
  on apportion.attribution_allocations (tenant_id, model_version, computed_at);

create table apportion.allocation_history (
  tenant_id uuid not null,
  event_id uuid not null,
  model_version text not null,
  channel text not null,
  allocated_revenue_cents bigint not null,
  allocation_ratio numeric(7, 6) not null,
  touchpoint_count integer not null,
  currency char(3) not null,
  event_occurred_at timestamptz not null,
  correlation_id uuid,
  change_reason text not null,
  -- The version was current in [valid_from, valid_to): valid_from is its
  -- computed_at, valid_to when it was replaced or deleted, and why, by
  -- which correlation id.
  valid_from timestamptz not null,
  valid_to timestamptz not null,
  ended_reason text not null,
  ended_correlation_id uuid
);
create index allocation_history_as_of_idx
  on apportion.allocation_history (tenant_id, model_version, valid_to, valid_from);
create index allocation_history_key_idx
  on apportion.allocation_history (tenant_id, event_id, model_version, channel, valid_from);
alter table apportion.allocation_history enable row level security;
alter table apportion.allocation_history force row level security;

reset role;
