-- Up Migration
-- Tenants, their channel taxonomy, and the two ingest tables.
--
-- Every tenant table: tenant_id leads every key and index, ENABLE + FORCE row
-- level security, and one policy that reads app.tenant_id fail-closed (unset
-- or '' -> null -> no row matches). The owner role gets an explicit admin
-- policy because FORCE applies RLS to the owner too; SECURITY DEFINER
-- functions (job claiming) run as the owner.
set local role apportion_owner;

create table apportion.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null constraint tenants_name_not_blank check (btrim(name) <> ''),
  created_at timestamptz not null default now()
);

create table apportion.channels (
  tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid
    references apportion.tenants (id) on delete cascade,
  code text not null constraint channels_code_format check (code ~ '^[a-z][a-z0-9_]{0,62}$'),
  name text not null,
  is_direct boolean not null default false,
  created_at timestamptz not null default now(),
  primary key (tenant_id, code)
);

create table apportion.touchpoints (
  tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid,
  id uuid not null default gen_random_uuid(),
  customer_id text not null constraint touchpoints_customer_id_length check (length(customer_id) between 1 and 256),
  channel text not null,
  occurred_at timestamptz not null,
  campaign text,
  external_id text constraint touchpoints_external_id_length check (length(external_id) between 1 and 256),
  properties jsonb not null default '{}' constraint touchpoints_properties_is_object check (jsonb_typeof(properties) = 'object'),
  ingested_at timestamptz not null default now(),
  primary key (tenant_id, id),
  constraint touchpoints_external_id_unique unique (tenant_id, external_id),
  constraint touchpoints_channel_in_taxonomy foreign key (tenant_id, channel) references apportion.channels (tenant_id, code)
);
-- The lookback scan: one customer's touches up to an event, in touch order.
create index touchpoints_lookback_idx on apportion.touchpoints (tenant_id, customer_id, occurred_at, id) include (channel);

create table apportion.attribution_events (
  tenant_id uuid not null default nullif(current_setting('app.tenant_id', true), '')::uuid
    references apportion.tenants (id),
  id uuid not null default gen_random_uuid(),
  customer_id text not null constraint attribution_events_customer_id_length check (length(customer_id) between 1 and 256),
  occurred_at timestamptz not null,
  revenue_cents bigint not null constraint attribution_events_revenue_cents_non_negative check (revenue_cents >= 0),
  currency char(3) not null constraint attribution_events_currency_iso_code check (currency ~ '^[A-Z]{3}$'),
  external_event_id text constraint attribution_events_external_event_id_length check (length(external_event_id) between 1 and 256),
  event_type text not null default 'purchase' constraint attribution_events_event_type_length check (length(event_type) between 1 and 64),
  raw_payload jsonb not null default '{}',
  ingested_at timestamptz not null default now(),
  primary key (tenant_id, id),
  constraint attribution_events_external_event_id_unique unique (tenant_id, external_event_id)
);
create index attribution_events_occurred_at_idx on apportion.attribution_events (tenant_id, occurred_at);

-- Row level security -------------------------------------------------------
alter table apportion.tenants enable row level security;
alter table apportion.tenants force row level security;
create policy tenant_isolation on apportion.tenants
  to apportion_ingest, apportion_worker, apportion_reader
  using (id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy owner_admin on apportion.tenants to apportion_owner using (true) with check (true);

do $$
declare
  t text;
begin
  foreach t in array array['channels', 'touchpoints', 'attribution_events'] loop
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

-- Privileges: nothing for PUBLIC, the least each role needs ----------------
revoke all on apportion.tenants, apportion.channels, apportion.touchpoints, apportion.attribution_events from public;
grant select on apportion.tenants, apportion.channels to apportion_ingest, apportion_worker, apportion_reader;
grant insert on apportion.channels to apportion_ingest;
-- Ingest is append-only: no UPDATE or DELETE for anyone at runtime.
grant select, insert on apportion.touchpoints, apportion.attribution_events to apportion_ingest;
-- The worker reads ingest data and can never change it.
grant select on apportion.touchpoints, apportion.attribution_events to apportion_worker;

reset role;
