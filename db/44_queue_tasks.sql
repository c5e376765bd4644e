-- Task handlers: one SQL function per task, payload in, result out. They run
-- inside run_jobs as the worker role, under the job's tenant, each in its own
-- savepoint. The registry (apportion.queue_tasks) maps tasks to them.
-- A payload that does not fit its task raises 22023: the job fails at once.

-- Raise 22023 unless the payload has exactly the required keys (plus any
-- optional ones) and they are strings.
create or replace function apportion.payload_text(p_payload jsonb, p_key text, p_task text)
returns text
language plpgsql immutable
as $$
begin
  if not (p_payload ? p_key) then
    raise exception '%: payload.% is required', p_task, p_key using errcode = '22023';
  end if;
  if jsonb_typeof(p_payload -> p_key) <> 'string' then
    raise exception '%: payload.% must be a string (got %)', p_task, p_key, p_payload -> p_key using errcode = '22023';
  end if;
  return p_payload ->> p_key;
end
$$;
grant execute on function apportion.payload_text(jsonb, text, text) to apportion_worker;
comment on function apportion.payload_text(jsonb, text, text) is
  'A task handler''s required text field p_key of its payload. Errors: 22023, naming the task and field, when it is missing or not a string.';

create or replace function apportion.payload_keys_only(p_payload jsonb, p_allowed text[], p_task text)
returns void
language plpgsql immutable
as $$
declare
  v_extra text;
begin
  select string_agg(k, ', ') into v_extra from jsonb_object_keys(p_payload) k where not k = any (p_allowed);
  if v_extra is not null then
    raise exception '%: unexpected payload field(s) %; allowed: %', p_task, v_extra,
      coalesce(nullif(array_to_string(p_allowed, ', '), ''), 'none') using errcode = '22023';
  end if;
end
$$;
grant execute on function apportion.payload_keys_only(jsonb, text[], text) to apportion_worker;
comment on function apportion.payload_keys_only(jsonb, text[], text) is
  'A task handler''s check that its payload has no field outside p_allowed. Errors: 22023, naming the task and the extra fields.';

create or replace function apportion.payload_uuid(p_payload jsonb, p_key text, p_task text)
returns uuid
language plpgsql immutable
as $$
declare
  v text := apportion.payload_text(p_payload, p_key, p_task);
begin
  return v::uuid;
exception when invalid_text_representation then
  raise exception '%: payload.% must be a uuid (got %)', p_task, p_key, quote_literal(v) using errcode = '22023';
end
$$;
grant execute on function apportion.payload_uuid(jsonb, text, text) to apportion_worker;
comment on function apportion.payload_uuid(jsonb, text, text) is
  'A task handler''s required uuid field p_key of its payload. Errors: 22023, naming the task and field, when it is missing or not a uuid.';

create or replace function apportion.payload_timestamptz(p_payload jsonb, p_key text, p_task text)
returns timestamptz
language plpgsql stable
as $$
declare
  v text := apportion.payload_text(p_payload, p_key, p_task);
begin
  return v::timestamptz;
exception when others then
  raise exception '%: payload.% must be an ISO-8601 timestamp (got %)', p_task, p_key, quote_literal(v) using errcode = '22023';
end
$$;
grant execute on function apportion.payload_timestamptz(jsonb, text, text) to apportion_worker;
comment on function apportion.payload_timestamptz(jsonb, text, text) is
  'A task handler''s required timestamp field p_key of its payload. Errors: 22023, naming the task and field, when it is missing or not an ISO-8601 timestamp.';

-- attribution.allocate_event {"event_id", "model_version"}
create or replace function apportion.task_allocate_event(p_payload jsonb)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_task constant text := 'attribution.allocate_event';
  v_event_id uuid;
  v_model text;
  v_rows bigint;
begin
  perform apportion.payload_keys_only(p_payload, array['event_id', 'model_version'], v_task);
  v_event_id := apportion.payload_uuid(p_payload, 'event_id', v_task);
  v_model := apportion.payload_text(p_payload, 'model_version', v_task);
  select count(*) into v_rows from apportion.allocate_event(v_event_id, v_model);
  return jsonb_build_object('event_id', v_event_id, 'model_version', v_model, 'allocation_count', v_rows);
