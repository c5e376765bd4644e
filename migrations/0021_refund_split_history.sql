-- Up Migration
-- Refund splits are derived rows like allocations: each says since when and
-- why it holds its amount, and every version a recompute replaces or
-- deletes is kept (db/35_refunds.sql).
set local role apportion_owner;

alter table apportion.refund_allocations
  add column computed_at timestamptz not null default now(),
  add column correlation_id uuid,
  add column change_reason text not null default 'refund'
    constraint refund_allocations_change_reason_format check (change_reason ~ '^[a-z][a-z_]{0,62}$');

create table apportion.refund_allocation_history (
  tenant_id uuid not null,
  refund_id uuid not null,
  event_id uuid not null,
  model_version text not null,
  channel text not null,
  refunded_cents bigint not null,
  correlation_id uuid,
  change_reason text not null,
  valid_from timestamptz not null,
  valid_to timestamptz not null,
  ended_reason text not null,
  ended_correlation_id uuid
);
create index refund_allocation_history_key_idx
  on apportion.refund_allocation_history (tenant_id, refund_id, model_version, channel, valid_from);
alter table apportion.refund_allocation_history enable row level security;
alter table apportion.refund_allocation_history force row level security;

reset role;
