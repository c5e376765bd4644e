-- Tenant context and tenants.
--
-- app.tenant_id is set transaction-locally by callers:
--   select set_config('app.tenant_id', '<tenant uuid>', true);
-- Reads are fail-closed: unset or '' means no tenant, and policies then match
-- no row.

-- The current tenant, or null when none is set.
create or replace function apportion.current_tenant_id()
returns uuid
language sql stable parallel safe
as $$
  select nullif(current_setting('app.tenant_id', true), '')::uuid
$$;

-- The current tenant; raises 42501 when none is set (for writes).
create or replace function apportion.require_tenant()
returns uuid
language plpgsql stable
as $$
declare
  v_tenant uuid := apportion.current_tenant_id();
begin
  if v_tenant is null then
    raise exception 'no tenant set: run select set_config(''app.tenant_id'', ''<tenant uuid>'', true) in this transaction first'
      using errcode = '42501';
  end if;
  return v_tenant;
end
$$;

-- Ingest rows may only be written for the current tenant. Row level security
-- would refuse them too; this trigger says why in words.
create or replace function apportion.check_tenant_write()
returns trigger
language plpgsql
as $$
declare
  v_tenant uuid := apportion.current_tenant_id();
begin
  -- Administrators (the owner role, superusers) write any tenant's rows,
  -- e.g. create_tenant's default channels; their RLS policy allows it.
  if v_tenant is null and pg_has_role(current_user, 'apportion_owner', 'member') then
    return new;
  end if;
  if v_tenant is null then
    raise exception 'no tenant set: writes to apportion.% need app.tenant_id (select set_config(''app.tenant_id'', ''<tenant uuid>'', true))', tg_table_name
      using errcode = '42501';
  end if;
  if new.tenant_id is distinct from v_tenant then
    raise exception 'tenant_id % is not the current tenant (app.tenant_id = %): rows may only be written for the current tenant', new.tenant_id, v_tenant
      using errcode = '42501';
  end if;
  return new;
end
$$;

create or replace trigger touchpoints_check_tenant
  before insert or update on apportion.touchpoints
  for each row execute function apportion.check_tenant_write();
create or replace trigger attribution_events_check_tenant
  before insert or update on apportion.attribution_events
  for each row execute function apportion.check_tenant_write();
create or replace trigger channels_check_tenant
  before insert or update on apportion.channels
  for each row execute function apportion.check_tenant_write();

-- The channel taxonomy every new tenant starts with.
create or replace function apportion.default_channels()
returns table (code text, name text, is_direct boolean)
language sql immutable parallel safe
as $$
  values
    ('direct',         'Direct',         true),
    ('email',          'Email',          false),
    ('google_search',  'Google Search',  false),
    ('organic_search', 'Organic Search', false),
    ('paid_social',    'Paid Social',    false),
    ('referral',       'Referral',       false),
    ('display',        'Display',        false),
    ('unattributed',   'Unattributed',   false)
$$;

-- Admin: create a tenant with the default channel taxonomy.
create or replace function apportion.create_tenant(p_name text, p_id uuid default gen_random_uuid())
returns uuid
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_name is null or btrim(p_name) = '' then
    raise exception 'create_tenant: p_name must be a non-empty name' using errcode = '22023';
  end if;
  if p_id is null then
    raise exception 'create_tenant: p_id must not be null' using errcode = '22023';
  end if;
  insert into apportion.tenants (id, name) values (p_id, p_name);
  insert into apportion.channels (tenant_id, code, name, is_direct)
  select p_id, d.code, d.name, d.is_direct from apportion.default_channels() d;
  return p_id;
end
$$;

revoke all on function apportion.current_tenant_id(), apportion.require_tenant(),
  apportion.check_tenant_write(), apportion.default_channels(), apportion.create_tenant(text, uuid) from public;
grant execute on function apportion.current_tenant_id(), apportion.require_tenant(), apportion.default_channels()
  to apportion_ingest, apportion_worker, apportion_reader;
grant execute on function apportion.check_tenant_write() to apportion_ingest, apportion_worker;
