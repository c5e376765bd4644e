-- -> queued, by ingest: each new event is enqueued once for each of its
-- tenant's active models, in the inserting transaction, with the
-- transaction's correlation id (the jobs column default).
create or replace function apportion_internal.enqueue_new_events()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  insert into apportion.jobs (tenant_id, queue, task, payload)
  select e.tenant_id, 'attribution', 'allocate_event', jsonb_build_object('event_id', e.id, 'model_version', m.model_version)
    from new_events e
    join apportion.tenant_models m on m.tenant_id = e.tenant_id;
  return null;
end
$$;

create or replace trigger attribution_events_enqueue_allocation
  after insert on apportion.attribution_events
  referencing new table as new_events
  for each statement execute function apportion_internal.enqueue_new_events();