end
$$;
grant execute on function apportion.task_allocate_event(jsonb) to apportion_worker;
comment on function apportion.task_allocate_event(jsonb) is
  'Handler of attribution.allocate_event {"event_id", "model_version"}: allocate_event for the job''s tenant; the result counts the rows. Errors: 22023 for a payload that does not fit, and those of allocate_event.';

-- attribution.recompute_window {"window_start", "window_end", "model_version"}
create or replace function apportion.task_recompute_window(p_payload jsonb)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_task constant text := 'attribution.recompute_window';
  v_result record;
begin
  perform apportion.payload_keys_only(p_payload, array['window_start', 'window_end', 'model_version'], v_task);
  select * into v_result from apportion.recompute_window(
    apportion.payload_timestamptz(p_payload, 'window_start', v_task),
    apportion.payload_timestamptz(p_payload, 'window_end', v_task),
    apportion.payload_text(p_payload, 'model_version', v_task));
  return jsonb_build_object('event_count', v_result.event_count, 'allocation_count', v_result.allocation_count);
end
$$;
grant execute on function apportion.task_recompute_window(jsonb) to apportion_worker;
comment on function apportion.task_recompute_window(jsonb) is
  'Handler of attribution.recompute_window {"window_start", "window_end", "model_version"}: recompute_window for the job''s tenant; the result counts events and rows. Errors: 22023 for a payload that does not fit, and those of recompute_window.';

-- attribution.allocate_pending {"model_version"}: the live path. Takes up to
-- 1,000 of the tenant's pending events for the model (skipping those another
-- job holds) and allocates them in one engine statement. If that fails, each
-- event is tried on its own: the events that fail become allocate_event
-- jobs of their own, with their ingest's correlation id, so they fail (or
-- retry) and are recorded as any job is, while the rest commit. A full batch
-- enqueues the next one, so a backlog goes on in turns with other work.
-- A markov version the tenant has not trained leaves its events pending
-- until training wakes them.
-- Generic plans for a few events, as allocate_event.
create or replace function apportion.task_allocate_pending(p_payload jsonb)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_task constant text := 'attribution.allocate_pending';
  v_batch constant integer := 1000;
  v_tenant uuid := apportion.require_tenant();
  v_model text;
  v_ids uuid[];
  v_correlations uuid[];
  v_isolated uuid[] := '{}'::uuid[];
  v_result record;
  v_events bigint := 0;
  v_rows bigint := 0;
begin
  perform apportion.payload_keys_only(p_payload, array['model_version'], v_task);
  v_model := apportion.payload_text(p_payload, 'model_version', v_task);
  if (apportion.require_model(v_model)).kind = 'markov'
     and not exists (select from apportion.trained_models t where t.tenant_id = v_tenant and t.model_version = v_model) then
    -- Not trained yet for this tenant: the pending events wait, untouched,
    -- and training (attribution.train_model) wakes them.
    return jsonb_build_object('model_version', v_model, 'event_count', 0, 'allocation_count', 0,
                              'waiting_for', 'training');
  end if;

  select array_agg(p.event_id order by p.event_id), array_agg(p.correlation_id order by p.event_id)
    into v_ids, v_correlations
    from (select p.event_id, p.correlation_id from apportion.pending_allocations p
           where p.tenant_id = v_tenant and p.model_version = v_model
           order by p.event_id
           limit v_batch
             for update skip locked) p;
  if v_ids is null then
    return jsonb_build_object('model_version', v_model, 'event_count', 0, 'allocation_count', 0);
  end if;

  begin
    select * into v_result from apportion.store_allocations(v_model, v_ids, null, null, 'late_touchpoint');
    v_events := v_result.event_count;
    v_rows := v_result.allocation_count;
  exception when others then
    for v_i in 1 .. cardinality(v_ids) loop
      begin
        select * into v_result from apportion.store_allocations(v_model, array[v_ids[v_i]], null, null, 'late_touchpoint');
        v_events := v_events + v_result.event_count;
        v_rows := v_rows + v_result.allocation_count;
      exception when others then
        v_isolated := v_isolated || v_ids[v_i];
        insert into apportion.jobs (tenant_id, queue, task, payload, correlation_id)
        values (v_tenant, 'attribution', 'allocate_event',
                jsonb_build_object('event_id', v_ids[v_i], 'model_version', v_model), v_correlations[v_i]);
      end;
    end loop;
  end;

  delete from apportion.pending_allocations p
   where p.tenant_id = v_tenant and p.model_version = v_model and p.event_id = any (v_ids);
  if cardinality(v_ids) = v_batch then
    insert into apportion.jobs (tenant_id, queue, task, payload)
    values (v_tenant, 'attribution', 'allocate_pending', jsonb_build_object('model_version', v_model));
  end if;
  return jsonb_build_object('model_version', v_model, 'event_count', v_events, 'allocation_count', v_rows,
                            'isolated_event_ids', to_jsonb(v_isolated));
