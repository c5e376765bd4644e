-- Every function of each of apportion's schemas, by name, and exactly which
-- ones each runtime role may execute: a function added, removed or granted
-- anywhere fails here until this list (and README's tables, which a vitest
-- compares with the catalog) says so.
begin;
select plan(7);

select functions_are('apportion', array[
    'activate_model', 'allocate_event', 'allocation_rows', 'bind_login', 'claim_and_run_jobs', 'claim_jobs',
    'compute_allocations', 'create_tenant', 'current_tenant_allowed', 'current_tenant_id', 'deactivate_model',
    'enqueue', 'enqueue_many', 'job_status', 'mask_payload_values', 'open_failures', 'param_interval', 'param_share',
    'payload_keys_only', 'payload_text', 'payload_timestamptz', 'payload_uuid', 'prune_jobs', 'queue_overview',
    'reclaim_expired_leases', 'recompute_window', 'register_model', 'release_jobs', 'replay_failed_job',
    'require_model', 'require_tenant', 'resolve_failed_job', 'resolve_model_params', 'run_jobs', 'run_task',
    'run_tenant_jobs', 'schema_version', 'store_allocations', 'unbind_login', 'task_allocate_event',
    'task_allocate_pending', 'task_noop', 'task_ping', 'task_prune', 'task_reclaim_leases', 'task_recompute_window',
    'markov_paths', 'markov_solve', 'markov_summary', 'markov_training_window', 'markov_transition_counts',
    'param_timestamp', 'require_trained', 'task_train_model', 'train_model', 'exact_fraction', 'explain_allocation',
    'allocations_as_of', 'daily_channel_revenue_as_of', 'store_refund_allocations', 'currency_minor_units',
    'iso_currencies', 'major_units', 'require_as_of', 'model_lookback', 'pending_allocations_overview',
    'activate_model_for', 'allocate_event_for', 'allocations_for', 'daily_channel_revenue_for', 'enqueue_for',
    'explain_allocation_for', 'ingest_events_for', 'ingest_refunds_for', 'ingest_touchpoints_for', 'recompute_window_for',
    'train_model_for', 'enter_tenant'
], 'schema apportion holds exactly the functions README documents');

select functions_are('apportion_internal', array[
    'check_tenant_write', 'default_channels', 'define_tenant_policies', 'enforce_queued_job_caps',
    'enqueue_new_events', 'forbid_model_change', 'generate_task_dispatcher', 'notify_new_jobs', 'prepare_job',
    'queue_tasks_changed', 'record_failure', 'reschedule_job', 'forbid_trained_change', 'record_allocation_history',
    'restate_for_late_touches', 'check_and_split_refunds', 'record_refund_allocation_history',
    'ensure_half_life_factors', 'model_registered'
], 'schema apportion_internal holds exactly the internal helpers');

select is(
  (select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text collate "C") from pg_proc p
    where p.pronamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
      and has_function_privilege('apportion_ingest', p.oid, 'execute')),
  array[
    'apportion.activate_model(text)',
    'apportion.activate_model_for(uuid,text)',
    'apportion.allocations_as_of(text,timestamp with time zone)',
    'apportion.currency_minor_units(text)',
    'apportion.current_tenant_allowed()',
    'apportion.current_tenant_id()',
    'apportion.daily_channel_revenue_as_of(timestamp with time zone)',
    'apportion.daily_channel_revenue_for(uuid)',
    'apportion.deactivate_model(text)',
    'apportion.enqueue(text,text,jsonb,uuid,timestamp with time zone,integer,text)',
    'apportion.enqueue_for(uuid,text,text,jsonb,uuid,timestamp with time zone,integer,text)',
    'apportion.enqueue_many(text,text,jsonb,uuid,integer)',
    'apportion.enter_tenant(uuid,text)',
    'apportion.ingest_events_for(uuid,jsonb)',
    'apportion.ingest_refunds_for(uuid,jsonb)',
    'apportion.ingest_touchpoints_for(uuid,jsonb)',
    'apportion.iso_currencies()',
    'apportion.job_status(bigint)',
    'apportion.major_units(numeric,text)',
    'apportion.markov_summary(text)',
    'apportion.model_lookback(jsonb)',
    'apportion.param_interval(jsonb,text,interval)',
    'apportion.require_as_of(text,timestamp with time zone)',
    'apportion.require_model(text)',
    'apportion.require_tenant()',
    'apportion.require_trained(text)',
    'apportion.schema_version()',
    'apportion.store_refund_allocations(uuid[],text,text)'
  ]::text[],
  'apportion_ingest may execute exactly these functions');

