-- apportion's router: one database in front of N apportion shards, with
-- PL/Proxy (docs/scale-out.md). Applied by `apportion migrate` with a shards
-- configuration, as the router's administrator, in one transaction, after
-- every shard is migrated; every statement here can run again. The foreign
-- servers (`apportion`: the router login; `apportion_admin`: the owner) and
-- their user mappings are written by migrate from the configuration.
--
-- The API is the shards' tenant-argument API (db/50_tenant_calls.sql) under
-- the same names: each call runs on its tenant's shard only, where it sets
-- the tenant for its own duration and row level security holds. Owner
-- operations run on the chosen shard (create_tenant) or on all of them
-- (register_model); the operators' views merge every shard's.

create extension if not exists plproxy;

do $$
declare
  r text;
begin
  foreach r in array array['apportion_owner', 'apportion_ingest', 'apportion_worker', 'apportion_reader', 'apportion_allocator'] loop
    if not exists (select from pg_roles where rolname = r) then
      execute format('create role %I nologin nosuperuser nocreatedb nocreaterole nobypassrls', r);
    end if;
  end loop;
end
$$;

create schema if not exists apportion_router authorization apportion_owner;
create schema if not exists apportion authorization apportion_owner;
revoke all on schema apportion_router from public;
revoke all on schema apportion from public;
grant usage on schema apportion to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
grant usage on schema apportion_router to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;

-- Where each tenant lives. moving_to is set while `apportion tenant move`
-- copies it: calls for it are refused (55006) until the move switches it.
create table if not exists apportion_router.placement (
  tenant_id uuid primary key,
  shard integer not null constraint placement_shard_non_negative check (shard >= 0),
  moving_to integer constraint placement_moving_to_non_negative check (moving_to >= 0),
  placed_at timestamptz not null default now()
);
alter table apportion_router.placement owner to apportion_owner;

-- The shards, in configuration order (shard n is partition n).
create table if not exists apportion_router.shards (
  shard integer primary key constraint shards_shard_non_negative check (shard >= 0),
  host text not null,
  port integer not null,
  dbname text not null
);
alter table apportion_router.shards owner to apportion_owner;

-- A move in progress, by step, so an interrupted one is finished or undone
-- by running it again (orchestrator/shards.ts).
create table if not exists apportion_router.moves (
  tenant_id uuid primary key,
  from_shard integer not null,
  to_shard integer not null,
  step text not null,
  started_at timestamptz not null default now()
);
alter table apportion_router.moves owner to apportion_owner;
-- What the copy was verified with: the source must still match it before its copy is deleted.
alter table apportion_router.moves add column if not exists verified jsonb;
alter table apportion_router.moves drop constraint if exists moves_step_known,
  add constraint moves_step_known check (step in ('copying', 'switching', 'switched'));

-- The shard of a tenant, for RUN ON. It reads the placement FOR SHARE, held
-- to the end of the caller's transaction (which includes the remote call):
-- a move's update of the row waits for calls in flight, and a call that
-- comes after it sees the move (55006). A caller in REPEATABLE READ whose
-- snapshot predates the move gets 40001 instead of the old shard.
create or replace function apportion_router.shard_of(p_tenant uuid)
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v apportion_router.placement;
begin
  if p_tenant is null then
    raise exception 'the tenant is required' using errcode = '22023';
  end if;
  select * into v from apportion_router.placement where tenant_id = p_tenant for share;
  if not found then
    raise exception 'tenant % is not placed on any shard', p_tenant using errcode = '22023',
      hint = 'create tenants through the router (apportion.create_tenant)';
  end if;
  if v.moving_to is not null then
    raise exception 'tenant % is being moved from shard % to shard %; retry when the move is done', p_tenant, v.shard, v.moving_to
      using errcode = '55006';
  end if;
  return v.shard;
end
$$;
alter function apportion_router.shard_of(uuid) owner to apportion_owner;
revoke all on function apportion_router.shard_of(uuid) from public;
grant execute on function apportion_router.shard_of(uuid) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;

-- Where a new tenant goes: the shard with the fewest tenants, the lowest
-- number among equals.
create or replace function apportion_router.place_new_tenant()
returns integer
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
  select s.shard
    from apportion_router.shards s
    left join apportion_router.placement p on p.shard = s.shard
   group by s.shard
   order by count(p.tenant_id), s.shard
   limit 1
