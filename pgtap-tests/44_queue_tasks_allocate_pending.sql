-- attribution.allocate_pending, the live path's handler, as apportion_worker
-- under the tenant: it allocates the tenant's pending events of one model in
-- one engine statement, leaves nothing pending, writes nothing on a rerun,
-- isolates an event that cannot be allocated (it becomes an allocate_event
-- job of its own, with its ingest's correlation id, and fails into
-- worker_failed_jobs while the rest commit), and hands a backlog on in
-- batches of 1,000.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
begin;
select plan(16);
\ir lib/fixtures.sql

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

\o /dev/null
select apportion_test.make_tenant('A', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.register_model('p-linear', 'linear');
select apportion_test.as_role('apportion_ingest', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.activate_model('p-linear');
select set_config('app.correlation_id', 'eeeeeeee-0000-4000-8000-00000000000e', true);
insert into apportion.touchpoints (customer_id, channel, occurred_at)
select 'c' || g, case when g % 2 = 0 then 'email' else 'display' end, '2026-02-01 00:00Z' from generate_series(1, 5) g;
insert into apportion.touchpoints (customer_id, channel, occurred_at)
select 'c' || g, 'referral', '2026-02-01 06:00Z' from generate_series(1, 5) g;
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency)
select ('aaaaaaaa-0000-4000-8000-00000000000' || g)::uuid, 'c' || g, '2026-02-02 00:00Z', 1001 * g, 'EUR'
  from generate_series(1, 5) g;
select apportion_test.as_admin();
\o

select is((select count(*) from apportion.pending_allocations), 5::bigint, 'five events are pending for the one active model');

-- One batch: every pending event allocated in one run, nothing left pending.
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a');
select is(apportion.task_allocate_pending('{"model_version": "p-linear"}'),
  '{"model_version": "p-linear", "event_count": 5, "allocation_count": 10, "isolated_event_ids": []}'::jsonb,
  'the handler allocates the five events (two channels each) in one run');
select is((select count(*) from apportion.pending_allocations), 0::bigint, 'nothing is left pending');
select results_eq($$select event_id, sum(allocated_revenue_cents)::bigint from apportion.attribution_allocations
                     group by 1 order by 1$$,
  $$select ('aaaaaaaa-0000-4000-8000-00000000000' || g)::uuid, 1001::bigint * g from generate_series(1, 5) g$$,
  'each event''s parts sum to its revenue');
select is(apportion.task_allocate_pending('{"model_version": "p-linear"}'),
  '{"model_version": "p-linear", "event_count": 0, "allocation_count": 0}'::jsonb, 'with nothing pending, a run does nothing');
select apportion_test.as_admin();

-- A rerun over the same events writes nothing.
create temp table before_rerun as select a.event_id, a.channel, a.xmin::text as version from apportion.attribution_allocations a;
insert into apportion.pending_allocations (tenant_id, model_version, event_id)
select 'aaaaaaaa-0000-4000-8000-00000000000a', 'p-linear', event_id from (select distinct event_id from before_rerun) e;
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a');
select is((apportion.task_allocate_pending('{"model_version": "p-linear"}') ->> 'event_count')::int, 5, 'the same events, pending again, are computed again');
select apportion_test.as_admin();
select set_eq($$select event_id, channel, xmin::text as version from apportion.attribution_allocations$$,
  $$select event_id, channel, version from before_rerun$$, 'and no row was rewritten');

-- A poison event: its allocation fails, the others commit, it becomes a job
-- of its own that fails into worker_failed_jobs with its event id and its
-- ingest's correlation id.
create function pg_temp.refuse_poison() returns trigger language plpgsql as $$
begin
  if new.event_id = 'aaaaaaaa-0000-4000-8000-000000000007' then
    raise exception 'this event cannot be allocated' using errcode = '23514';
  end if;
  return new;
end
$$;
create trigger refuse_poison before insert or update on apportion.attribution_allocations
  for each row execute function pg_temp.refuse_poison();
select apportion_test.as_role('apportion_ingest', 'aaaaaaaa-0000-4000-8000-00000000000a');
select set_config('app.correlation_id', 'dddddddd-0000-4000-8000-00000000000d', true);
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
  ('aaaaaaaa-0000-4000-8000-000000000006', 'c1', '2026-02-03 00:00Z', 600, 'EUR'),
  ('aaaaaaaa-0000-4000-8000-000000000007', 'c2', '2026-02-03 00:00Z', 700, 'EUR'),
  ('aaaaaaaa-0000-4000-8000-000000000008', 'c3', '2026-02-03 00:00Z', 800, 'EUR');
select set_config('app.correlation_id', '', true);
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a');
select is(apportion.task_allocate_pending('{"model_version": "p-linear"}'),
  '{"model_version": "p-linear", "event_count": 2, "allocation_count": 4, "isolated_event_ids": ["aaaaaaaa-0000-4000-8000-000000000007"]}'::jsonb,
  'a batch with a poison event allocates the other two and isolates it');
select set_eq($$select distinct event_id from apportion.attribution_allocations where event_occurred_at = '2026-02-03 00:00Z'$$,
  array['aaaaaaaa-0000-4000-8000-000000000006', 'aaaaaaaa-0000-4000-8000-000000000008']::uuid[], 'the two are stored; the poison has no rows');
select is((select count(*) from apportion.pending_allocations), 0::bigint, 'nothing is left pending');
select results_eq($$select queue, task, payload, correlation_id from apportion.jobs where state = 'queued' and task = 'allocate_event'$$,
  $$values ('attribution', 'allocate_event', '{"event_id": "aaaaaaaa-0000-4000-8000-000000000007", "model_version": "p-linear"}'::jsonb,
            'dddddddd-0000-4000-8000-00000000000d'::uuid)$$,
  'the poison event is an allocate_event job of its own, with the correlation id of its ingest');
select is((select count(*) from apportion.run_jobs('w-pending', array(select c.job_id from apportion.claim_jobs('w-pending', array['attribution'], 10) c))
            where outcome = 'failed'), 1::bigint, 'run, that job fails at once (23514)');
select results_eq($$select payload ->> 'event_id', error_code, correlation_id from apportion.worker_failed_jobs$$,
  $$values ('aaaaaaaa-0000-4000-8000-000000000007', '23514', 'dddddddd-0000-4000-8000-00000000000d'::uuid)$$,
  'and lands in worker_failed_jobs with the event id and the correlation id');
select apportion_test.as_admin();
drop trigger refuse_poison on apportion.attribution_allocations;

-- A backlog goes on in batches of 1,000: a full batch enqueues the next.
delete from apportion.jobs;
select apportion_test.as_role('apportion_ingest', 'aaaaaaaa-0000-4000-8000-00000000000a');
insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
select 'bulk', '2026-02-04 00:00Z', 100, 'EUR' from generate_series(1, 1001);
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a');
select is((apportion.task_allocate_pending('{"model_version": "p-linear"}') ->> 'event_count')::int, 1000, 'a run takes 1,000 of 1,001 pending events');
select is((select count(*) from apportion.jobs where state = 'queued' and task = 'allocate_pending'), 2::bigint,
  'and enqueues the next run beside the one ingest enqueued');
select is((apportion.task_allocate_pending('{"model_version": "p-linear"}') ->> 'event_count')::int, 1, 'which takes the last one');
select apportion_test.as_admin();

select * from finish();
rollback;
