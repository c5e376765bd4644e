-- Up Migration
-- Services that call the allocation functions get a role of their own,
-- apportion_allocator: allocation for its tenant under RLS, and nothing of
-- the queue (apportion_worker, which claims every tenant's jobs and sees the
-- operators' cross-tenant views, is the orchestrator's). And logins can be
-- bound to the tenants they may act for (apportion.tenant_bindings): a bound
-- login that sets another tenant is refused (42501) by every tenant policy.
do $$
begin
  if not exists (select from pg_roles where rolname = 'apportion_allocator') then
    create role apportion_allocator nologin nosuperuser nocreatedb nocreaterole nobypassrls;
  end if;
  -- As for the other runtime roles (0001): never rely on one that could
  -- bypass row level security or act as the owner.
  if exists (select from pg_roles where rolname = 'apportion_allocator' and (rolsuper or rolbypassrls or rolcreaterole))
     or pg_has_role('apportion_allocator', 'apportion_owner', 'member') then
    raise exception 'role apportion_allocator already exists with SUPERUSER, BYPASSRLS, CREATEROLE or membership in apportion_owner; a runtime role must have none of these'
      using errcode = '42501',
            hint = 'alter role apportion_allocator nosuperuser nobypassrls nocreaterole; revoke apportion_owner from apportion_allocator';
  end if;
end
$$;

set local role apportion_owner;

-- Which tenants a login may act for. A login with no row here is not bound
-- (every tenant it sets, as before); one with rows may set only those.
-- Only the owner reads or writes it (bind_login, unbind_login).
create table apportion.tenant_bindings (
  login regrole not null,
  tenant_id uuid not null references apportion.tenants (id) on delete cascade,
  bound_at timestamptz not null default now(),
  primary key (login, tenant_id)
);
-- Like every table with a tenant_id (its only policy, in db/, is the owner's).
alter table apportion.tenant_bindings enable row level security;
alter table apportion.tenant_bindings force row level security;

reset role;
