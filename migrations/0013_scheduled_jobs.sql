-- Up Migration
-- Jobs whose run_at is still ahead are scheduled: queued and visible, but
-- outside the claim index until they are due, so however many wait (and at
-- whatever priority) they cost a claim nothing. A claim first moves due
-- scheduled jobs into the claim index, oldest first (db/42_queue_claim.sql);
-- the scheduled index finds them without walking the rest.
set local role apportion_owner;

alter table apportion.jobs add column scheduled boolean not null default false;
update apportion.jobs_live set scheduled = true where state = 'queued' and run_at > now();

drop index apportion.jobs_runnable_idx;
create index jobs_runnable_idx on apportion.jobs_live ((tenant_id is not null), priority, run_at, id)
  where state = 'queued' and not parked and not scheduled;
create index jobs_scheduled_idx on apportion.jobs_live (run_at) where state = 'queued' and scheduled;

reset role;
