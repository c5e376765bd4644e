-- Late touchpoints restate the events they count for, through the live
-- path, within the tenant's restatement horizon; what they change is on
-- record in allocation_history and allocation_changes; skips are counted.
-- As the runtime roles: ingest inserts, the worker runs the live path.
begin;
\ir lib/fixtures.sql
select plan(21);

\o /dev/null
select apportion_test.make_tenant('late', '00000000-0000-4000-8000-00000000a001');
select apportion.register_model('late-linear', 'linear', '{"lookback": "10 days"}');
select apportion.register_model('late-last', 'last_touch');
select apportion.register_model('late-fixed', 'fixed_split', '{"channels": ["email", "display"]}');
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-00000000a001');
select apportion.activate_model('late-linear'), apportion.activate_model('late-last'), apportion.activate_model('late-fixed');
insert into apportion.touchpoints (customer_id, channel, occurred_at) values
  ('c1', 'email', now() - interval '5 days'), ('c2', 'email', now() - interval '5 days'),
  ('old', 'email', now() - interval '200 days');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
  ('00000000-0000-4000-8000-00000000e001', 'c1', now() - interval '2 days', 1000, 'USD'),
  ('00000000-0000-4000-8000-00000000e002', 'c2', now() - interval '2 days', 1000, 'USD'),
  ('00000000-0000-4000-8000-00000000e003', 'old', now() - interval '199 days', 1000, 'USD');
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-00000000a001');
select apportion.task_allocate_pending(jsonb_build_object('model_version', m)) from unnest(array['late-linear', 'late-last', 'late-fixed']) m;
\o

select is((select count(*) from apportion.allocation_history), 0::bigint, 'a first allocation writes no history');
select is((select array_agg(distinct change_reason) from apportion.attribution_allocations), array['allocated'],
          'its rows say why they were written: allocated');
create temporary table before_late as select * from apportion.attribution_allocations;

-- A touch for c1 before its first touch, inside the lookback.
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-00000000a001') \g /dev/null
create temporary table jobs_before as select id from apportion.jobs;
insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'display', now() - interval '6 days');
select is((select array_agg(model_version || ' ' || event_id order by model_version) from apportion.pending_allocations),
          array['late-last 00000000-0000-4000-8000-00000000e001', 'late-linear 00000000-0000-4000-8000-00000000e001'],
          'a late touch makes its customer''s allocated event pending again, for each active model that reads touches (not fixed_split)');
select is((select array_agg(payload ->> 'model_version' order by payload ->> 'model_version') from apportion.jobs
            where id not in (select id from jobs_before)),
          array['late-last', 'late-linear'], 'and enqueues one allocate_pending job per model: the live path');

select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-00000000a001') \g /dev/null
select is(apportion.task_allocate_pending('{"model_version": "late-linear"}') ->> 'event_count', '1', 'the live path restates the event');
select results_eq(
  $$select channel, allocated_revenue_cents, change_reason from apportion.attribution_allocations
     where event_id = '00000000-0000-4000-8000-00000000e001' and model_version = 'late-linear' order by channel$$,
  $$values ('display', 500::bigint, 'late_touchpoint'), ('email', 500::bigint, 'late_touchpoint')$$,
  'linear: email 1000 became email 500 + display 500, written for the late touchpoint');
select results_eq(
  $$select channel, allocated_revenue_cents, change_reason, ended_reason from apportion.allocation_history$$,
  $$values ('email', 1000::bigint, 'allocated', 'late_touchpoint')$$,
  'the replaced version is in the history, ended by the late touchpoint');
select results_eq(
  $$select channel, reason, before_cents, after_cents from apportion.allocation_changes
     where event_id = '00000000-0000-4000-8000-00000000e001' and model_version = 'late-linear' order by channel, reason$$,
  $$values ('display', 'late_touchpoint', null::bigint, 500::bigint),
           ('email', 'allocated', null, 1000), ('email', 'late_touchpoint', 1000, 500)$$,
  'allocation_changes: every change with its reason, before and after');

-- last_touch: the new touch is not the last one, so nothing changes.
select is(apportion.task_allocate_pending('{"model_version": "late-last"}') ->> 'event_count', '1', 'last_touch restates the event too');
select results_eq(
  $$select channel, allocated_revenue_cents, computed_at, change_reason from apportion.attribution_allocations where model_version = 'late-last' order by event_id$$,
  $$select channel, allocated_revenue_cents, computed_at, change_reason from before_late where model_version = 'late-last' order by event_id$$,
  'an allocation the late touch does not change is not written');
