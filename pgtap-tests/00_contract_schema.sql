-- The public schema contract (README, "SQL API"): tables, stable columns and their
-- types, keys, foreign keys, policies and the public functions. Internal
-- tables and columns are free to change and are not pinned here.
begin;
select plan(144);

-- Tables ---------------------------------------------------------------------
select has_table('apportion', 'tenants', 'table apportion.tenants exists');
select has_table('apportion', 'channels', 'table apportion.channels exists');
select has_table('apportion', 'touchpoints', 'table apportion.touchpoints exists');
select has_table('apportion', 'attribution_events', 'table apportion.attribution_events exists');
select has_table('apportion', 'attribution_models', 'table apportion.attribution_models exists');
select has_table('apportion', 'tenant_models', 'table apportion.tenant_models exists');
select has_table('apportion', 'attribution_allocations', 'table apportion.attribution_allocations exists');
select has_table('apportion', 'jobs', 'table apportion.jobs exists');
select has_table('apportion', 'worker_failed_jobs', 'table apportion.worker_failed_jobs exists');

-- Stable columns and their types --------------------------------------------
select col_type_is('apportion', 'tenants', 'id', 'uuid', 'tenants.id is uuid');
select col_type_is('apportion', 'tenants', 'name', 'text', 'tenants.name is text');

select col_type_is('apportion', 'channels', 'tenant_id', 'uuid', 'channels.tenant_id is uuid');
select col_type_is('apportion', 'channels', 'code', 'text', 'channels.code is text');
select col_type_is('apportion', 'channels', 'is_direct', 'boolean', 'channels.is_direct (the direct-type flag) is boolean');

select col_type_is('apportion', 'touchpoints', 'tenant_id', 'uuid', 'touchpoints.tenant_id is uuid');
select col_type_is('apportion', 'touchpoints', 'id', 'uuid', 'touchpoints.id is uuid');
select col_type_is('apportion', 'touchpoints', 'customer_id', 'text', 'touchpoints.customer_id is text');
select col_type_is('apportion', 'touchpoints', 'channel', 'text', 'touchpoints.channel is text');
select col_type_is('apportion', 'touchpoints', 'occurred_at', 'timestamp with time zone', 'touchpoints.occurred_at is timestamptz');
select col_type_is('apportion', 'touchpoints', 'campaign', 'text', 'touchpoints.campaign is text');
select col_type_is('apportion', 'touchpoints', 'external_id', 'text', 'touchpoints.external_id is text');
select col_type_is('apportion', 'touchpoints', 'properties', 'jsonb', 'touchpoints.properties is jsonb');

select col_type_is('apportion', 'attribution_events', 'tenant_id', 'uuid', 'attribution_events.tenant_id is uuid');
select col_type_is('apportion', 'attribution_events', 'id', 'uuid', 'attribution_events.id is uuid');
select col_type_is('apportion', 'attribution_events', 'customer_id', 'text', 'attribution_events.customer_id is text');
select col_type_is('apportion', 'attribution_events', 'occurred_at', 'timestamp with time zone', 'attribution_events.occurred_at is timestamptz');
select col_type_is('apportion', 'attribution_events', 'revenue_cents', 'bigint', 'attribution_events.revenue_cents is bigint');
select col_type_is('apportion', 'attribution_events', 'currency', 'character(3)', 'attribution_events.currency is char(3)');
select col_type_is('apportion', 'attribution_events', 'external_event_id', 'text', 'attribution_events.external_event_id is text');
select col_type_is('apportion', 'attribution_events', 'event_type', 'text', 'attribution_events.event_type is text');
select col_type_is('apportion', 'attribution_events', 'raw_payload', 'jsonb', 'attribution_events.raw_payload is jsonb');

select col_type_is('apportion', 'attribution_models', 'model_version', 'text', 'attribution_models.model_version is text');
select col_type_is('apportion', 'attribution_models', 'kind', 'text', 'attribution_models.kind is text');
select col_type_is('apportion', 'attribution_models', 'params', 'jsonb', 'attribution_models.params is jsonb');

select col_type_is('apportion', 'tenant_models', 'tenant_id', 'uuid', 'tenant_models.tenant_id is uuid');
select col_type_is('apportion', 'tenant_models', 'model_version', 'text', 'tenant_models.model_version is text');

