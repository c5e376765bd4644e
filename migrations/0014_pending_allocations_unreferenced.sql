-- Up Migration
-- The live path's work list loses its foreign keys: they cost every ingested
-- event two key checks (about a third of what recording the work costs) and
-- guard nothing. A pending row is written by the ingest trigger for an event
-- inserted by the same statement and a model active for its tenant; an
-- allocate_pending job deletes it whatever it finds, and an event or model
-- that no longer exists by then allocates nothing.
set local role apportion_owner;

alter table apportion.pending_allocations
  drop constraint pending_allocations_model_version_fkey,
  drop constraint pending_allocations_tenant_id_event_id_fkey;

reset role;
