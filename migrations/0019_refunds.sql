-- Up Migration
-- Refunds (full, partial, chargebacks): an ingest table, and each refund's
-- split over the event's allocation under every model version that
-- allocated it (db/35_refunds.sql).
set local role apportion_owner;

create table apportion.refunds (
  tenant_id uuid not null references apportion.tenants (id),
  id uuid not null default gen_random_uuid(),
  event_id uuid not null,
  amount_cents bigint not null constraint refunds_amount_cents_positive check (amount_cents > 0),
  occurred_at timestamptz not null
    constraint refunds_occurred_at_in_years_1_to_9999
      check (occurred_at >= timestamptz '0001-01-01 00:00:00+00' and occurred_at < timestamptz '10000-01-01 00:00:00+00'),
  external_refund_id text constraint refunds_external_refund_id_length check (length(external_refund_id) between 1 and 256),
  reason text constraint refunds_reason_length check (length(reason) <= 1024),
  ingested_at timestamptz not null default now(),
  primary key (tenant_id, id),
  constraint refunds_external_refund_id_unique unique (tenant_id, external_refund_id),
  constraint refunds_event_fk foreign key (tenant_id, event_id) references apportion.attribution_events (tenant_id, id)
);
create index refunds_event_idx on apportion.refunds (tenant_id, event_id, occurred_at, id);
create index refunds_occurred_at_idx on apportion.refunds (tenant_id, occurred_at);
alter table apportion.refunds enable row level security;
alter table apportion.refunds force row level security;

create table apportion.refund_allocations (
  tenant_id uuid not null,
  refund_id uuid not null,
  event_id uuid not null,
  model_version text not null references apportion.attribution_models (model_version),
  channel text not null,
  refunded_cents bigint not null constraint refund_allocations_refunded_cents_positive check (refunded_cents > 0),
  primary key (tenant_id, refund_id, model_version, channel),
  foreign key (tenant_id, refund_id) references apportion.refunds (tenant_id, id)
);
create index refund_allocations_event_idx on apportion.refund_allocations (tenant_id, event_id, model_version);
alter table apportion.refund_allocations enable row level security;
alter table apportion.refund_allocations force row level security;

reset role;
