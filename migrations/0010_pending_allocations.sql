-- Up Migration
-- The live path's work list: every new event, once per active model of its
-- tenant, waits here until an attribution.allocate_pending job allocates a
-- batch of them in one engine statement.
set local role apportion_owner;

create table apportion.pending_allocations (
  tenant_id uuid not null,
  model_version text not null references apportion.attribution_models (model_version),
  event_id uuid not null,
  -- The ingesting transaction's, for the failure record of an event that
  -- cannot be allocated.
  correlation_id uuid,
  enqueued_at timestamptz not null default now(),
  primary key (tenant_id, model_version, event_id),
  foreign key (tenant_id, event_id) references apportion.attribution_events (tenant_id, id) on delete cascade
)
-- Every row is inserted and deleted within seconds: vacuum it as often as
-- the live jobs, or each batch walks past the dead entries of the last.
with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_cost_delay = 0,
      autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000);
alter table apportion.pending_allocations enable row level security;
alter table apportion.pending_allocations force row level security;

-- The registry row names its handler, which must exist for the dispatcher
-- to be generated; db/ gives it its body.
create function apportion.task_allocate_pending(p_payload jsonb) returns jsonb language sql as 'select null::jsonb';
insert into apportion.queue_tasks (queue, task, handler, tenant_scope, max_attempts, description) values
  ('attribution', 'allocate_pending', 'apportion.task_allocate_pending', 'tenant', 5,
   'Allocate a batch of the tenant''s pending events for one model version, set-based. Payload {"model_version"}.');

reset role;
