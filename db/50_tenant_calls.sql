-- The tenant-facing API with the tenant as an argument: each *_for function
-- sets app.tenant_id to p_tenant for its own duration (enter_tenant:
-- transaction-local, the caller's setting put back when it returns; on an
-- error the transaction's own rollback restores it), then does what the
-- function of the same name without _for does, as the caller, under row
-- level security. They are what a router (PL/Proxy, docs/scale-out.md)
-- calls on a tenant's shard, since it routes on an argument; anyone may use
-- them instead of setting app.tenant_id. They trust p_tenant no more than
-- app.tenant_id is trusted: a login bound to tenants (bind_login) gets 42501
-- for any other. Rows for ingest are a json array of objects named as the
-- table's columns. p_tenant null: 22023.

-- The *_for functions' way in: p_tenant is required (22023 naming the
-- function), and set for the rest of the call; returns the caller's setting,
-- which the function puts back when it is done.
create or replace function apportion.enter_tenant(p_tenant uuid, p_function text)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := coalesce(current_setting('app.tenant_id', true), '');
begin
  if p_tenant is null then
    raise exception '%: p_tenant is required', p_function using errcode = '22023';
  end if;
  perform set_config('app.tenant_id', p_tenant::text, true);
  return v_previous;
end
$$;
grant execute on function apportion.enter_tenant(uuid, text) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
comment on function apportion.enter_tenant(uuid, text) is
  'Sets app.tenant_id to p_tenant for the rest of the transaction and returns the setting it replaced (empty when none), for the *_for functions to put back. Errors: 22023 when p_tenant is null, naming p_function.';

create or replace function apportion.ingest_touchpoints_for(p_tenant uuid, p_rows jsonb)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'ingest_touchpoints_for');
  v_count bigint;
begin
  if jsonb_typeof(p_rows) is distinct from 'array' then
    raise exception 'ingest_touchpoints_for: p_rows must be a json array of touchpoints' using errcode = '22023';
  end if;
  insert into apportion.touchpoints (tenant_id, id, customer_id, channel, occurred_at, campaign, external_id, properties)
  select p_tenant, coalesce(r.id, gen_random_uuid()), r.customer_id, r.channel, r.occurred_at, r.campaign, r.external_id,
         coalesce(r.properties, '{}')
    from jsonb_to_recordset(p_rows) as r (id uuid, customer_id text, channel text, occurred_at timestamptz, campaign text,
                                          external_id text, properties jsonb);
  get diagnostics v_count = row_count;
  perform set_config('app.tenant_id', v_previous, true);
  return v_count;
end
$$;
grant execute on function apportion.ingest_touchpoints_for(uuid, jsonb) to apportion_ingest;
comment on function apportion.ingest_touchpoints_for(uuid, jsonb) is
  'Inserts touchpoints for p_tenant from a json array of objects (id, customer_id, channel, occurred_at, campaign, external_id, properties; id and properties optional) in one statement, as an INSERT into apportion.touchpoints under that tenant would, late-touchpoint restatement included. Returns the number inserted. Errors: 22023 when p_tenant is null or p_rows is not an array; the table''s own (23503 unknown channel, 23505 repeated external_id, 23514 out-of-range time); 42501 for a bound login and another tenant.';

create or replace function apportion.ingest_events_for(p_tenant uuid, p_rows jsonb)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'ingest_events_for');
  v_count bigint;
begin
  if jsonb_typeof(p_rows) is distinct from 'array' then
    raise exception 'ingest_events_for: p_rows must be a json array of events' using errcode = '22023';
  end if;
  insert into apportion.attribution_events (tenant_id, id, customer_id, occurred_at, revenue_cents, currency,
                                            external_event_id, event_type, raw_payload)
  select p_tenant, coalesce(r.id, gen_random_uuid()), r.customer_id, r.occurred_at, r.revenue_cents, r.currency,
         r.external_event_id, coalesce(r.event_type, 'purchase'), coalesce(r.raw_payload, '{}')
    from jsonb_to_recordset(p_rows) as r (id uuid, customer_id text, occurred_at timestamptz, revenue_cents bigint, currency text,
                                          external_event_id text, event_type text, raw_payload jsonb);
  get diagnostics v_count = row_count;
  perform set_config('app.tenant_id', v_previous, true);
  return v_count;