$$;
alter function apportion_router.place_new_tenant() owner to apportion_owner;
revoke all on function apportion_router.place_new_tenant() from public;

-- Owner operations, through the `apportion_admin` server.
create or replace function apportion_router.create_tenant_on(p_shard integer, p_name text, p_id uuid)
returns uuid
language plproxy
security definer
as $$
  cluster 'apportion_admin';
  run on p_shard;
  select apportion.create_tenant(p_name, p_id);
$$;
alter function apportion_router.create_tenant_on(integer, text, uuid) owner to apportion_owner;
revoke all on function apportion_router.create_tenant_on(integer, text, uuid) from public;

create or replace function apportion.create_tenant(p_name text, p_id uuid default gen_random_uuid())
returns uuid
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_shard integer;
begin
  if p_id is null then
    raise exception 'create_tenant: the tenant id must not be null' using errcode = '22023';
  end if;
  if exists (select from apportion_router.placement where tenant_id = p_id) then
    raise exception 'tenant % is already placed', p_id using errcode = '23505';
  end if;
  -- One placement at a time, so two new tenants do not both take the emptiest shard.
  lock table apportion_router.placement in share row exclusive mode;
  v_shard := apportion_router.place_new_tenant();
  if v_shard is null then
    raise exception 'the router has no shards' using errcode = '55000';
  end if;
  insert into apportion_router.placement (tenant_id, shard) values (p_id, v_shard);
  perform apportion_router.create_tenant_on(v_shard, p_name, p_id);
  return p_id;
end
$$;
alter function apportion.create_tenant(text, uuid) owner to apportion_owner;
revoke all on function apportion.create_tenant(text, uuid) from public;

create or replace function apportion.register_model(p_model_version text, p_kind text, p_params jsonb default '{}')
returns setof void
language plproxy
security definer
as $$
  cluster 'apportion_admin';
  run on all;
$$;
alter function apportion.register_model(text, text, jsonb) owner to apportion_owner;
revoke all on function apportion.register_model(text, text, jsonb) from public;

-- The tenant-facing API: each on its tenant's shard.
create or replace function apportion.ingest_touchpoints_for(p_tenant uuid, p_rows jsonb)
returns bigint language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;
create or replace function apportion.ingest_events_for(p_tenant uuid, p_rows jsonb)
returns bigint language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;
create or replace function apportion.ingest_refunds_for(p_tenant uuid, p_rows jsonb)
returns bigint language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;
create or replace function apportion.activate_model_for(p_tenant uuid, p_model_version text)
returns void language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;
create or replace function apportion.enqueue_for(
  p_tenant uuid, p_queue text, p_task text, p_payload jsonb default '{}', p_correlation_id uuid default null,
  p_run_at timestamptz default null, p_priority integer default 0, p_job_key text default null)
returns bigint language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;

create or replace function apportion.allocate_event_for(p_tenant uuid, p_event_id uuid, p_model_version text)
returns table (
  tenant_id uuid, event_id uuid, model_version text, channel text, allocated_revenue_cents bigint,
  allocation_ratio numeric(7, 6), touchpoint_count integer, currency character(3), event_occurred_at timestamptz,
  correlation_id uuid, computed_at timestamptz, change_reason text)
language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;
create or replace function apportion.allocations_for(p_tenant uuid, p_model_version text)
returns table (
  tenant_id uuid, event_id uuid, model_version text, channel text, allocated_revenue_cents bigint,
  allocation_ratio numeric(7, 6), touchpoint_count integer, currency character(3), event_occurred_at timestamptz,
  correlation_id uuid, computed_at timestamptz, change_reason text)
language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;
create or replace function apportion.recompute_window_for(
  p_tenant uuid, p_window_start timestamptz, p_window_end timestamptz, p_model_version text)
returns table (event_count bigint, allocation_count bigint)
language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;
create or replace function apportion.train_model_for(p_tenant uuid, p_model_version text)
returns table (model_version text, path_count bigint, conversion_count bigint, channel_count integer,
               p_conversion_num numeric, p_conversion_den numeric)
