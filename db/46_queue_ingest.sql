-- -> queued, by ingest: each new event is recorded as pending work once for
-- each of its tenant's active models, in the inserting transaction, and each
-- inserting statement enqueues one attribution.allocate_pending job per
-- (tenant, model) it added work for. That job allocates up to a batch of
-- pending events in one engine statement (db/44_queue_tasks.sql); under
-- load one job takes what several statements added and the rest find little
-- or nothing. (Skipping the enqueue while another job waits would lose work:
-- that job can be claimed, and read the pending rows, before this
-- transaction commits.)

create or replace function apportion_internal.enqueue_new_events()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  with pending as (
    insert into apportion.pending_allocations (tenant_id, model_version, event_id, correlation_id)
    select e.tenant_id, m.model_version, e.id, nullif(current_setting('app.correlation_id', true), '')::uuid
      from new_events e
      join apportion.tenant_models m on m.tenant_id = e.tenant_id
    returning tenant_id, model_version
  )
  insert into apportion.jobs (tenant_id, queue, task, payload)
  select p.tenant_id, 'attribution', 'allocate_pending', jsonb_build_object('model_version', p.model_version)
    from (select distinct tenant_id, model_version from pending) p;
  return null;
end
$$;

create or replace trigger attribution_events_enqueue_allocation
  after insert on apportion.attribution_events
  referencing new table as new_events
  for each statement execute function apportion_internal.enqueue_new_events();

-- Late touchpoints: a new touchpoint restates every event it counts for
-- (same customer, touch time <= event time <= touch time + the model's
-- lookback) under each of the tenant's active models that reads touches
-- (not fixed_split), when that event has been allocated for the model or
-- waits for it. Such events are recorded as pending work again and one
-- allocate_pending job per (tenant, model) is enqueued: restatement takes
-- the live path, set-based, and writes only rows that change. Events
-- older than the tenant's restatement horizon (apportion.tenants
-- .restatement_horizon, on the event's occurred_at, before now) are not
-- restated: each statement's skips are counted per model in
-- apportion.restatement_skips (recompute_window restates them on request).
-- A pending row a running job holds is updated, not skipped: the insert
-- waits for that job and then records the event again, so a job that read
-- the data before this touchpoint cannot be the event's last word.
create or replace function apportion_internal.restate_for_late_touches()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_correlation uuid := nullif(current_setting('app.correlation_id', true), '')::uuid;
begin
  with affected as (
    select distinct e.tenant_id, m.model_version, e.id as event_id,
           e.occurred_at >= now() - t.restatement_horizon as in_horizon
      from new_touches n
      join apportion.tenant_models m on m.tenant_id = n.tenant_id
      join apportion.attribution_models am on am.model_version = m.model_version and am.kind <> 'fixed_split'
      join apportion.tenants t on t.id = n.tenant_id
     cross join lateral (select apportion.model_lookback(am.params) as lookback) lb
      join apportion.attribution_events e
        on e.tenant_id = n.tenant_id and e.customer_id = n.customer_id
       and e.occurred_at >= n.occurred_at
       -- An index range a few days wider than the lookback (month and year
       -- lengths vary), then allocation's own rule, exactly.
       and e.occurred_at <= (n.occurred_at at time zone 'UTC' + lb.lookback + interval '4 days') at time zone 'UTC'
       and n.occurred_at >= (e.occurred_at at time zone 'UTC' - lb.lookback) at time zone 'UTC'
     where exists (select from apportion.attribution_allocations a
                    where a.tenant_id = e.tenant_id and a.event_id = e.id and a.model_version = m.model_version)
        or exists (select from apportion.pending_allocations p
                    where p.tenant_id = e.tenant_id and p.model_version = m.model_version and p.event_id = e.id)
  ),
  skipped as (
    insert into apportion.restatement_skips (tenant_id, model_version, event_count, correlation_id)
    select a.tenant_id, a.model_version, count(*), v_correlation
      from affected a where not a.in_horizon
     group by a.tenant_id, a.model_version
    returning 1
  ),
  pending as (
    insert into apportion.pending_allocations as p (tenant_id, model_version, event_id, correlation_id)
    select a.tenant_id, a.model_version, a.event_id, v_correlation from affected a where a.in_horizon
    on conflict (tenant_id, model_version, event_id) do update set enqueued_at = excluded.enqueued_at
    returning p.tenant_id, p.model_version
  )
  insert into apportion.jobs (tenant_id, queue, task, payload)
  select p.tenant_id, 'attribution', 'allocate_pending', jsonb_build_object('model_version', p.model_version)
    from (select distinct pending.tenant_id, pending.model_version from pending) p
   where (select count(*) from skipped) >= 0;
  return null;
end
$$;

create or replace trigger touchpoints_restate_allocations
  after insert on apportion.touchpoints
  referencing new table as new_touches
  for each statement execute function apportion_internal.restate_for_late_touches();

-- Restatements skipped per tenant and model: events older than the
-- tenant's horizon that a late touchpoint would have changed.
create or replace view apportion.restatements_skipped
with (security_invoker = true)
as
select s.tenant_id, s.model_version, sum(s.event_count)::bigint as skipped_events, max(s.recorded_at) as last_skipped_at
  from apportion.restatement_skips s
 group by s.tenant_id, s.model_version;

-- Tables -----------------------------------------------------------------------

alter table apportion.pending_allocations alter column tenant_id set default apportion.current_tenant_id();
select apportion_internal.define_tenant_policies('apportion.pending_allocations');

-- Ingest records pending work (through the trigger, as itself); the worker
-- locks what it takes (FOR UPDATE needs UPDATE) and deletes it.
grant select, insert, update (enqueued_at) on apportion.pending_allocations to apportion_ingest;

alter table apportion.restatement_skips alter column tenant_id set default apportion.current_tenant_id();
select apportion_internal.define_tenant_policies('apportion.restatement_skips');
grant select on apportion.restatement_skips, apportion.restatements_skipped
  to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
grant insert on apportion.restatement_skips to apportion_ingest;
grant select, update, delete on apportion.pending_allocations to apportion_worker;

comment on table apportion.pending_allocations is
  'The live path''s work list: events ingested or restated, once per active model version of their tenant, until an attribution.allocate_pending job allocates them; key (tenant_id, model_version, event_id). Written by the ingest triggers, as ingest.';
comment on column apportion.pending_allocations.tenant_id is 'The tenant (defaults to the current one).';
comment on column apportion.pending_allocations.model_version is 'The model version to allocate the event under.';
comment on column apportion.pending_allocations.event_id is 'The event waiting.';
comment on column apportion.pending_allocations.correlation_id is 'The correlation id of the transaction that ingested or restated it.';
comment on column apportion.pending_allocations.enqueued_at is 'When it was recorded, or recorded again.';

comment on table apportion.restatement_skips is
  'Late touchpoints that would have restated events older than the tenant''s restatement_horizon: per inserting statement and model version, how many events were skipped (recompute_window restates them on request).';
comment on column apportion.restatement_skips.tenant_id is 'The tenant (defaults to the current one).';
comment on column apportion.restatement_skips.model_version is 'The model version not restated.';
comment on column apportion.restatement_skips.event_count is 'The events skipped by one inserting statement.';

comment on view apportion.restatements_skipped is
  'The current tenant''s skipped restatements per model version (restatement_skips summed): events older than the horizon that late touchpoints would have changed.';
comment on column apportion.restatements_skipped.skipped_events is 'The events skipped, over all statements.';
comment on column apportion.restatements_skipped.last_skipped_at is 'When the last skip was recorded.';
