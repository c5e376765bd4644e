-- Up Migration
-- Model versions (global), the models each tenant has switched on, and the
-- allocations the engine writes.
set local role apportion_owner;

-- A model version is an immutable (kind, params); register_model validates it.
create table apportion.attribution_models (
  model_version text primary key
    constraint attribution_models_version_format check (model_version ~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$'),
  kind text not null constraint attribution_models_kind_known check (kind in (
    'last_touch', 'last_non_direct', 'first_touch', 'linear', 'time_decay', 'position_based', 'fixed_split')),
  params jsonb not null default '{}' constraint attribution_models_params_is_object check (jsonb_typeof(params) = 'object'),
  registered_at timestamptz not null default now()
);

-- Per tenant: which model versions are computed automatically on ingest.
create table apportion.tenant_models (
  tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid
    references apportion.tenants (id) on delete cascade,
  model_version text not null references apportion.attribution_models (model_version),
  activated_at timestamptz not null default now(),
  primary key (tenant_id, model_version)
);

-- One row per (event, model version, channel): the idempotency key.
-- currency and event_occurred_at are copied from the event so that reports
-- read allocations alone (readers get no access to raw ingest rows).
create table apportion.attribution_allocations (
  tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid,
  event_id uuid not null,
  model_version text not null references apportion.attribution_models (model_version),
  channel text not null,
  allocated_revenue_cents bigint not null constraint attribution_allocations_cents_non_negative check (allocated_revenue_cents >= 0),
  allocation_ratio numeric(7, 6) not null constraint attribution_allocations_ratio_range check (allocation_ratio between 0 and 1),
  touchpoint_count integer not null constraint attribution_allocations_touchpoint_count_non_negative check (touchpoint_count >= 0),
  currency char(3) not null,
  event_occurred_at timestamptz not null,
  correlation_id uuid,
  computed_at timestamptz not null default now(),
  constraint attribution_allocations_key primary key (tenant_id, event_id, model_version, channel),
  constraint attribution_allocations_event_fk foreign key (tenant_id, event_id)
    references apportion.attribution_events (tenant_id, id) on delete cascade,
  constraint attribution_allocations_channel_fk foreign key (tenant_id, channel)
    references apportion.channels (tenant_id, code)
);
create index attribution_allocations_report_idx
  on apportion.attribution_allocations (tenant_id, model_version, event_occurred_at);

-- Constants for time_decay (db/20_allocation.sql): 2^-x for x = X / 10^12
-- (X an integer below 61 * 10^12) is the product of four rows,
--   2^-k * 2^-(c1 / 10^4) * 2^-(c2 / 10^8) * 2^-(c3 / 10^12),
-- k = X's whole part, c1, c2, c3 = the 4-digit groups of its fraction
-- (part 0, 1, 2, 3). Part 0 is exact (0.5^k = 5^k / 10^k); parts 1..3 keep
-- 50 decimals of a 60-decimal power(), so the product is good to ~1e-49:
-- far more than the 18 decimals a weight keeps, and four lookups instead of
-- one numeric power() per touch.
-- Global constants, not tenant data: no tenant_id, no RLS.
create table apportion.decay_factors (
  part smallint not null constraint decay_factors_part_range check (part between 0 and 3),
  digits integer not null constraint decay_factors_digits_range check (digits between 0 and 9999),
  factor numeric not null,
  primary key (part, digits)
);
insert into apportion.decay_factors (part, digits, factor)
select 0, k, (5::numeric ^ k) * ('1e-' || k)::numeric from generate_series(0, 60) k
union all
select p, d, round(power(2::numeric, -round(d * ('1e-' || 4 * p)::numeric, 60)), 50)
  from generate_series(1, 3) p, generate_series(0, 9999) d;

do $$
declare
  t text;
begin
  foreach t in array array['tenant_models', 'attribution_allocations'] loop
    execute format('alter table apportion.%I enable row level security', t);
    execute format('alter table apportion.%I force row level security', t);
    execute format($p$create policy tenant_isolation on apportion.%I
      to apportion_ingest, apportion_worker, apportion_reader
      using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
      with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
    execute format('create policy owner_admin on apportion.%I to apportion_owner using (true) with check (true)', t);
  end loop;
end
$$;

revoke all on apportion.attribution_models, apportion.tenant_models, apportion.attribution_allocations, apportion.decay_factors from public;
grant select on apportion.decay_factors to apportion_worker;
grant select on apportion.attribution_models, apportion.tenant_models to apportion_ingest, apportion_worker, apportion_reader;
grant insert, delete on apportion.tenant_models to apportion_ingest;
grant select on apportion.attribution_allocations to apportion_ingest, apportion_worker, apportion_reader;
grant insert, update, delete on apportion.attribution_allocations to apportion_worker;

reset role;
