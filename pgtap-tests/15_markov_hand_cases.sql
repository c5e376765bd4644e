-- The markov model on small cases worked by hand, each in a tenant of its
-- own under one version trained on January 2025 (events to allocate lie in
-- February, outside the training window): one channel, a channel only on
-- non-converting paths, repeats collapsed, events without touches, channels
-- unseen in training, every weight 0; the errors; and the live path, whose
-- work waits for training.
begin;
\ir lib/fixtures.sql
select plan(30);

\o /dev/null
select apportion.register_model('mk-hand', 'markov', '{"training_start": "2025-01-01", "training_end": "2025-02-01"}');
select apportion.register_model('mk-hand-linear', 'linear');
select apportion_test.make_tenant('one channel', '00000000-0000-4000-8000-0000000000f1');
select apportion_test.make_tenant('null-only channel', '00000000-0000-4000-8000-0000000000f2');
select apportion_test.make_tenant('unseen channels', '00000000-0000-4000-8000-0000000000f3');
select apportion_test.make_tenant('no conversions', '00000000-0000-4000-8000-0000000000f4');
select apportion_test.make_tenant('no data', '00000000-0000-4000-8000-0000000000f5');
select apportion_test.make_tenant('live path', '00000000-0000-4000-8000-0000000000f6');

-- f1: email only. One converting path, one not, and an event without touches (no path).
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000f1', c, 'email', at::timestamptz) from (values
  ('c1', '2025-01-05 10:00Z'), ('c1', '2025-01-06 10:00Z'), ('n1', '2025-01-05 10:00Z'), ('x1', '2025-02-09 10:00Z')) v (c, at);
select apportion_test.make_event('00000000-0000-4000-8000-0000000000f1', c, at::timestamptz, r, 'USD', ('00000000-0000-4000-8000-0000000001' || n)::uuid)
  from (values ('c1', '2025-01-08 10:00Z', 100::bigint, '01'), ('nobody', '2025-01-08 10:00Z', 100, '02'),
               ('x1', '2025-02-10 10:00Z', 1000, '03'), ('nobody', '2025-02-10 10:00Z', 1000, '04')) v (c, at, r, n);

-- f2: email converts; display is only on a path that does not (repeated).
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000f2', c, ch, at::timestamptz) from (values
  ('c1', 'email', '2025-01-05 10:00Z'),
  ('n1', 'display', '2025-01-05 10:00Z'), ('n1', 'display', '2025-01-06 10:00Z'), ('n1', 'display', '2025-01-07 10:00Z'),
  ('x1', 'display', '2025-02-08 10:00Z'), ('x1', 'email', '2025-02-09 10:00Z')) v (c, ch, at);
select apportion_test.make_event('00000000-0000-4000-8000-0000000000f2', c, at::timestamptz, r, 'USD', ('00000000-0000-4000-8000-0000000002' || n)::uuid)
  from (values ('c1', '2025-01-08 10:00Z', 100::bigint, '01'), ('x1', '2025-02-10 10:00Z', 1000, '02')) v (c, at, r, n);

-- f3: only email in training; February brings referral and paid_social.
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000f3', c, ch, at::timestamptz) from (values
  ('c1', 'email', '2025-01-05 10:00Z'),
  ('x1', 'referral', '2025-02-08 10:00Z'), ('x1', 'email', '2025-02-09 10:00Z'),
  ('x2', 'referral', '2025-02-08 10:00Z'), ('x2', 'referral', '2025-02-09 10:00Z'),
  ('x3', 'referral', '2025-02-07 10:00Z'), ('x3', 'paid_social', '2025-02-08 10:00Z'), ('x3', 'referral', '2025-02-09 10:00Z')) v (c, ch, at);
select apportion_test.make_event('00000000-0000-4000-8000-0000000000f3', c, at::timestamptz, r, 'USD', ('00000000-0000-4000-8000-0000000003' || n)::uuid)
  from (values ('c1', '2025-01-08 10:00Z', 100::bigint, '01'), ('x1', '2025-02-10 10:00Z', 1000, '02'),
               ('x2', '2025-02-10 10:00Z', 1000, '03'), ('x3', '2025-02-10 10:00Z', 1000, '04')) v (c, at, r, n);

-- f4: touches in training, nothing converts.
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000f4', c, ch, at::timestamptz) from (values
  ('n1', 'email', '2025-01-05 10:00Z'), ('n2', 'display', '2025-01-05 10:00Z'),
  ('x1', 'email', '2025-02-08 10:00Z'), ('x1', 'display', '2025-02-09 10:00Z')) v (c, ch, at);
select apportion_test.make_event('00000000-0000-4000-8000-0000000000f4', 'x1', '2025-02-10 10:00Z', 1001, 'USD', '00000000-0000-4000-8000-000000000401');

