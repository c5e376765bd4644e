-- Privileges: the least each runtime role needs, and nothing for PUBLIC.
-- Table-level privileges per role and table; column-level grants where the
-- queue uses them; schema and function privileges.
begin;
select plan(103);

-- apportion_ingest: writes ingest rows (append-only), switches models on and
-- off for its tenant, enqueues, reads its allocations and failures.
select table_privs_are('apportion', 'tenants', 'apportion_ingest', array['SELECT'], 'ingest: SELECT on tenants');
select table_privs_are('apportion', 'channels', 'apportion_ingest', array['SELECT', 'INSERT'], 'ingest: SELECT, INSERT on channels');
select table_privs_are('apportion', 'touchpoints', 'apportion_ingest', array['SELECT', 'INSERT'], 'ingest: SELECT, INSERT on touchpoints (append-only)');
select table_privs_are('apportion', 'attribution_events', 'apportion_ingest', array['SELECT', 'INSERT'], 'ingest: SELECT, INSERT on attribution_events (append-only)');
select table_privs_are('apportion', 'attribution_models', 'apportion_ingest', array['SELECT'], 'ingest: SELECT on attribution_models');
select table_privs_are('apportion', 'tenant_models', 'apportion_ingest', array['SELECT', 'INSERT', 'DELETE'], 'ingest: SELECT, INSERT, DELETE on tenant_models');
select table_privs_are('apportion', 'attribution_allocations', 'apportion_ingest', array['SELECT'], 'ingest: SELECT on attribution_allocations');
select table_privs_are('apportion', 'jobs', 'apportion_ingest', array['SELECT'], 'ingest: table-level SELECT on jobs (INSERT is per column)');
select table_privs_are('apportion', 'worker_failed_jobs', 'apportion_ingest', array['SELECT'], 'ingest: SELECT on worker_failed_jobs');