select col_type_is('apportion', 'attribution_allocations', 'tenant_id', 'uuid', 'attribution_allocations.tenant_id is uuid');
select col_type_is('apportion', 'attribution_allocations', 'event_id', 'uuid', 'attribution_allocations.event_id is uuid');
select col_type_is('apportion', 'attribution_allocations', 'model_version', 'text', 'attribution_allocations.model_version is text');
select col_type_is('apportion', 'attribution_allocations', 'channel', 'text', 'attribution_allocations.channel is text');
select col_type_is('apportion', 'attribution_allocations', 'allocated_revenue_cents', 'bigint', 'attribution_allocations.allocated_revenue_cents is bigint');
select col_type_is('apportion', 'attribution_allocations', 'allocation_ratio', 'numeric(7,6)', 'attribution_allocations.allocation_ratio is numeric(7,6)');
select col_type_is('apportion', 'attribution_allocations', 'touchpoint_count', 'integer', 'attribution_allocations.touchpoint_count is integer');
select col_type_is('apportion', 'attribution_allocations', 'correlation_id', 'uuid', 'attribution_allocations.correlation_id is uuid');
select col_type_is('apportion', 'attribution_allocations', 'computed_at', 'timestamp with time zone', 'attribution_allocations.computed_at is timestamptz');

select col_type_is('apportion', 'jobs', 'tenant_id', 'uuid', 'jobs.tenant_id is uuid');
select col_type_is('apportion', 'jobs', 'queue', 'text', 'jobs.queue is text');
select col_type_is('apportion', 'jobs', 'task', 'text', 'jobs.task is text');
select col_type_is('apportion', 'jobs', 'payload', 'jsonb', 'jobs.payload is jsonb');
select col_type_is('apportion', 'jobs', 'correlation_id', 'uuid', 'jobs.correlation_id is uuid');
select col_type_is('apportion', 'jobs', 'attempts', 'integer', 'jobs.attempts is integer');
select col_type_is('apportion', 'jobs', 'state', 'text', 'jobs.state is text');

select col_type_is('apportion', 'worker_failed_jobs', 'id', 'bigint', 'worker_failed_jobs.id is bigint');
select col_type_is('apportion', 'worker_failed_jobs', 'tenant_id', 'uuid', 'worker_failed_jobs.tenant_id is uuid');
select col_type_is('apportion', 'worker_failed_jobs', 'job_id', 'bigint', 'worker_failed_jobs.job_id is bigint');
select col_type_is('apportion', 'worker_failed_jobs', 'queue', 'text', 'worker_failed_jobs.queue is text');
select col_type_is('apportion', 'worker_failed_jobs', 'task', 'text', 'worker_failed_jobs.task is text');
select col_type_is('apportion', 'worker_failed_jobs', 'payload', 'jsonb', 'worker_failed_jobs.payload is jsonb');
select col_type_is('apportion', 'worker_failed_jobs', 'error_code', 'text', 'worker_failed_jobs.error_code is text');
select col_type_is('apportion', 'worker_failed_jobs', 'error_message', 'text', 'worker_failed_jobs.error_message is text');
select col_type_is('apportion', 'worker_failed_jobs', 'attempts', 'integer', 'worker_failed_jobs.attempts is integer');
select col_type_is('apportion', 'worker_failed_jobs', 'correlation_id', 'uuid', 'worker_failed_jobs.correlation_id is uuid');
select col_type_is('apportion', 'worker_failed_jobs', 'failed_at', 'timestamp with time zone', 'worker_failed_jobs.failed_at is timestamptz');
select col_type_is('apportion', 'worker_failed_jobs', 'status', 'text', 'worker_failed_jobs.status is text');