-- f5: no touches at all in January.
select apportion_test.make_event('00000000-0000-4000-8000-0000000000f5', 'c1', '2025-01-08 10:00Z', 100, 'USD', '00000000-0000-4000-8000-000000000501');
\o

-- f1: one channel ----------------------------------------------------------------
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000f1');
select is((select row(path_count, conversion_count, channel_count, p_conversion_num, p_conversion_den)::text
             from apportion.train_model('mk-hand')),
          '(2,1,1,1,2)', 'one channel: 2 paths (the event without touches is none), 1 conversion, P = 1/2');
select is((select array_agg(format('%s>%s %s', from_state, to_state, transition_count) order by from_state, to_state)
             from apportion.markov_transitions),
          array['(start)>email 2', 'email>(conversion) 1', 'email>(null) 1'],
          'one channel: email twice on a path is one step');
select is((select removal_effect_num || '/' || removal_effect_den from apportion.markov_summary('mk-hand')), '1/1',
          'one channel: removing it loses every conversion, RE = 1');
select results_eq($$select channel, allocated_revenue_cents, allocation_ratio, touchpoint_count
                      from apportion.allocate_event('00000000-0000-4000-8000-000000000103', 'mk-hand')$$,
                  $$values ('email', 1000::bigint, 1.000000, 1)$$, 'one channel: it gets everything');
select results_eq($$select channel, allocated_revenue_cents, allocation_ratio, touchpoint_count
                      from apportion.allocate_event('00000000-0000-4000-8000-000000000104', 'mk-hand')$$,
                  $$values ('unattributed', 1000::bigint, 1.000000, 0)$$, 'an event without touches goes to the fallback channel');

-- f2: a channel only on a non-converting path ---------------------------------------
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000f2');
select is((select row(path_count, conversion_count, p_conversion_num, p_conversion_den)::text from apportion.train_model('mk-hand')),
          '(2,1,1,2)', 'null-only channel: 2 paths, P = 1/2');
select is((select count(*) from apportion.markov_transitions where from_state = to_state), 0::bigint,
          'repeats collapsed: no transition from a channel to itself');
select is((select array_agg(format('%s %s/%s', channel, removal_effect_num, removal_effect_den) order by channel)
             from apportion.markov_summary('mk-hand')),
          array['display 0/1', 'email 1/1'],
          'a channel only on non-converting paths has removal effect 0');
select results_eq($$select channel, allocated_revenue_cents, allocation_ratio, touchpoint_count
                      from apportion.allocate_event('00000000-0000-4000-8000-000000000202', 'mk-hand')$$,
                  $$values ('email', 1000::bigint, 1.000000, 1)$$,
                  'display weighs 0 and gets no row; email gets everything');

-- f3: channels unseen in training ----------------------------------------------------
select apportion_test.as_role('apportion_allocator', '00000000-0000-4000-8000-0000000000f3');
select is((select channel_count from apportion.train_model('mk-hand')), 1, 'unseen: trained on email alone (as the allocator)');
select results_eq($$select channel, allocated_revenue_cents, allocation_ratio, touchpoint_count
                      from apportion.allocate_event('00000000-0000-4000-8000-000000000302', 'mk-hand')$$,
                  $$values ('email', 1000::bigint, 1.000000, 1)$$,
                  'a channel absent from training weighs 0 beside one that was trained');
select results_eq($$select channel, allocated_revenue_cents, allocation_ratio, touchpoint_count
                      from apportion.allocate_event('00000000-0000-4000-8000-000000000303', 'mk-hand')$$,
                  $$values ('referral', 1000::bigint, 1.000000, 2)$$,
                  'every weight 0: weighted as linear (one channel, two touches)');
select results_eq($$select channel, allocated_revenue_cents, allocation_ratio, touchpoint_count
                      from apportion.allocate_event('00000000-0000-4000-8000-000000000304', 'mk-hand')$$,
                  $$values ('paid_social', 333::bigint, 0.333333, 1), ('referral', 667::bigint, 0.666667, 2)$$,
                  'every weight 0: linear over the touches, 2/3 and 1/3 of 1000 by largest remainder');

-- f4: nothing converts -----------------------------------------------------------------
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000f4');
select is((select row(path_count, conversion_count, p_conversion_num, p_conversion_den)::text from apportion.train_model('mk-hand')),
          '(2,0,0,1)', 'no conversions: P = 0/1');
select is((select array_agg(format('%s %s/%s', channel, removal_effect_num, removal_effect_den) order by channel)
             from apportion.markov_summary('mk-hand')),
          array['display 0/1', 'email 0/1'], 'no conversions: every removal effect is 0');
select results_eq($$select channel, allocated_revenue_cents, touchpoint_count
                      from apportion.allocate_event('00000000-0000-4000-8000-000000000401', 'mk-hand')$$,
                  $$values ('display', 501::bigint, 1), ('email', 500::bigint, 1)$$,
                  'no conversions: events are weighted as linear (1001 cents, the spare cent by the md5 tie-break)');