language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;
create or replace function apportion.explain_allocation_for(p_tenant uuid, p_event_id uuid, p_model_version text)
returns table (
  touch_id uuid, channel text, occurred_at timestamptz, touch_position integer, counted boolean, reason text,
  weight_num numeric, weight_den numeric, weight numeric, removal_effect_num numeric, removal_effect_den numeric,
  channel_weight_num numeric, channel_weight_den numeric, channel_weight numeric, share_num numeric, share_den numeric,
  floor_cents bigint, remainder_num numeric, remainder_den numeric, tie_break_md5 text, leftover_cent boolean,
  allocated_revenue_cents bigint, touchpoint_count integer)
language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;
create or replace function apportion.daily_channel_revenue_for(p_tenant uuid)
returns table (tenant_id uuid, day date, model_version text, currency character(3), channel text,
               revenue_cents numeric, event_count bigint, revenue_major numeric)
language plproxy as $$ cluster 'apportion'; run on apportion_router.shard_of(p_tenant); $$;

-- Operators' views, every shard's merged (through the owner's server: the
-- shards grant them to their workers).
create or replace function apportion_router.queue_overview_all()
returns table (queue text, queued bigint, queued_runnable bigint, running bigint, oldest_runnable_seconds numeric, open_failures bigint)
language plproxy security definer as $$ cluster 'apportion_admin'; run on all; target apportion.queue_overview; $$;
alter function apportion_router.queue_overview_all() owner to apportion_owner;
revoke all on function apportion_router.queue_overview_all() from public;

create or replace function apportion.queue_overview()
returns table (queue text, queued bigint, queued_runnable bigint, running bigint, oldest_runnable_seconds numeric, open_failures bigint)
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
  select q.queue, sum(q.queued)::bigint, sum(q.queued_runnable)::bigint, sum(q.running)::bigint,
         max(q.oldest_runnable_seconds), sum(q.open_failures)::bigint
    from apportion_router.queue_overview_all() q
   group by q.queue
   order by q.queue
$$;
alter function apportion.queue_overview() owner to apportion_owner;

create or replace function apportion_router.open_failures_all(p_correlation_id uuid, p_limit integer)
returns table (job_id bigint, tenant_id uuid, queue text, task text, error_code text, error_message text,
               attempts integer, correlation_id uuid, failed_at timestamptz)
language plproxy security definer as $$ cluster 'apportion_admin'; run on all; target apportion.open_failures; $$;
alter function apportion_router.open_failures_all(uuid, integer) owner to apportion_owner;
revoke all on function apportion_router.open_failures_all(uuid, integer) from public;

create or replace function apportion.open_failures(p_correlation_id uuid default null, p_limit integer default 50)
returns table (job_id bigint, tenant_id uuid, queue text, task text, error_code text, error_message text,
               attempts integer, correlation_id uuid, failed_at timestamptz)
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
  select f.* from apportion_router.open_failures_all(p_correlation_id, p_limit) f
   order by f.failed_at desc, f.job_id desc
   limit least(greatest(coalesce(p_limit, 50), 1), 1000)
$$;
alter function apportion.open_failures(uuid, integer) owner to apportion_owner;

-- Who may call what, as on a shard.
do $$
declare
  f record;
begin
  for f in select p.oid::regprocedure as sig, p.proname from pg_proc p where p.pronamespace = 'apportion'::regnamespace loop
    execute format('alter function %s owner to apportion_owner', f.sig);
    execute format('revoke all on function %s from public', f.sig);
  end loop;
end
$$;
grant execute on function apportion.ingest_touchpoints_for(uuid, jsonb), apportion.ingest_events_for(uuid, jsonb),
  apportion.ingest_refunds_for(uuid, jsonb), apportion.activate_model_for(uuid, text),
  apportion.enqueue_for(uuid, text, text, jsonb, uuid, timestamptz, integer, text) to apportion_ingest;
grant execute on function apportion.allocate_event_for(uuid, uuid, text), apportion.recompute_window_for(uuid, timestamptz, timestamptz, text),
  apportion.train_model_for(uuid, text), apportion.explain_allocation_for(uuid, uuid, text) to apportion_worker, apportion_allocator;
grant execute on function apportion.allocations_for(uuid, text) to apportion_worker, apportion_reader, apportion_allocator;
grant execute on function apportion.daily_channel_revenue_for(uuid) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
grant execute on function apportion.queue_overview(), apportion.open_failures(uuid, integer) to apportion_worker;
