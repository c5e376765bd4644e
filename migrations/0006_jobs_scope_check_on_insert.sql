-- Up Migration
-- A job's task scope (a system task only as a system job, a tenant task only
-- with a tenant) is checked when the job is inserted, by its own restrictive
-- policy, instead of in the WITH CHECK of every write: runtime roles cannot
-- change a job's queue, task or tenant afterwards.
set local role apportion_owner;

do $$
declare
  t text;
begin
  foreach t in array array['jobs', 'jobs_live', 'jobs_done'] loop
    execute format($p$alter policy tenant_isolation on apportion.%I
      with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
    execute format('alter policy system_jobs on apportion.%I with check (tenant_id is null)', t);
    execute format($p$create policy task_scope on apportion.%1$I as restrictive for insert
      to apportion_ingest, apportion_worker
      with check (exists (
        select from apportion.queue_tasks q where q.queue = %1$I.queue and q.task = %1$I.task
           and q.tenant_scope <> case when %1$I.tenant_id is null then 'tenant' else 'system' end))$p$, t);
  end loop;
end
$$;

reset role;