-- A lookback in months: the touch of 2025-02-28 12:00 counts for the event of
-- 2025-03-31 (2025-03-31 - 1 mon = 2025-02-28), so it is on no null path
-- (though 2025-02-28 12:00 + 1 mon is before the event).
select apportion_test.as_admin();
select apportion.register_model('mk-month', 'markov', '{"training_start": "2025-01-01", "training_end": "2025-04-01", "lookback": "1 mon"}') \g /dev/null
select apportion_test.make_touch('00000000-0000-4000-8000-0000000000f4', 'm1', 'email', '2025-02-28 12:00Z') \g /dev/null
select apportion_test.make_event('00000000-0000-4000-8000-0000000000f4', 'm1', '2025-03-31 00:00Z', 100) \g /dev/null
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000f4');
select is((select row(path_count, conversion_count)::text from apportion.train_model('mk-month')), '(4,2)',
          'a lookback in months: 2 null paths (n1, n2) and 2 converting (x1, m1); m1''s touch is on no null path');

-- Errors -----------------------------------------------------------------------------
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000f5');
select throws_ok($$select * from apportion.allocate_event('00000000-0000-4000-8000-000000000501', 'mk-hand')$$, '55000',
                 'model version ''mk-hand'' (kind markov) is not trained for the current tenant',
                 'allocate_event of a version the tenant has not trained: 55000, not a wrong answer');
select throws_ok($$select * from apportion.recompute_window('2025-01-01', '2025-02-01', 'mk-hand')$$, '55000', null,
                 'recompute_window of an untrained version: 55000');
select throws_ok($$select * from apportion.train_model('mk-hand')$$, '22023',
                 'train_model: no paths to train ''mk-hand'' on: no touchpoints of the current tenant in its training window [2025-01-01, 2025-02-01)',
                 'training on no paths is refused');
select throws_ok($$select * from apportion.train_model('mk-hand-linear')$$, '22023',
                 'train_model: model version ''mk-hand-linear'' is of kind linear; only kind markov is trained',
                 'only markov versions are trained');
select throws_ok($$select * from apportion.train_model('mk-nope')$$, '22023', 'model version ''mk-nope'' is not registered',
                 'an unknown version');
select apportion_test.as_role('apportion_worker');
select throws_ok($$select * from apportion.train_model('mk-hand')$$, '42501', null, 'no tenant, no training');
select apportion_test.as_role('apportion_reader', '00000000-0000-4000-8000-0000000000f5');
select throws_ok($$select * from apportion.train_model('mk-hand')$$, '42501', null, 'the reader does not train');

-- The live path waits for training ------------------------------------------------------
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-0000000000f6');
select apportion.activate_model('mk-hand') \g /dev/null
insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'email', '2025-01-05 10:00Z');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency)
values ('00000000-0000-4000-8000-000000000601', 'c1', '2025-01-08 10:00Z', 700, 'USD');
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000f6');
select is(apportion.task_allocate_pending('{"model_version": "mk-hand"}') ->> 'waiting_for', 'training',
          'allocate_pending of an untrained markov version waits');
select is((select count(*) from apportion.pending_allocations where model_version = 'mk-hand'), 1::bigint,
          'its pending event stays pending, untouched');
create temporary table jobs_before as select id from apportion.jobs;
select is(apportion.task_train_model('{"model_version": "mk-hand"}') ->> 'p_conversion', '1/1',
          'attribution.train_model trains it');
select is((select array_agg(task || ' ' || state || ' ' || payload::text) from apportion.jobs
            where id not in (select id from jobs_before)),
          array['allocate_pending queued {"model_version": "mk-hand"}'],
          'and wakes the waiting work with one allocate_pending job');
select is((apportion.task_allocate_pending('{"model_version": "mk-hand"}') ->> 'event_count')::int, 1,
          'which then allocates the event');

-- Pending events committed while a training runs are invisible to it: it
-- wakes an active version's live path whether or not it sees any.
select apportion_test.as_admin();
select apportion.register_model('mk-hand-2', 'markov', '{"training_start": "2025-01-01", "training_end": "2025-02-01"}') \g /dev/null
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-0000000000f6') \g /dev/null
select apportion.activate_model('mk-hand-2') \g /dev/null
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000f6') \g /dev/null
delete from jobs_before;
insert into jobs_before select id from apportion.jobs;
select apportion.task_train_model('{"model_version": "mk-hand-2"}') \g /dev/null
select is((select array_agg(task || ' ' || payload::text) from apportion.jobs where id not in (select id from jobs_before)),
          array['allocate_pending {"model_version": "mk-hand-2"}'],
          'training an active version enqueues its live path even with no pending event in sight');

select * from finish();
rollback;
