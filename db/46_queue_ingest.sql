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

-- Tables -----------------------------------------------------------------------

alter table apportion.pending_allocations alter column tenant_id set default apportion.current_tenant_id();
select apportion_internal.define_tenant_policies('apportion.pending_allocations');

-- Ingest records pending work (through the trigger, as itself); the worker
-- locks what it takes (FOR UPDATE needs UPDATE) and deletes it.
grant select, insert on apportion.pending_allocations to apportion_ingest;
grant select, update, delete on apportion.pending_allocations to apportion_worker;
