-- The versioned contract: what the database reports about itself, and who
-- may see which schema.
--
-- apportion holds the public API: every function in it is listed in
-- README.md, and the grants under each function are the "who" column there.
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

grant usage on schema apportion to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