-- Nullability: tenant rows always name their tenant; optional fields stay
-- optional; the queue tables allow system rows without a tenant.
select col_not_null('apportion', 'channels', 'tenant_id', 'channels.tenant_id is not null');
select col_not_null('apportion', 'touchpoints', 'tenant_id', 'touchpoints.tenant_id is not null');
select col_not_null('apportion', 'attribution_events', 'tenant_id', 'attribution_events.tenant_id is not null');
select col_not_null('apportion', 'tenant_models', 'tenant_id', 'tenant_models.tenant_id is not null');
select col_not_null('apportion', 'attribution_allocations', 'tenant_id', 'attribution_allocations.tenant_id is not null');
select col_not_null('apportion', 'attribution_events', 'revenue_cents', 'attribution_events.revenue_cents is not null');
select col_not_null('apportion', 'attribution_events', 'currency', 'attribution_events.currency is not null');
select col_is_null('apportion', 'touchpoints', 'campaign', 'touchpoints.campaign is optional');
select col_is_null('apportion', 'touchpoints', 'external_id', 'touchpoints.external_id is optional');
select col_is_null('apportion', 'attribution_events', 'external_event_id', 'attribution_events.external_event_id is optional');
select col_is_null('apportion', 'attribution_allocations', 'correlation_id', 'attribution_allocations.correlation_id is optional');
select col_is_null('apportion', 'jobs', 'tenant_id', 'jobs.tenant_id is nullable (system jobs)');
select col_is_null('apportion', 'worker_failed_jobs', 'tenant_id', 'worker_failed_jobs.tenant_id is nullable (system jobs)');

-- Primary and unique keys: tenant_id leads every tenant key ------------------
select col_is_pk('apportion', 'tenants', array['id'], 'tenants: primary key (id)');
select col_is_pk('apportion', 'channels', array['tenant_id', 'code'], 'channels: primary key (tenant_id, code)');
select col_is_pk('apportion', 'touchpoints', array['tenant_id', 'id'], 'touchpoints: primary key (tenant_id, id)');
select col_is_pk('apportion', 'attribution_events', array['tenant_id', 'id'], 'attribution_events: primary key (tenant_id, id)');
select col_is_pk('apportion', 'attribution_models', array['model_version'], 'attribution_models: primary key (model_version)');
select col_is_pk('apportion', 'tenant_models', array['tenant_id', 'model_version'], 'tenant_models: primary key (tenant_id, model_version)');
select col_is_pk('apportion', 'attribution_allocations', array['tenant_id', 'event_id', 'model_version', 'channel'],
  'attribution_allocations: the idempotency key (tenant_id, event_id, model_version, channel) is the primary key');
select has_pk('apportion', 'jobs', 'jobs has a primary key');
select col_is_pk('apportion', 'worker_failed_jobs', array['id'], 'worker_failed_jobs: primary key (id)');
select col_is_unique('apportion', 'touchpoints', array['tenant_id', 'external_id'], 'touchpoints: unique (tenant_id, external_id)');
select col_is_unique('apportion', 'attribution_events', array['tenant_id', 'external_event_id'], 'attribution_events: unique (tenant_id, external_event_id)');

-- Foreign keys ---------------------------------------------------------------
select fk_ok('apportion', 'channels', array['tenant_id'], 'apportion', 'tenants', array['id'],
  'channels.tenant_id references tenants.id');
select fk_ok('apportion', 'touchpoints', array['tenant_id', 'channel'], 'apportion', 'channels', array['tenant_id', 'code'],
  'touchpoints (tenant_id, channel) reference the tenant''s taxonomy channels (tenant_id, code)');
select fk_ok('apportion', 'attribution_events', array['tenant_id'], 'apportion', 'tenants', array['id'],
  'attribution_events.tenant_id references tenants.id');
select fk_ok('apportion', 'tenant_models', array['tenant_id'], 'apportion', 'tenants', array['id'],
  'tenant_models.tenant_id references tenants.id');
select fk_ok('apportion', 'tenant_models', array['model_version'], 'apportion', 'attribution_models', array['model_version'],
  'tenant_models.model_version references attribution_models.model_version');
select fk_ok('apportion', 'attribution_allocations', array['tenant_id', 'event_id'], 'apportion', 'attribution_events', array['tenant_id', 'id'],
  'attribution_allocations (tenant_id, event_id) reference attribution_events (tenant_id, id)');
select fk_ok('apportion', 'attribution_allocations', array['model_version'], 'apportion', 'attribution_models', array['model_version'],
  'attribution_allocations.model_version references attribution_models.model_version');
select fk_ok('apportion', 'attribution_allocations', array['tenant_id', 'channel'], 'apportion', 'channels', array['tenant_id', 'code'],
  'attribution_allocations (tenant_id, channel) reference channels (tenant_id, code)');

