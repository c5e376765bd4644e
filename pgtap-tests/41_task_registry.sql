-- The task registry is the one place that maps tasks to handlers: changing it
-- regenerates the dispatcher (apportion.run_task) in the same transaction.
begin;
select plan(5);

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

select * from finish();
rollback;
