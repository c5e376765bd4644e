-- Up Migration
-- A tenant may have at most tenants.max_queued_jobs jobs queued (parked ones
-- included); more are refused with AP003 (the jobs_cap trigger, db/40_queue.sql). The owner sets
-- the cap per tenant. The index counts a tenant's queued jobs without
-- walking anyone else's.
set local role apportion_owner;

alter table apportion.tenants add column max_queued_jobs integer not null default 1000000
  constraint tenants_max_queued_jobs_positive check (max_queued_jobs > 0);
create index jobs_queued_by_tenant_idx on apportion.jobs_live (tenant_id) where state = 'queued';

reset role;
