-- The versioned contract: what the database reports about itself, and who
-- may see which schema.
--
-- apportion holds the public API: every function in it is listed in
-- README.md, and the grants under each function are the "who" column there.
-- Every table, view and function in it has a COMMENT ON in db/ (after the
-- function's grants, beside the table's): npm run sql-api renders them, with
-- the catalog, into docs/sql-api.md, and fails on an object without one.
-- apportion_internal holds helpers that only triggers, the owner and the
-- SECURITY DEFINER queue functions call; no runtime role may use it.
--
-- migrate resets every privilege of PUBLIC and the runtime roles on both
-- schemas before it applies db/, so the grants written here and under each
-- function are the whole story.

-- The version of the SQL contract (CHANGELOG.md, "Schema versions"). The
-- orchestrator refuses to start against a version it does not know.
create or replace function apportion.schema_version()
returns integer
language sql immutable parallel safe
as $$
  select 2
$$;
grant execute on function apportion.schema_version() to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
comment on function apportion.schema_version() is
  'The version of the SQL contract this database holds (CHANGELOG.md, "Schema versions"). The orchestrator refuses to start against a version it does not know.';

grant usage on schema apportion to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;

-- migrate's bookkeeping (orchestrator/migrate.ts): no runtime role reads it.
-- (apportion.schema_migrations, node-pg-migrate's, is owned by whoever first
-- ran migrate, not by apportion_owner, so its comment is in a migration.)
comment on table apportion.db_sources is
  'The db/ source files migrate applied, by SHA-256 checksum: migrate applies db/ again when a migration ran or a file''s checksum changed. Written by migrate only.';
