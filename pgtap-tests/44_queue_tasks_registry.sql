-- The task registry is the one place that maps tasks to handlers: changing it
-- regenerates the dispatcher (apportion.run_task) in the same transaction,
-- and parks or unparks the queued jobs of a task that lost or got a handler.
begin;
\ir lib/isolate.sql
select plan(15);

create schema t41;
create function t41.echo(p_payload jsonb) returns jsonb language sql as $$ select jsonb_build_object('echo', p_payload) $$;

select throws_ok($$select apportion.run_task('housekeeping', 't41_echo', '{"x": 1}')$$, 'AP001', null,
  'an unregistered task has no handler (AP001)');
insert into apportion.queue_tasks (queue, task, handler, tenant_scope, max_attempts, description)
values ('housekeeping', 't41_echo', 't41.echo', 'any', 1, 'test only');
select is(apportion.run_task('housekeeping', 't41_echo', '{"x": 1}'), '{"echo": {"x": 1}}'::jsonb,
  'registering it makes run_task dispatch to its handler at once');
update apportion.queue_tasks set tenant_scope = 'tenant' where queue = 'housekeeping' and task = 't41_echo';
select set_config('app.tenant_id', '', true);
select throws_ok($$select apportion.run_task('housekeeping', 't41_echo', '{}')$$, '42501', null,
  'changing its scope to tenant regenerates the scope check (no tenant set: 42501)');
delete from apportion.queue_tasks where queue = 'housekeeping' and task = 't41_echo';
select throws_ok($$select apportion.run_task('housekeeping', 't41_echo', '{}')$$, 'AP001', null,
  'removing it removes the handler again');
select is(apportion.run_task('housekeeping', 'noop', '{}'), null::jsonb, 'the registered tasks still dispatch');

-- The registry is enforced on every job that enters the queue (the insert
-- trigger and, behind it, the foreign key on jobs_live), even for the owner,
-- whom RLS does not check.
delete from apportion.worker_failed_jobs;
delete from apportion.jobs;
select throws_ok($$insert into apportion.jobs (queue, task) values ('housekeeping', 't41_gone')$$,
  '22023', 'unknown task housekeeping.t41_gone: tasks of queue housekeeping are noop, ping, prune',
  'a job for an unregistered task cannot be inserted, even by the owner (22023)');
select fk_ok('apportion', 'jobs_live', array['queue', 'task'], 'apportion', 'queue_tasks', array['queue', 'task'],
  'jobs_live keeps its foreign key to the registry');
insert into apportion.queue_tasks (queue, task, handler, tenant_scope, max_attempts, description)
values ('housekeeping', 't41_echo', 't41.echo', 'any', 1, 'test only');
select apportion.enqueue('housekeeping', 't41_echo', '{"x": 2}') as t41_job \gset
select throws_ok($$delete from apportion.queue_tasks where queue = 'housekeeping' and task = 't41_echo'$$,
  '23503', null, 'a task with queued jobs cannot leave the registry');
select apportion.claim_jobs('t41', array['housekeeping'], 10, 60);
select apportion.run_jobs('t41', array[:t41_job]::bigint[]);
select is((select state from apportion.jobs where id = :t41_job), 'succeeded', 'its job runs and moves to jobs_done');
select lives_ok($$delete from apportion.queue_tasks where queue = 'housekeeping' and task = 't41_echo'$$,
  'once no job of it is queued or running, it can leave the registry; its history stays');

-- A task without a handler parks its jobs: queued and visible, never
-- claimed, and outside the claim index; giving the task a handler unparks
-- them, taking it away parks them again.
delete from apportion.jobs;
insert into apportion.queue_tasks (queue, task, handler, tenant_scope, max_attempts, description)
values ('housekeeping', 't41_later', null, 'any', 1, 'test only');
select apportion.enqueue('housekeeping', 't41_later', '{}') as t41_parked \gset
select results_eq(format($$select state, parked from apportion.jobs where id = %s$$, :t41_parked),
  $$values ('queued', true)$$, 'a job of a task without a handler is queued and parked');
select is_empty($$select * from apportion.claim_jobs('t41', array['housekeeping'], 10, 60)$$, 'and never claimed');
update apportion.queue_tasks set handler = 't41.echo' where queue = 'housekeeping' and task = 't41_later';
select is((select parked from apportion.jobs where id = :t41_parked), false, 'a handler registered for its task unparks it');
select results_eq($$select job_id from apportion.claim_jobs('t41', array['housekeeping'], 10, 60)$$,
  format($$values (%s::bigint)$$, :t41_parked), 'and it is claimed');
select apportion.enqueue('housekeeping', 't41_later', '{}') as t41_second \gset
update apportion.queue_tasks set handler = null where queue = 'housekeeping' and task = 't41_later';
select is((select parked from apportion.jobs where id = :t41_second), true, 'taking the handler away parks its queued jobs again');

select * from finish();
rollback;