end
$$;
grant execute on function apportion.task_allocate_pending(jsonb) to apportion_worker;
comment on function apportion.task_allocate_pending(jsonb) is
  'Handler of attribution.allocate_pending {"model_version"}, the live path: allocates up to 1,000 of the tenant''s pending events of the version in one engine statement; an event that cannot be allocated becomes an allocate_event job of its own while the rest commit, and a full batch enqueues the next. A markov version the tenant has not trained leaves its events pending (result waiting_for: training). Errors: 22023 for a payload that does not fit or a version that is not registered.';

-- attribution.train_model {"model_version"}: train a markov version for the
-- tenant (train_model), which then wakes the live path's waiting work.
create or replace function apportion.task_train_model(p_payload jsonb)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_task constant text := 'attribution.train_model';
  v_result record;
begin
  perform apportion.payload_keys_only(p_payload, array['model_version'], v_task);
  select * into v_result from apportion.train_model(apportion.payload_text(p_payload, 'model_version', v_task));
  return jsonb_build_object('model_version', v_result.model_version, 'path_count', v_result.path_count,
                            'conversion_count', v_result.conversion_count, 'channel_count', v_result.channel_count,
                            'p_conversion', v_result.p_conversion_num::text || '/' || v_result.p_conversion_den::text);
end
$$;
grant execute on function apportion.task_train_model(jsonb) to apportion_worker;
comment on function apportion.task_train_model(jsonb) is
  'Handler of attribution.train_model {"model_version"}: train_model for the job''s tenant, which then wakes the live path''s waiting events; the result has path, conversion and channel counts and p_conversion as num/den. Errors: 22023 for a payload that does not fit, and those of train_model.';

-- housekeeping.ping {}: the readiness round trip.
create or replace function apportion.task_ping(p_payload jsonb)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  perform apportion.payload_keys_only(p_payload, array[]::text[], 'housekeeping.ping');
  return jsonb_build_object('status', 'ok', 'database_user', session_user, 'role', current_user,
                            'at', clock_timestamp());
end
$$;
grant execute on function apportion.task_ping(jsonb) to apportion_worker;
comment on function apportion.task_ping(jsonb) is
  'Handler of housekeeping.ping {}, the readiness round trip: result status ok, the database user, the role and the time. Errors: 22023 for a payload with fields.';

-- housekeeping.noop {}: nothing; measures the queue itself.
create or replace function apportion.task_noop(p_payload jsonb)
returns jsonb
language sql immutable
as $$
  select null::jsonb
$$;
grant execute on function apportion.task_noop(jsonb) to apportion_worker;
comment on function apportion.task_noop(jsonb) is
  'Handler of housekeeping.noop: does nothing, to measure the queue itself.';

-- housekeeping.prune {"retention": "7 days"}
create or replace function apportion.task_prune(p_payload jsonb)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_task constant text := 'housekeeping.prune';
  v_retention interval := interval '7 days';
  v_result record;
begin
  perform apportion.payload_keys_only(p_payload, array['retention'], v_task);
  if p_payload ? 'retention' then
    v_retention := apportion.param_interval(p_payload, 'retention', interval '7 days');
  end if;
  select * into v_result from apportion.prune_jobs(v_retention);
  return jsonb_build_object('jobs_deleted', v_result.jobs_deleted, 'failures_deleted', v_result.failures_deleted,
                            'retention', v_retention::text);