select fk_ok('apportion', 'jobs_live', array['queue', 'task'], 'apportion', 'queue_tasks', array['queue', 'task'],
  'jobs_live (queue, task) reference the task registry: every job enters the queue checked');

-- Policies -------------------------------------------------------------------
select policies_are('apportion', 'tenants', array['tenant_isolation', 'owner_admin'], 'tenants: policies tenant_isolation, owner_admin');
select policies_are('apportion', 'channels', array['tenant_isolation', 'owner_admin'], 'channels: policies tenant_isolation, owner_admin');
select policies_are('apportion', 'touchpoints', array['tenant_isolation', 'owner_admin'], 'touchpoints: policies tenant_isolation, owner_admin');
select policies_are('apportion', 'attribution_events', array['tenant_isolation', 'owner_admin'], 'attribution_events: policies tenant_isolation, owner_admin');
select policies_are('apportion', 'tenant_models', array['tenant_isolation', 'owner_admin'], 'tenant_models: policies tenant_isolation, owner_admin');
select policies_are('apportion', 'attribution_allocations', array['tenant_isolation', 'owner_admin'], 'attribution_allocations: policies tenant_isolation, owner_admin');
select policies_are('apportion', 'jobs', array['tenant_isolation', 'system_jobs', 'owner_admin'], 'jobs: policies tenant_isolation, system_jobs, owner_admin');
select policies_are('apportion', 'worker_failed_jobs', array['tenant_isolation', 'system_jobs', 'owner_admin'], 'worker_failed_jobs: policies tenant_isolation, system_jobs, owner_admin');
select policies_are('apportion', 'attribution_models', array[]::name[], 'attribution_models (global, no tenant_id): no policies');

select policy_roles_are('apportion', 'tenants', 'tenant_isolation', array['apportion_ingest', 'apportion_worker', 'apportion_reader', 'apportion_allocator'], 'tenants.tenant_isolation applies to the runtime roles');
select policy_roles_are('apportion', 'channels', 'tenant_isolation', array['apportion_ingest', 'apportion_worker', 'apportion_reader', 'apportion_allocator'], 'channels.tenant_isolation applies to the runtime roles');
select policy_roles_are('apportion', 'touchpoints', 'tenant_isolation', array['apportion_ingest', 'apportion_worker', 'apportion_reader', 'apportion_allocator'], 'touchpoints.tenant_isolation applies to the runtime roles');
select policy_roles_are('apportion', 'attribution_events', 'tenant_isolation', array['apportion_ingest', 'apportion_worker', 'apportion_reader', 'apportion_allocator'], 'attribution_events.tenant_isolation applies to the runtime roles');
select policy_roles_are('apportion', 'tenant_models', 'tenant_isolation', array['apportion_ingest', 'apportion_worker', 'apportion_reader', 'apportion_allocator'], 'tenant_models.tenant_isolation applies to the runtime roles');
select policy_roles_are('apportion', 'attribution_allocations', 'tenant_isolation', array['apportion_ingest', 'apportion_worker', 'apportion_reader', 'apportion_allocator'], 'attribution_allocations.tenant_isolation applies to the runtime roles');
select policy_roles_are('apportion', 'jobs', 'tenant_isolation', array['apportion_ingest', 'apportion_worker', 'apportion_reader', 'apportion_allocator'], 'jobs.tenant_isolation applies to the runtime roles');
select policy_roles_are('apportion', 'worker_failed_jobs', 'tenant_isolation', array['apportion_ingest', 'apportion_worker', 'apportion_reader', 'apportion_allocator'], 'worker_failed_jobs.tenant_isolation applies to the runtime roles');