end
$$;
grant execute on function apportion.ingest_events_for(uuid, jsonb) to apportion_ingest;
comment on function apportion.ingest_events_for(uuid, jsonb) is
  'Inserts conversion events for p_tenant from a json array of objects (id, customer_id, occurred_at, revenue_cents, currency, external_event_id, event_type, raw_payload; id, event_type and raw_payload optional) in one statement, as an INSERT into apportion.attribution_events under that tenant would: the live path allocates them for the tenant''s active models. Returns the number inserted. Errors: 22023 when p_tenant is null or p_rows is not an array; the table''s own (23505 repeated external_event_id, 23514 negative revenue, unknown currency or out-of-range time); 42501 for a bound login and another tenant.';

create or replace function apportion.ingest_refunds_for(p_tenant uuid, p_rows jsonb)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'ingest_refunds_for');
  v_count bigint;
begin
  if jsonb_typeof(p_rows) is distinct from 'array' then
    raise exception 'ingest_refunds_for: p_rows must be a json array of refunds' using errcode = '22023';
  end if;
  insert into apportion.refunds (tenant_id, id, event_id, amount_cents, occurred_at, external_refund_id, reason)
  select p_tenant, coalesce(r.id, gen_random_uuid()), r.event_id, r.amount_cents, r.occurred_at, r.external_refund_id, r.reason
    from jsonb_to_recordset(p_rows) as r (id uuid, event_id uuid, amount_cents bigint, occurred_at timestamptz,
                                          external_refund_id text, reason text);
  get diagnostics v_count = row_count;
  perform set_config('app.tenant_id', v_previous, true);
  return v_count;
end
$$;
grant execute on function apportion.ingest_refunds_for(uuid, jsonb) to apportion_ingest;
comment on function apportion.ingest_refunds_for(uuid, jsonb) is
  'Inserts refunds for p_tenant from a json array of objects (id, event_id, amount_cents, occurred_at, external_refund_id, reason; id and reason optional) in one statement, as an INSERT into apportion.refunds under that tenant would (split over the event''s allocations at once). Returns the number inserted. Errors: 22023 when p_tenant is null or p_rows is not an array; the table''s own (23503 unknown event, 23505 repeated external_refund_id, 23514 refunds past the revenue, refused whole); 42501 for a bound login and another tenant.';

create or replace function apportion.activate_model_for(p_tenant uuid, p_model_version text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'activate_model_for');
begin
  perform apportion.activate_model(p_model_version);
  perform set_config('app.tenant_id', v_previous, true);
end
$$;
grant execute on function apportion.activate_model_for(uuid, text) to apportion_ingest;
comment on function apportion.activate_model_for(uuid, text) is
  'activate_model for p_tenant. Errors: 22023 when p_tenant is null or the version is not registered; 42501 for a bound login and another tenant.';

create or replace function apportion.enqueue_for(
  p_tenant uuid,
  p_queue text,
  p_task text,
  p_payload jsonb default '{}',
  p_correlation_id uuid default null,
  p_run_at timestamptz default null,
  p_priority integer default 0,
  p_job_key text default null
)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'enqueue_for');
  v_id bigint;
begin
  v_id := apportion.enqueue(p_queue, p_task, p_payload, p_correlation_id, p_run_at, p_priority, p_job_key);
  perform set_config('app.tenant_id', v_previous, true);
  return v_id;
end
$$;
grant execute on function apportion.enqueue_for(uuid, text, text, jsonb, uuid, timestamptz, integer, text) to apportion_ingest;
comment on function apportion.enqueue_for(uuid, text, text, jsonb, uuid, timestamptz, integer, text) is
  'enqueue for p_tenant: returns the job id. Errors: 22023 when p_tenant is null and every error of enqueue (22023 bad payload, run_at or priority; AP003 the tenant''s queued-job cap); 42501 for a bound login and another tenant.';

create or replace function apportion.allocate_event_for(p_tenant uuid, p_event_id uuid, p_model_version text)
returns setof apportion.attribution_allocations
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'allocate_event_for');
begin
  return query select * from apportion.allocate_event(p_event_id, p_model_version);
  perform set_config('app.tenant_id', v_previous, true);
end
$$;
grant execute on function apportion.allocate_event_for(uuid, uuid, text) to apportion_worker, apportion_allocator;
comment on function apportion.allocate_event_for(uuid, uuid, text) is
  'allocate_event for p_tenant: allocates one of its events under a model version and returns the rows. Errors: 22023 when p_tenant is null, the version is not registered or the event is not the tenant''s; 55000 for an untrained markov version; 42501 for a bound login and another tenant.';