end
$$;
grant execute on function apportion.task_prune(jsonb) to apportion_worker;
comment on function apportion.task_prune(jsonb) is
  'Handler of housekeeping.prune {"retention"} (optional, default 7 days), a system task: prune_jobs; the result counts what it deleted. Errors: 22023 for a payload that does not fit or an invalid retention.';

-- maintenance.reclaim_leases {}
create or replace function apportion.task_reclaim_leases(p_payload jsonb)
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  perform apportion.payload_keys_only(p_payload, array[]::text[], 'maintenance.reclaim_leases');
  return jsonb_build_object('reclaimed', apportion.reclaim_expired_leases(10000));
end
$$;
grant execute on function apportion.task_reclaim_leases(jsonb) to apportion_worker;
comment on function apportion.task_reclaim_leases(jsonb) is
  'Handler of maintenance.reclaim_leases {}, a system task: reclaim_expired_leases for up to 10,000 jobs; the result counts them. Errors: 22023 for a payload with fields.';

-- apportion.run_task(queue, task, payload): the dispatcher run_jobs calls,
-- generated from the registry (apportion.queue_tasks.handler), the one place
-- that maps tasks to handlers, as static calls: no dynamic SQL per job. It
-- runs with its caller's rights and search_path (run_jobs pins it), names
-- everything schema-qualified, and so carries no SET clause, whose cost a
-- no-op job would feel. A trigger regenerates it whenever the registry
-- changes.
create or replace function apportion_internal.generate_task_dispatcher()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $generate$
declare
  v_cases text;
begin
  -- A system task runs only without a tenant, a tenant task only with one
  -- (a job inserted with the wrong tenant fails with 42501).
  select string_agg(format(E'when %L then\n      %s%s',
                           t.queue || '.' || t.task,
                           case t.tenant_scope
                             when 'system' then 'if apportion.current_tenant_id() is not null then raise exception ''task %.% is a system task: its jobs carry no tenant'', p_queue, p_task using errcode = ''42501''; end if;' || E'\n      '
                             when 'tenant' then 'if apportion.current_tenant_id() is null then raise exception ''task %.% needs a tenant: its job carries none'', p_queue, p_task using errcode = ''42501''; end if;' || E'\n      '
                             else '' end,
                           format('return %I.%I(p_payload);', n.nspname, p.proname)),
                    E'\n    ' order by t.queue, t.task)
    into v_cases
    from apportion.queue_tasks t
    join pg_proc p on p.oid = t.handler::regproc
    join pg_namespace n on n.oid = p.pronamespace
   where t.handler is not null;
  execute format($f$
create or replace function apportion.run_task(p_queue text, p_task text, p_payload jsonb)
returns jsonb
language plpgsql
as $body$
begin
  case p_queue || '.' || p_task
    %s
    else
      raise exception 'task %%.%% has no handler yet; its jobs wait until one exists', p_queue, p_task using errcode = 'AP001';
  end case;
end
$body$;
grant execute on function apportion.run_task(text, text, jsonb) to apportion_worker$f$, coalesce(v_cases, 'when null then return null;'));
end
$generate$;

-- The registry stays the one place: any change to it regenerates run_task
-- in the same transaction (as the owner, who alone may write the registry),
-- and parks or unparks queued jobs whose task lost or got a handler.
create or replace function apportion_internal.queue_tasks_changed()
returns trigger
language plpgsql
as $$
begin
  perform apportion_internal.generate_task_dispatcher();
  update apportion.jobs_live j
     set parked = (t.handler is null)
    from apportion.queue_tasks t
   where t.queue = j.queue and t.task = j.task and j.state = 'queued' and j.parked is distinct from (t.handler is null);
  return null;
end
$$;

create or replace trigger queue_tasks_regenerate_dispatcher
  after insert or update or delete on apportion.queue_tasks
  for each statement execute function apportion_internal.queue_tasks_changed();

select apportion_internal.generate_task_dispatcher();
-- (The dispatcher is created by the generator above, so its comment is here;
-- regenerating it keeps the comment.)
comment on function apportion.run_task(text, text, jsonb) is
  'The dispatcher run_jobs calls for each job: the handler the registry (queue_tasks) names for the task, called with the payload, returning its result. Generated from the registry whenever it changes. Errors: 42501 for a tenant task run without a tenant or a system task run with one; AP001 for a task without a handler.';