-- apportion_worker: reads ingest data, writes allocations, runs the queue.
select table_privs_are('apportion', 'tenants', 'apportion_worker', array['SELECT'], 'worker: SELECT on tenants');
select table_privs_are('apportion', 'channels', 'apportion_worker', array['SELECT'], 'worker: SELECT on channels');
select table_privs_are('apportion', 'touchpoints', 'apportion_worker', array['SELECT'], 'worker: SELECT only on touchpoints');
select table_privs_are('apportion', 'attribution_events', 'apportion_worker', array['SELECT'], 'worker: SELECT only on attribution_events');
select table_privs_are('apportion', 'attribution_models', 'apportion_worker', array['SELECT'], 'worker: SELECT on attribution_models');
select table_privs_are('apportion', 'tenant_models', 'apportion_worker', array['SELECT'], 'worker: SELECT on tenant_models');
select table_privs_are('apportion', 'attribution_allocations', 'apportion_worker', array['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  'worker: SELECT, INSERT, UPDATE, DELETE on attribution_allocations (no TRUNCATE)');
select table_privs_are('apportion', 'jobs', 'apportion_worker', array['SELECT'], 'worker: table-level SELECT on jobs (INSERT, UPDATE are per column)');
select table_privs_are('apportion', 'worker_failed_jobs', 'apportion_worker', array['SELECT', 'INSERT'], 'worker: SELECT, INSERT on worker_failed_jobs (UPDATE is per column)');

-- apportion_reader: reads its tenant's allocations and reports, nothing raw.
select table_privs_are('apportion', 'tenants', 'apportion_reader', array['SELECT'], 'reader: SELECT on tenants');
select table_privs_are('apportion', 'channels', 'apportion_reader', array['SELECT'], 'reader: SELECT on channels');
select table_privs_are('apportion', 'touchpoints', 'apportion_reader', array[]::name[], 'reader: nothing on touchpoints');
select table_privs_are('apportion', 'attribution_events', 'apportion_reader', array[]::name[], 'reader: nothing on attribution_events');
select table_privs_are('apportion', 'attribution_models', 'apportion_reader', array['SELECT'], 'reader: SELECT on attribution_models');
select table_privs_are('apportion', 'tenant_models', 'apportion_reader', array['SELECT'], 'reader: SELECT on tenant_models');
select table_privs_are('apportion', 'attribution_allocations', 'apportion_reader', array['SELECT'], 'reader: SELECT on attribution_allocations');
select table_privs_are('apportion', 'jobs', 'apportion_reader', array[]::name[], 'reader: nothing on jobs');
select table_privs_are('apportion', 'worker_failed_jobs', 'apportion_reader', array[]::name[], 'reader: nothing on worker_failed_jobs');
select table_privs_are('apportion', 'daily_channel_revenue', 'apportion_reader', array['SELECT'], 'reader: SELECT on the daily_channel_revenue report');

-- PUBLIC: nothing on any public table.
select table_privs_are('apportion', 'tenants', 'public', array[]::name[], 'PUBLIC: nothing on tenants');
select table_privs_are('apportion', 'channels', 'public', array[]::name[], 'PUBLIC: nothing on channels');
select table_privs_are('apportion', 'touchpoints', 'public', array[]::name[], 'PUBLIC: nothing on touchpoints');
select table_privs_are('apportion', 'attribution_events', 'public', array[]::name[], 'PUBLIC: nothing on attribution_events');
select table_privs_are('apportion', 'attribution_models', 'public', array[]::name[], 'PUBLIC: nothing on attribution_models');
select table_privs_are('apportion', 'tenant_models', 'public', array[]::name[], 'PUBLIC: nothing on tenant_models');
select table_privs_are('apportion', 'attribution_allocations', 'public', array[]::name[], 'PUBLIC: nothing on attribution_allocations');
select table_privs_are('apportion', 'jobs', 'public', array[]::name[], 'PUBLIC: nothing on jobs');
select table_privs_are('apportion', 'worker_failed_jobs', 'public', array[]::name[], 'PUBLIC: nothing on worker_failed_jobs');

-- ... and, scanning the catalog so later objects are covered too, no table,
-- view, column or sequence in the schema grants PUBLIC anything.
create temp view public_grants as
select c.relname::text as relname
  from pg_class c
 where c.relnamespace = 'apportion'::regnamespace
   -- case: the planner may run a check before the relkind filter
   and case
         when c.relkind in ('r', 'p', 'v', 'm', 'f') then
           has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
           or has_any_column_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
         when c.relkind = 'S' then
           has_sequence_privilege('public', c.oid, 'USAGE, SELECT, UPDATE')
       end;
select is((select coalesce(array_agg(relname order by relname), '{}') from public_grants), '{}'::text[],
  'PUBLIC has no table, column or sequence privilege on anything in schema apportion');
-- Self-check: the scan does see a PUBLIC grant (rolled back with the test).
grant select (name) on apportion.db_sources to public;
grant usage on sequence apportion.jobs_id_seq to public;
select is((select array_agg(relname order by relname) from public_grants), array['db_sources', 'jobs_id_seq'],
  'self-check: the PUBLIC scan finds a column grant and a sequence grant made to PUBLIC');
revoke select (name) on apportion.db_sources from public;
revoke usage on sequence apportion.jobs_id_seq from public;

-- Internal tables: no runtime role touches them directly.
select table_privs_are('apportion', 'db_sources', 'apportion_ingest', array[]::name[], 'ingest: nothing on db_sources');
select table_privs_are('apportion', 'db_sources', 'apportion_worker', array[]::name[], 'worker: nothing on db_sources');
select table_privs_are('apportion', 'db_sources', 'apportion_reader', array[]::name[], 'reader: nothing on db_sources');
select table_privs_are('apportion', 'jobs_live', 'apportion_ingest', array[]::name[], 'ingest: nothing on the jobs_live partition directly');
select table_privs_are('apportion', 'jobs_live', 'apportion_worker', array[]::name[], 'worker: nothing on the jobs_live partition directly');
select table_privs_are('apportion', 'jobs_live', 'apportion_reader', array[]::name[], 'reader: nothing on the jobs_live partition directly');
select table_privs_are('apportion', 'jobs_done', 'apportion_ingest', array[]::name[], 'ingest: nothing on the jobs_done partition directly');
select table_privs_are('apportion', 'jobs_done', 'apportion_worker', array[]::name[], 'worker: nothing on the jobs_done partition directly');
select table_privs_are('apportion', 'jobs_done', 'apportion_reader', array[]::name[], 'reader: nothing on the jobs_done partition directly');

-- Column-level privileges: no column grant widens the table grants above.
select any_column_privs_are('apportion', 'touchpoints', 'apportion_worker', array['SELECT'], 'worker: no column of touchpoints is writable');
select any_column_privs_are('apportion', 'attribution_events', 'apportion_worker', array['SELECT'], 'worker: no column of attribution_events is writable');
select any_column_privs_are('apportion', 'touchpoints', 'apportion_ingest', array['SELECT', 'INSERT'], 'ingest: no column of touchpoints is updatable');
select any_column_privs_are('apportion', 'attribution_events', 'apportion_ingest', array['SELECT', 'INSERT'], 'ingest: no column of attribution_events is updatable');
select any_column_privs_are('apportion', 'touchpoints', 'apportion_reader', array[]::name[], 'reader: no column of touchpoints');
select any_column_privs_are('apportion', 'attribution_events', 'apportion_reader', array[]::name[], 'reader: no column of attribution_events');
-- The queue grants INSERT and UPDATE per column: a caller cannot forge a
-- job's state, and nobody can move a job or failure to another tenant.
select any_column_privs_are('apportion', 'jobs', 'apportion_ingest', array['SELECT', 'INSERT'], 'ingest: jobs columns SELECT, INSERT (some)');
select any_column_privs_are('apportion', 'jobs', 'apportion_worker', array['SELECT', 'INSERT', 'UPDATE'], 'worker: jobs columns SELECT, INSERT, UPDATE (some)');
select any_column_privs_are('apportion', 'jobs', 'apportion_reader', array[]::name[], 'reader: no column of jobs');
select column_privs_are('apportion', 'jobs', 'state', 'apportion_ingest', array['SELECT'], 'ingest: cannot set jobs.state');
select column_privs_are('apportion', 'jobs', 'attempts', 'apportion_ingest', array['SELECT'], 'ingest: cannot set jobs.attempts');
select column_privs_are('apportion', 'jobs', 'tenant_id', 'apportion_ingest', array['SELECT', 'INSERT'], 'ingest: sets jobs.tenant_id on insert only');
select column_privs_are('apportion', 'jobs', 'tenant_id', 'apportion_worker', array['SELECT', 'INSERT'], 'worker: cannot update jobs.tenant_id');
select any_column_privs_are('apportion', 'worker_failed_jobs', 'apportion_ingest', array['SELECT'], 'ingest: no column of worker_failed_jobs is writable');
select any_column_privs_are('apportion', 'worker_failed_jobs', 'apportion_worker', array['SELECT', 'INSERT', 'UPDATE'], 'worker: worker_failed_jobs columns SELECT, INSERT, UPDATE (some)');
select any_column_privs_are('apportion', 'worker_failed_jobs', 'apportion_reader', array[]::name[], 'reader: no column of worker_failed_jobs');
select column_privs_are('apportion', 'worker_failed_jobs', 'tenant_id', 'apportion_worker', array['SELECT', 'INSERT'], 'worker: cannot update worker_failed_jobs.tenant_id');

-- Schema: USAGE for the runtime roles, never CREATE; nothing for PUBLIC.
select schema_privs_are('apportion', 'apportion_ingest', array['USAGE'], 'ingest: USAGE (not CREATE) on schema apportion');
select schema_privs_are('apportion', 'apportion_worker', array['USAGE'], 'worker: USAGE (not CREATE) on schema apportion');
select schema_privs_are('apportion', 'apportion_reader', array['USAGE'], 'reader: USAGE (not CREATE) on schema apportion');
select schema_privs_are('apportion', 'public', array[]::name[], 'PUBLIC: nothing on schema apportion');

-- Public functions ------------------------------------------------------------
-- Admin only: create_tenant, register_model.
select function_privs_are('apportion', 'create_tenant', array['text', 'uuid'], 'apportion_ingest', array[]::name[], 'ingest cannot execute create_tenant');
select function_privs_are('apportion', 'create_tenant', array['text', 'uuid'], 'apportion_worker', array[]::name[], 'worker cannot execute create_tenant');
select function_privs_are('apportion', 'create_tenant', array['text', 'uuid'], 'apportion_reader', array[]::name[], 'reader cannot execute create_tenant');
select function_privs_are('apportion', 'create_tenant', array['text', 'uuid'], 'public', array[]::name[], 'PUBLIC cannot execute create_tenant');
select function_privs_are('apportion', 'create_tenant', array['text', 'uuid'], 'apportion_owner', array['EXECUTE'], 'owner (admin) executes create_tenant');
select function_privs_are('apportion', 'register_model', array['text', 'text', 'jsonb'], 'apportion_ingest', array[]::name[], 'ingest cannot execute register_model');
select function_privs_are('apportion', 'register_model', array['text', 'text', 'jsonb'], 'apportion_worker', array[]::name[], 'worker cannot execute register_model');
select function_privs_are('apportion', 'register_model', array['text', 'text', 'jsonb'], 'apportion_reader', array[]::name[], 'reader cannot execute register_model');
select function_privs_are('apportion', 'register_model', array['text', 'text', 'jsonb'], 'public', array[]::name[], 'PUBLIC cannot execute register_model');
select function_privs_are('apportion', 'register_model', array['text', 'text', 'jsonb'], 'apportion_owner', array['EXECUTE'], 'owner (admin) executes register_model');
-- Per-tenant model switches: ingest (and the owner).
select function_privs_are('apportion', 'activate_model', array['text'], 'apportion_ingest', array['EXECUTE'], 'ingest executes activate_model');
select function_privs_are('apportion', 'activate_model', array['text'], 'apportion_worker', array[]::name[], 'worker cannot execute activate_model');
select function_privs_are('apportion', 'activate_model', array['text'], 'apportion_reader', array[]::name[], 'reader cannot execute activate_model');
select function_privs_are('apportion', 'activate_model', array['text'], 'public', array[]::name[], 'PUBLIC cannot execute activate_model');
select function_privs_are('apportion', 'deactivate_model', array['text'], 'apportion_ingest', array['EXECUTE'], 'ingest executes deactivate_model');
select function_privs_are('apportion', 'deactivate_model', array['text'], 'apportion_worker', array[]::name[], 'worker cannot execute deactivate_model');
select function_privs_are('apportion', 'deactivate_model', array['text'], 'apportion_reader', array[]::name[], 'reader cannot execute deactivate_model');
select function_privs_are('apportion', 'deactivate_model', array['text'], 'public', array[]::name[], 'PUBLIC cannot execute deactivate_model');
-- Allocation: the worker.
select function_privs_are('apportion', 'allocate_event', array['uuid', 'text'], 'apportion_worker', array['EXECUTE'], 'worker executes allocate_event');
select function_privs_are('apportion', 'allocate_event', array['uuid', 'text'], 'apportion_ingest', array[]::name[], 'ingest cannot execute allocate_event');
select function_privs_are('apportion', 'allocate_event', array['uuid', 'text'], 'apportion_reader', array[]::name[], 'reader cannot execute allocate_event');
select function_privs_are('apportion', 'allocate_event', array['uuid', 'text'], 'public', array[]::name[], 'PUBLIC cannot execute allocate_event');
select function_privs_are('apportion', 'recompute_window', array['timestamp with time zone', 'timestamp with time zone', 'text'], 'apportion_worker', array['EXECUTE'], 'worker executes recompute_window');
select function_privs_are('apportion', 'recompute_window', array['timestamp with time zone', 'timestamp with time zone', 'text'], 'apportion_ingest', array[]::name[], 'ingest cannot execute recompute_window');
select function_privs_are('apportion', 'recompute_window', array['timestamp with time zone', 'timestamp with time zone', 'text'], 'apportion_reader', array[]::name[], 'reader cannot execute recompute_window');
select function_privs_are('apportion', 'recompute_window', array['timestamp with time zone', 'timestamp with time zone', 'text'], 'public', array[]::name[], 'PUBLIC cannot execute recompute_window');
-- The engine's query: the worker (through compute_allocations, or directly;
-- row level security still decides what it sees: pgTAP 26).
select function_privs_are('apportion', 'allocation_rows', array['uuid', 'text', 'interval', 'text', 'numeric', 'numeric', 'numeric', 'text[]', 'numeric[]', 'text[]', 'uuid[]', 'timestamp with time zone', 'timestamp with time zone'], 'apportion_worker', array['EXECUTE'], 'worker executes allocation_rows');
select function_privs_are('apportion', 'allocation_rows', array['uuid', 'text', 'interval', 'text', 'numeric', 'numeric', 'numeric', 'text[]', 'numeric[]', 'text[]', 'uuid[]', 'timestamp with time zone', 'timestamp with time zone'], 'apportion_ingest', array[]::name[], 'ingest cannot execute allocation_rows');
select function_privs_are('apportion', 'allocation_rows', array['uuid', 'text', 'interval', 'text', 'numeric', 'numeric', 'numeric', 'text[]', 'numeric[]', 'text[]', 'uuid[]', 'timestamp with time zone', 'timestamp with time zone'], 'apportion_reader', array[]::name[], 'reader cannot execute allocation_rows');
select function_privs_are('apportion', 'allocation_rows', array['uuid', 'text', 'interval', 'text', 'numeric', 'numeric', 'numeric', 'text[]', 'numeric[]', 'text[]', 'uuid[]', 'timestamp with time zone', 'timestamp with time zone'], 'public', array[]::name[], 'PUBLIC cannot execute allocation_rows');

-- The live path's pending work: ingest records it, the worker takes it.
select table_privs_are('apportion', 'pending_allocations', 'apportion_ingest', array['SELECT', 'INSERT'], 'ingest: SELECT, INSERT on pending_allocations');
select table_privs_are('apportion', 'pending_allocations', 'apportion_worker', array['SELECT', 'UPDATE', 'DELETE'], 'worker: SELECT, UPDATE (to lock), DELETE on pending_allocations');
select table_privs_are('apportion', 'pending_allocations', 'apportion_reader', array[]::name[], 'reader: nothing on pending_allocations');
select table_privs_are('apportion', 'pending_allocations', 'public', array[]::name[], 'PUBLIC: nothing on pending_allocations');

select * from finish();
rollback;