select is(
  (select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text collate "C") from pg_proc p
    where p.pronamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
      and has_function_privilege('apportion_worker', p.oid, 'execute')),
  array[
    'apportion.allocate_event(uuid,text)',
    'apportion.allocate_event_for(uuid,uuid,text)',
    'apportion.allocation_rows(uuid,text,interval,text,numeric,numeric,numeric,text[],numeric[],text[],uuid[],timestamp with time zone,timestamp with time zone)',
    'apportion.allocations_as_of(text,timestamp with time zone)',
    'apportion.allocations_for(uuid,text)',
    'apportion.claim_and_run_jobs(text,text[],integer,integer,integer)',
    'apportion.claim_jobs(text,text[],integer,integer)',
    'apportion.compute_allocations(text,uuid[],timestamp with time zone,timestamp with time zone)',
    'apportion.currency_minor_units(text)',
    'apportion.current_tenant_allowed()',
    'apportion.current_tenant_id()',
    'apportion.daily_channel_revenue_as_of(timestamp with time zone)',
    'apportion.daily_channel_revenue_for(uuid)',
    'apportion.enqueue(text,text,jsonb,uuid,timestamp with time zone,integer,text)',
    'apportion.enqueue_many(text,text,jsonb,uuid,integer)',
    'apportion.enter_tenant(uuid,text)',
    'apportion.exact_fraction(numeric,numeric)',
    'apportion.explain_allocation(uuid,text)',
    'apportion.explain_allocation_for(uuid,uuid,text)',
    'apportion.iso_currencies()',
    'apportion.job_status(bigint)',
    'apportion.major_units(numeric,text)',
    'apportion.markov_paths(uuid,interval,timestamp with time zone,timestamp with time zone)',
    'apportion.markov_solve(text[],text[],bigint[])',
    'apportion.markov_summary(text)',
    'apportion.markov_training_window(jsonb)',
    'apportion.markov_transition_counts(uuid,interval,timestamp with time zone,timestamp with time zone)',
    'apportion.mask_payload_values(text,jsonb)',
    'apportion.model_lookback(jsonb)',
    'apportion.open_failures(uuid,integer)',
    'apportion.param_interval(jsonb,text,interval)',
    'apportion.param_share(jsonb,text,numeric)',
    'apportion.param_timestamp(jsonb,text)',
    'apportion.payload_keys_only(jsonb,text[],text)',
    'apportion.payload_text(jsonb,text,text)',
    'apportion.payload_timestamptz(jsonb,text,text)',
    'apportion.payload_uuid(jsonb,text,text)',
    'apportion.pending_allocations_overview()',
    'apportion.prune_jobs(interval)',
    'apportion.queue_overview()',
    'apportion.reclaim_expired_leases(integer)',
    'apportion.recompute_window(timestamp with time zone,timestamp with time zone,text)',
    'apportion.recompute_window_for(uuid,timestamp with time zone,timestamp with time zone,text)',
    'apportion.release_jobs(text,bigint[])',
    'apportion.replay_failed_job(bigint)',
    'apportion.require_as_of(text,timestamp with time zone)',
    'apportion.require_model(text)',
    'apportion.require_tenant()',
    'apportion.require_trained(text)',
    'apportion.resolve_failed_job(bigint)',
    'apportion.resolve_model_params(text,jsonb)',
    'apportion.run_jobs(text,bigint[])',
    'apportion.run_task(text,text,jsonb)',
    'apportion.run_tenant_jobs(text,uuid,bigint[])',
    'apportion.schema_version()',
    'apportion.store_allocations(text,uuid[],timestamp with time zone,timestamp with time zone,text)',
    'apportion.store_refund_allocations(uuid[],text,text)',
    'apportion.task_allocate_event(jsonb)',
    'apportion.task_allocate_pending(jsonb)',
    'apportion.task_noop(jsonb)',
    'apportion.task_ping(jsonb)',
    'apportion.task_prune(jsonb)',
    'apportion.task_reclaim_leases(jsonb)',
    'apportion.task_recompute_window(jsonb)',
    'apportion.task_train_model(jsonb)',
    'apportion.train_model(text)',
    'apportion.train_model_for(uuid,text)'
  ]::text[],
  'apportion_worker may execute exactly these functions');