create or replace function apportion.recompute_window_for(
  p_tenant uuid, p_window_start timestamptz, p_window_end timestamptz, p_model_version text)
returns table (event_count bigint, allocation_count bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'recompute_window_for');
begin
  return query select * from apportion.recompute_window(p_window_start, p_window_end, p_model_version);
  perform set_config('app.tenant_id', v_previous, true);
end
$$;
grant execute on function apportion.recompute_window_for(uuid, timestamptz, timestamptz, text) to apportion_worker, apportion_allocator;
comment on function apportion.recompute_window_for(uuid, timestamptz, timestamptz, text) is
  'recompute_window for p_tenant: allocates every event of the tenant in [start, end) under a model version. Errors: 22023 when p_tenant is null or on recompute_window''s own checks; 55000 for an untrained markov version; 42501 for a bound login and another tenant.';

create or replace function apportion.train_model_for(p_tenant uuid, p_model_version text)
returns table (
  model_version text,
  path_count bigint,
  conversion_count bigint,
  channel_count integer,
  p_conversion_num numeric,
  p_conversion_den numeric
)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'train_model_for');
begin
  return query select * from apportion.train_model(p_model_version);
  perform set_config('app.tenant_id', v_previous, true);
end
$$;
grant execute on function apportion.train_model_for(uuid, text) to apportion_worker, apportion_allocator;
comment on function apportion.train_model_for(uuid, text) is
  'train_model for p_tenant. Errors: 22023 when p_tenant is null, the version is not markov or has no paths; 23505 when the tenant trained it already; 42501 for a bound login and another tenant.';

create or replace function apportion.explain_allocation_for(p_tenant uuid, p_event_id uuid, p_model_version text)
returns table (
  touch_id uuid,
  channel text,
  occurred_at timestamptz,
  touch_position integer,
  counted boolean,
  reason text,
  weight_num numeric,
  weight_den numeric,
  weight numeric,
  removal_effect_num numeric,
  removal_effect_den numeric,
  channel_weight_num numeric,
  channel_weight_den numeric,
  channel_weight numeric,
  share_num numeric,
  share_den numeric,
  floor_cents bigint,
  remainder_num numeric,
  remainder_den numeric,
  tie_break_md5 text,
  leftover_cent boolean,
  allocated_revenue_cents bigint,
  touchpoint_count integer
)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'explain_allocation_for');
begin
  return query select * from apportion.explain_allocation(p_event_id, p_model_version);
  perform set_config('app.tenant_id', v_previous, true);
end
$$;
grant execute on function apportion.explain_allocation_for(uuid, uuid, text) to apportion_worker, apportion_allocator;
comment on function apportion.explain_allocation_for(uuid, uuid, text) is
  'explain_allocation for p_tenant: one of its events under a model version, step by step. Errors: 22023 when p_tenant is null, the version is not registered or the event is not the tenant''s; 42501 for a bound login and another tenant.';

create or replace function apportion.allocations_for(p_tenant uuid, p_model_version text)
returns setof apportion.attribution_allocations
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'allocations_for');
begin
  perform apportion.require_model(p_model_version);
  return query select a.* from apportion.attribution_allocations a
                where a.tenant_id = p_tenant and a.model_version = p_model_version order by a.event_id, a.channel;
  perform set_config('app.tenant_id', v_previous, true);
end
$$;
grant execute on function apportion.allocations_for(uuid, text) to apportion_worker, apportion_reader, apportion_allocator;
comment on function apportion.allocations_for(uuid, text) is
  'p_tenant''s stored allocation rows under a model version, by event and channel. Errors: 22023 when p_tenant is null or the version is not registered; 42501 for a bound login and another tenant.';

create or replace function apportion.daily_channel_revenue_for(p_tenant uuid)
returns setof apportion.daily_channel_revenue
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'daily_channel_revenue_for');
begin
  return query select d.* from apportion.daily_channel_revenue d where d.tenant_id = p_tenant
                order by d.day, d.model_version, d.currency, d.channel;
  perform set_config('app.tenant_id', v_previous, true);
end
$$;
grant execute on function apportion.daily_channel_revenue_for(uuid) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
comment on function apportion.daily_channel_revenue_for(uuid) is
  'p_tenant''s rows of daily_channel_revenue, by day, model version, currency and channel. Errors: 22023 when p_tenant is null; 42501 for a bound login and another tenant.';
