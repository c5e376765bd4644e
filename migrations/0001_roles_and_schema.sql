-- Up Migration
-- Roles are cluster-wide: create them only when missing, so installing into a
-- second database of the same cluster reuses them.
do $$
declare
  r text;
begin
  foreach r in array array['apportion_owner', 'apportion_ingest', 'apportion_worker', 'apportion_reader'] loop
    if not exists (select from pg_roles where rolname = r) then
      execute format('create role %I nologin nosuperuser nocreatedb nocreaterole nobypassrls', r);
    end if;
  end loop;
  -- The roles may predate this install (another database of the cluster, or
  -- someone else's roles of the same name). Refuse to rely on a runtime role
  -- that could bypass row level security or act as the owner: RLS would then
  -- silently stop isolating tenants.
  foreach r in array array['apportion_ingest', 'apportion_worker', 'apportion_reader'] loop
    if exists (select from pg_roles where rolname = r and (rolsuper or rolbypassrls or rolcreaterole))
       or pg_has_role(r, 'apportion_owner', 'member') then
      raise exception 'role % already exists with SUPERUSER, BYPASSRLS, CREATEROLE or membership in apportion_owner; a runtime role must have none of these', r
        using errcode = '42501',
              hint = format('alter role %I nosuperuser nobypassrls nocreaterole; revoke apportion_owner from %I', r, r);
    end if;
  end loop;
  -- A non-superuser migrator must be able to act as the owner.
  if not (select rolsuper from pg_roles where rolname = current_user)
     and not pg_has_role(current_user, 'apportion_owner', 'member') then
    execute format('grant apportion_owner to %I', current_user);
  end if;
end
$$;

-- node-pg-migrate created the schema (for its bookkeeping table); hand it to
-- the owner role and close it to everyone else.
alter schema apportion owner to apportion_owner;
revoke all on schema apportion from public;
grant usage on schema apportion to apportion_ingest, apportion_worker, apportion_reader;

-- Functions are created EXECUTE-able by PUBLIC unless the owner's default says
-- otherwise; every grant in apportion is explicit.
alter default privileges for role apportion_owner revoke execute on functions from public;

set local role apportion_owner;

-- Which db/ source files are applied, by checksum (see orchestrator/migrate.ts).
create table apportion.db_sources (
  name text primary key,
  sha256 text not null,
  applied_at timestamptz not null default now()
);

reset role;