select policy_roles_are('apportion', 'tenants', 'owner_admin', array['apportion_owner'], 'tenants.owner_admin applies to apportion_owner only');
select policy_roles_are('apportion', 'channels', 'owner_admin', array['apportion_owner'], 'channels.owner_admin applies to apportion_owner only');
select policy_roles_are('apportion', 'touchpoints', 'owner_admin', array['apportion_owner'], 'touchpoints.owner_admin applies to apportion_owner only');
select policy_roles_are('apportion', 'attribution_events', 'owner_admin', array['apportion_owner'], 'attribution_events.owner_admin applies to apportion_owner only');
select policy_roles_are('apportion', 'tenant_models', 'owner_admin', array['apportion_owner'], 'tenant_models.owner_admin applies to apportion_owner only');
select policy_roles_are('apportion', 'attribution_allocations', 'owner_admin', array['apportion_owner'], 'attribution_allocations.owner_admin applies to apportion_owner only');
select policy_roles_are('apportion', 'jobs', 'owner_admin', array['apportion_owner'], 'jobs.owner_admin applies to apportion_owner only');
select policy_roles_are('apportion', 'worker_failed_jobs', 'owner_admin', array['apportion_owner'], 'worker_failed_jobs.owner_admin applies to apportion_owner only');

select policy_roles_are('apportion', 'jobs', 'system_jobs', array['apportion_worker'], 'jobs.system_jobs applies to apportion_worker only');
-- What must hold for every new job, whoever inserts it, is a trigger: the
-- registry check (task, tenant scope, payload, max_attempts) on jobs_live,
-- where every job starts, and the failure record on jobs_done.
select trigger_is('apportion', 'jobs_live', 'jobs_live_prepare', 'apportion_internal', 'prepare_job',
  'jobs_live: every new job is checked against the registry (jobs_live_prepare)');
select trigger_is('apportion', 'jobs_done', 'jobs_done_record_failure', 'apportion_internal', 'record_failure',
  'jobs_done: every job that fails for good is recorded (jobs_done_record_failure)');
select policy_roles_are('apportion', 'worker_failed_jobs', 'system_jobs', array['apportion_worker'], 'worker_failed_jobs.system_jobs applies to apportion_worker only');

-- Public functions: they exist, return what the contract says, and run as
-- the caller (under the caller's RLS), not as a definer.
select has_function('apportion', 'create_tenant', array['text', 'uuid'], 'function apportion.create_tenant(text, uuid) exists');
select has_function('apportion', 'register_model', array['text', 'text', 'jsonb'], 'function apportion.register_model(text, text, jsonb) exists');
select has_function('apportion', 'activate_model', array['text'], 'function apportion.activate_model(text) exists');
select has_function('apportion', 'deactivate_model', array['text'], 'function apportion.deactivate_model(text) exists');
select has_function('apportion', 'allocate_event', array['uuid', 'text'], 'function apportion.allocate_event(uuid, text) exists');
select has_function('apportion', 'recompute_window', array['timestamp with time zone', 'timestamp with time zone', 'text'],
  'function apportion.recompute_window(timestamptz, timestamptz, text) exists');

select function_returns('apportion', 'create_tenant', array['text', 'uuid'], 'uuid', 'create_tenant returns uuid');
select function_returns('apportion', 'register_model', array['text', 'text', 'jsonb'], 'void', 'register_model returns void');
select function_returns('apportion', 'activate_model', array['text'], 'void', 'activate_model returns void');
select function_returns('apportion', 'deactivate_model', array['text'], 'void', 'deactivate_model returns void');
select function_returns('apportion', 'allocate_event', array['uuid', 'text'], 'setof apportion.attribution_allocations',
  'allocate_event returns setof apportion.attribution_allocations');
select is(pg_get_function_result('apportion.recompute_window(timestamptz, timestamptz, text)'::regprocedure),
  'TABLE(event_count bigint, allocation_count bigint)', 'recompute_window returns table(event_count bigint, allocation_count bigint)');

select isnt_definer('apportion', 'create_tenant', array['text', 'uuid'], 'create_tenant runs as the caller');
select isnt_definer('apportion', 'register_model', array['text', 'text', 'jsonb'], 'register_model runs as the caller');
select isnt_definer('apportion', 'activate_model', array['text'], 'activate_model runs as the caller');
select isnt_definer('apportion', 'deactivate_model', array['text'], 'deactivate_model runs as the caller');
select isnt_definer('apportion', 'allocate_event', array['uuid', 'text'], 'allocate_event runs as the caller');
select isnt_definer('apportion', 'recompute_window', array['timestamp with time zone', 'timestamp with time zone', 'text'],
  'recompute_window runs as the caller');

select * from finish();
rollback;
