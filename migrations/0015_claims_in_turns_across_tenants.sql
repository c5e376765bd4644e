-- Up Migration
-- Claims take runnable jobs in turns across tenants (db/42_queue_claim.sql):
-- the claim index leads with the job's tenant (system jobs under the zero
-- uuid, which sorts first), so a claim finds each tenant's next jobs by
-- skipping from tenant to tenant instead of walking one tenant's backlog to
-- reach another's.
set local role apportion_owner;

drop index apportion.jobs_runnable_idx;
create index jobs_runnable_idx on apportion.jobs_live
  ((coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)), priority, run_at, id)
  where state = 'queued' and not parked and not scheduled;

reset role;