select is((select count(*) from apportion.allocation_history where model_version = 'late-last'), 0::bigint, 'and has no history');
select results_eq(
  $$select event_id, model_version, channel, allocated_revenue_cents, computed_at from apportion.attribution_allocations
     where event_id <> '00000000-0000-4000-8000-00000000e001' order by 1, 2, 3$$,
  $$select event_id, model_version, channel, allocated_revenue_cents, computed_at from before_late
     where event_id <> '00000000-0000-4000-8000-00000000e001' order by 1, 2, 3$$,
  'other customers'' events are untouched');

-- Touches that do not count: after the event, or too long before it.
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-00000000a001') \g /dev/null
insert into apportion.touchpoints (customer_id, channel, occurred_at) values
  ('c2', 'display', now() - interval '1 day'), ('c2', 'referral', now() - interval '40 days');
select is((select count(*) from apportion.pending_allocations), 0::bigint,
          'a touch after the event, or older than every lookback, restates nothing');

-- Beyond the horizon: counted, not restated.
insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('old', 'display', now() - interval '199 days 1 hour');
select is((select count(*) from apportion.pending_allocations), 0::bigint, 'an event older than the 90-day horizon is not restated');
select results_eq($$select model_version, skipped_events from apportion.restatements_skipped order by 1$$,
                  $$values ('late-last', 1::bigint), ('late-linear', 1::bigint)$$,
                  'the skip is counted per model, visible to the tenant');
select apportion_test.as_role('apportion_reader', '00000000-0000-4000-8000-00000000a001') \g /dev/null
select is((select sum(skipped_events) from apportion.restatements_skipped), 2::numeric, 'and to its reader');
select apportion_test.as_admin();
update apportion.tenants set restatement_horizon = interval '1 year' where id = '00000000-0000-4000-8000-00000000a001';
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-00000000a001') \g /dev/null
insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('old', 'paid_social', now() - interval '199 days 2 hours');
select is((select count(*) from apportion.pending_allocations where event_id = '00000000-0000-4000-8000-00000000e003'), 2::bigint,
          'with a one-year horizon the tenant''s old event is restated');

-- A lookback in months: a touch counts when touch time >= event time - 1 month
-- (2025-03-31 - 1 mon = 2025-02-28), which is not event time <= touch time + 1 month.
select apportion_test.as_admin();
select apportion.register_model('late-month', 'linear', '{"lookback": "1 mon"}') \g /dev/null
update apportion.tenants set restatement_horizon = interval '100 years' where id = '00000000-0000-4000-8000-00000000a001';
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-00000000a001') \g /dev/null
select apportion.deactivate_model(m) from unnest(array['late-linear', 'late-last', 'late-fixed']) m \g /dev/null
select apportion.activate_model('late-month') \g /dev/null
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency)
values ('00000000-0000-4000-8000-00000000e004', 'month', '2025-03-31 00:00Z', 1000, 'USD');
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-00000000a001') \g /dev/null
select apportion.task_allocate_pending('{"model_version": "late-month"}') \g /dev/null
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-00000000a001') \g /dev/null
insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('month', 'email', '2025-02-28 12:00Z');
select is((select count(*) from apportion.pending_allocations where event_id = '00000000-0000-4000-8000-00000000e004'), 1::bigint,
          'with a lookback of 1 month, a touch on 2025-02-28 12:00 restates the event of 2025-03-31, as allocation counts it');

-- Another tenant sees nothing of this.
select apportion_test.as_admin();
select apportion_test.make_tenant('late other', '00000000-0000-4000-8000-00000000a002') \g /dev/null
select apportion_test.as_role('apportion_reader', '00000000-0000-4000-8000-00000000a002') \g /dev/null
select is((select count(*) from apportion.allocation_history) + (select count(*) from apportion.allocation_changes)
          + (select count(*) from apportion.restatements_skipped), 0::bigint, 'another tenant sees no history, changes or skips');
select apportion_test.as_role('apportion_reader') \g /dev/null
select is((select count(*) from apportion.allocation_changes), 0::bigint, 'nor does a session without a tenant');
select throws_ok($$select * from apportion.allocations_as_of('late-linear', now())$$, '42501', null, 'allocations_as_of needs a tenant');

select * from finish();
rollback;