select is(
  (select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text collate "C") from pg_proc p
    where p.pronamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
      and has_function_privilege('apportion_reader', p.oid, 'execute')),
  array[
    'apportion.allocations_as_of(text,timestamp with time zone)',
    'apportion.allocations_for(uuid,text)',
    'apportion.currency_minor_units(text)',
    'apportion.current_tenant_allowed()',
    'apportion.current_tenant_id()',
    'apportion.daily_channel_revenue_as_of(timestamp with time zone)',
    'apportion.daily_channel_revenue_for(uuid)',
    'apportion.enter_tenant(uuid,text)',
    'apportion.iso_currencies()',
    'apportion.major_units(numeric,text)',
    'apportion.markov_summary(text)',
    'apportion.require_as_of(text,timestamp with time zone)',
    'apportion.require_model(text)',
    'apportion.require_tenant()',
    'apportion.require_trained(text)',
    'apportion.schema_version()'
  ]::text[],
  'apportion_reader may execute exactly these functions');

select is(
  (select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text collate "C") from pg_proc p
    where p.pronamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
      and has_function_privilege('apportion_allocator', p.oid, 'execute')),
  array[
    'apportion.allocate_event(uuid,text)',
    'apportion.allocate_event_for(uuid,uuid,text)',
    'apportion.allocation_rows(uuid,text,interval,text,numeric,numeric,numeric,text[],numeric[],text[],uuid[],timestamp with time zone,timestamp with time zone)',
    'apportion.allocations_as_of(text,timestamp with time zone)',
    'apportion.allocations_for(uuid,text)',
    'apportion.compute_allocations(text,uuid[],timestamp with time zone,timestamp with time zone)',
    'apportion.currency_minor_units(text)',
    'apportion.current_tenant_allowed()',
    'apportion.current_tenant_id()',
    'apportion.daily_channel_revenue_as_of(timestamp with time zone)',
    'apportion.daily_channel_revenue_for(uuid)',
    'apportion.enter_tenant(uuid,text)',
    'apportion.exact_fraction(numeric,numeric)',
    'apportion.explain_allocation(uuid,text)',
    'apportion.explain_allocation_for(uuid,uuid,text)',
    'apportion.iso_currencies()',
    'apportion.major_units(numeric,text)',
    'apportion.markov_paths(uuid,interval,timestamp with time zone,timestamp with time zone)',
    'apportion.markov_solve(text[],text[],bigint[])',
    'apportion.markov_summary(text)',
    'apportion.markov_training_window(jsonb)',
    'apportion.markov_transition_counts(uuid,interval,timestamp with time zone,timestamp with time zone)',
    'apportion.model_lookback(jsonb)',
    'apportion.param_interval(jsonb,text,interval)',
    'apportion.param_share(jsonb,text,numeric)',
    'apportion.param_timestamp(jsonb,text)',
    'apportion.recompute_window(timestamp with time zone,timestamp with time zone,text)',
    'apportion.recompute_window_for(uuid,timestamp with time zone,timestamp with time zone,text)',
    'apportion.require_as_of(text,timestamp with time zone)',
    'apportion.require_model(text)',
    'apportion.require_tenant()',
    'apportion.require_trained(text)',
    'apportion.resolve_model_params(text,jsonb)',
    'apportion.schema_version()',
    'apportion.store_allocations(text,uuid[],timestamp with time zone,timestamp with time zone,text)',
    'apportion.store_refund_allocations(uuid[],text,text)',
    'apportion.train_model(text)',
    'apportion.train_model_for(uuid,text)'
  ]::text[],
  'apportion_allocator may execute exactly these functions: allocation for its tenant, nothing of the queue');

select is(apportion.schema_version(), 2, 'the schema reports contract version 2');

select * from finish();
rollback;
