-- Up Migration
-- Jobs whose task has no handler (llm.complete until a provider exists) are
-- parked: still queued and visible, but outside the claim index, so however
-- many wait they cost a claim nothing. The registry trigger unparks a task's
-- jobs when it gets a handler (db/44_queue_tasks.sql).
set local role apportion_owner;

alter table apportion.jobs add column parked boolean not null default false;
update apportion.jobs j set parked = true
  from apportion.queue_tasks t
 where t.queue = j.queue and t.task = j.task and t.handler is null and j.state = 'queued';

drop index apportion.jobs_runnable_idx;
create index jobs_runnable_idx on apportion.jobs_live ((tenant_id is not null), priority, run_at, id)
  where state = 'queued' and not parked;

reset role;
