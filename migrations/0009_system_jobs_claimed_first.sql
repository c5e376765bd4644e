-- Up Migration
-- System jobs (no tenant: readiness pings, prune, lease reclaims) are
-- claimed before any tenant's, whatever the tenant's priority: the claim
-- index leads with whether a job has a tenant.
set local role apportion_owner;

drop index apportion.jobs_runnable_idx;
create index jobs_runnable_idx on apportion.jobs_live ((tenant_id is not null), priority, run_at, id) where state = 'queued';

reset role;
