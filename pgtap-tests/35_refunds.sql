-- Refunds: ingest as apportion_ingest (idempotent on external_refund_id),
-- never more than the revenue (refused whole), split exactly over what is
-- left of each channel's part under every model that allocated the event,
-- in refund order, recomputed when the event is restated; gross, refunded
-- and net per day by event day and refund day.
begin;
\ir lib/fixtures.sql
select plan(25);

\o /dev/null
select apportion_test.make_tenant('refunds', '00000000-0000-4000-8000-0000000000b1');
select apportion_test.make_tenant('refunds other', '00000000-0000-4000-8000-0000000000b2');
select apportion.register_model('rf-fixed', 'fixed_split', '{"channels": ["email", "display", "referral"], "weights": [0.5, 0.3, 0.2]}');
select apportion.register_model('rf-equal', 'fixed_split', '{"channels": ["email", "display", "referral"]}');
select apportion.register_model('rf-linear', 'linear');
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-0000000000b1');
insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'email', '2025-05-28 10:00Z');
insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
  ('00000000-0000-4000-8000-0000000b0001', 'c1', '2025-06-01 10:00Z', 1000, 'USD'),
  ('00000000-0000-4000-8000-0000000b0002', 'c2', '2025-06-01 11:00Z', 900, 'USD'),
  ('00000000-0000-4000-8000-0000000b0003', 'c3', '2025-06-01 12:00Z', 0, 'USD');
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000b1');
select apportion.recompute_window('2025-06-01', '2025-06-02', m) from unnest(array['rf-fixed', 'rf-equal', 'rf-linear']) m;
\o

select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-0000000000b1') \g /dev/null
-- 101 of 1000 cents over email 500, display 300, referral 200.
insert into apportion.refunds (id, event_id, amount_cents, occurred_at, external_refund_id, reason)
values ('00000000-0000-4000-8000-0000000f0001', '00000000-0000-4000-8000-0000000b0001', 101, '2025-06-03 09:00Z', 'rf-1', 'damaged');
select results_eq(
  $$select channel, refunded_cents from apportion.refund_allocations
     where refund_id = '00000000-0000-4000-8000-0000000f0001' and model_version = 'rf-fixed' order by channel$$,
  $$values ('display', 30::bigint), ('email', 51::bigint), ('referral', 20::bigint)$$,
  '101 cents over 500/300/200: 50.5, 30.3, 20.2 -> 50, 30, 20 and the spare cent to the largest remainder (email)');
select is((select array_agg(model_version || ' ' || total order by model_version) from (
             select model_version, sum(refunded_cents) as total from apportion.refund_allocations group by 1) t),
          array['rf-equal 101', 'rf-fixed 101', 'rf-linear 101'],
          'the refund is split under every model version that allocated the event, each summing to 101');

-- The rest: every channel nets to exactly 0.
insert into apportion.refunds (id, event_id, amount_cents, occurred_at, external_refund_id)
values ('00000000-0000-4000-8000-0000000f0002', '00000000-0000-4000-8000-0000000b0001', 899, '2025-06-05 09:00Z', 'rf-2');
select results_eq(
  $$select a.channel, a.allocated_revenue_cents - coalesce(sum(r.refunded_cents), 0)
      from apportion.attribution_allocations a
      left join apportion.refund_allocations r on r.event_id = a.event_id and r.model_version = a.model_version and r.channel = a.channel
     where a.event_id = '00000000-0000-4000-8000-0000000b0001' and a.model_version = 'rf-fixed'
     group by a.channel, a.allocated_revenue_cents order by a.channel$$,
  $$values ('display', 0::numeric), ('email', 0::numeric), ('referral', 0::numeric)$$,
  'refunding the whole revenue nets every channel to exactly 0');
select results_eq(
  $$select channel, refunded_cents from apportion.refund_allocations
     where refund_id = '00000000-0000-4000-8000-0000000f0002' and model_version = 'rf-fixed' order by channel$$,
  $$values ('display', 270::bigint), ('email', 449::bigint), ('referral', 180::bigint)$$,
  'the second refund is split over what was left: 449, 270, 180');

-- Never more than the revenue; refused whole.
select throws_ok($$insert into apportion.refunds (event_id, amount_cents, occurred_at) values ('00000000-0000-4000-8000-0000000b0001', 1, '2025-06-06')$$,
  '23514', 'refunds of event 00000000-0000-4000-8000-0000000b0001 would total 1001 USD, more than its revenue of 1000 USD: refused',
  'a refund past the revenue is refused');
select throws_ok($$insert into apportion.refunds (event_id, amount_cents, occurred_at) values
                    ('00000000-0000-4000-8000-0000000b0002', 100, '2025-06-06'), ('00000000-0000-4000-8000-0000000b0002', 801, '2025-06-06')$$,
  '23514', null, 'a statement whose refunds together pass the revenue is refused');
select is((select count(*) from apportion.refunds where event_id = '00000000-0000-4000-8000-0000000b0002'), 0::bigint, '... whole');
select throws_ok($$insert into apportion.refunds (event_id, amount_cents, occurred_at) values ('00000000-0000-4000-8000-0000000b0003', 1, '2025-06-06')$$,
  '23514', null, 'an event of revenue 0 cannot be refunded');
select throws_ok($$insert into apportion.refunds (event_id, amount_cents, occurred_at) values ('00000000-0000-4000-8000-0000000b0002', 0, '2025-06-06')$$,
  '23514', null, 'a refund of 0 is refused');
select throws_ok($$insert into apportion.refunds (event_id, amount_cents, occurred_at) values ('00000000-0000-4000-8000-0000000b0002', 5, 'infinity')$$,
  '23514', null, 'a refund at infinity is refused');

-- Idempotent on the external id.
select throws_ok($$insert into apportion.refunds (event_id, amount_cents, occurred_at, external_refund_id) values ('00000000-0000-4000-8000-0000000b0002', 5, '2025-06-06', 'rf-1')$$,
  '23505', null, 'a re-sent refund with the same external id is a unique violation');
select lives_ok($$insert into apportion.refunds (event_id, amount_cents, occurred_at, external_refund_id) values ('00000000-0000-4000-8000-0000000b0001', 5, '2025-06-06', 'rf-1')
                  on conflict (tenant_id, external_refund_id) do nothing$$, 'or silently skipped with on conflict do nothing');
select is((select count(*) from apportion.refunds), 2::bigint, 'and never a second row');

-- Ties: one cent over three equal parts goes to the lowest md5(refund_id:channel).
insert into apportion.refunds (id, event_id, amount_cents, occurred_at) values
  ('00000000-0000-4000-8000-0000000f0003', '00000000-0000-4000-8000-0000000b0002', 1, '2025-06-07 09:00Z');
select is((select channel from apportion.refund_allocations where refund_id = '00000000-0000-4000-8000-0000000f0003' and model_version = 'rf-equal'),
          (select c from unnest(array['email', 'display', 'referral']) c order by md5('00000000-0000-4000-8000-0000000f0003:' || c) collate "C" limit 1),
          'a tie in remainder goes by md5(refund_id || '':'' || channel)');

-- Refund order is (occurred_at, id): an earlier refund added later is split first.
insert into apportion.refunds (id, event_id, amount_cents, occurred_at) values
  ('00000000-0000-4000-8000-0000000f0004', '00000000-0000-4000-8000-0000000b0002', 299, '2025-06-02 09:00Z');
select results_eq(
  $$select refund_id, sum(refunded_cents)::bigint from apportion.refund_allocations where event_id = '00000000-0000-4000-8000-0000000b0002' and model_version = 'rf-equal'
     group by refund_id order by refund_id$$,
  $$values ('00000000-0000-4000-8000-0000000f0003'::uuid, 1::bigint), ('00000000-0000-4000-8000-0000000f0004'::uuid, 299::bigint)$$,
  'both refunds of the event keep their amounts');
select results_eq(
  $$select channel, refunded_cents from apportion.refund_allocations where refund_id = '00000000-0000-4000-8000-0000000f0004' and model_version = 'rf-equal' order by channel$$,
  $$select c, case when c = (select c2 from unnest(array['email', 'display', 'referral']) c2 order by md5('00000000-0000-4000-8000-0000000f0004:' || c2) collate "C" desc limit 1)
                   then 99::bigint else 100::bigint end
      from unnest(array['display', 'email', 'referral']) c$$,
  'the earlier refund (299 over 300/300/300) is split first, over whole parts: 99.67 each -> 99 and the two spare cents by md5');

-- Restatement re-splits: a late touch moves linear's credit, and the refunds follow.
insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c1', 'display', '2025-05-29 10:00Z');
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000b1') \g /dev/null
select apportion.recompute_window('2025-06-01', '2025-06-02', 'rf-linear') \g /dev/null
select results_eq(
  $$select channel, sum(refunded_cents)::bigint from apportion.refund_allocations where event_id = '00000000-0000-4000-8000-0000000b0001' and model_version = 'rf-linear'
     group by channel order by channel$$,
  $$values ('display', 500::bigint), ('email', 500::bigint)$$,
  'linear now gives email 500 and display 500: the refunds (1000 in all) are split over the new allocation');

select results_eq(
  $$select refund_id, channel, refunded_cents, ended_reason from apportion.refund_allocation_history
     where event_id = '00000000-0000-4000-8000-0000000b0001' and model_version = 'rf-linear' order by refund_id$$,
  $$values ('00000000-0000-4000-8000-0000000f0001'::uuid, 'email', 101::bigint, 'recompute'),
           ('00000000-0000-4000-8000-0000000f0002'::uuid, 'email', 899::bigint, 'recompute')$$,
  'the splits the restatement replaced are in the history, ended by the recompute');
select is((select array_agg(distinct change_reason) from apportion.refund_allocations where model_version = 'rf-linear' and event_id = '00000000-0000-4000-8000-0000000b0001'),
          array['recompute'], 'the new splits say why they were written');
select is((select count(*) from apportion.refund_allocation_history where model_version = 'rf-fixed'), 0::bigint,
          'a split that a recompute leaves unchanged is not rewritten (no history under rf-fixed, whose allocation never changed)');

-- Reports: gross, refunded, net, by event day and by refund day, as the reader.
select apportion_test.as_role('apportion_reader', '00000000-0000-4000-8000-0000000000b1') \g /dev/null
select results_eq(
  $$select basis, day, gross_cents::bigint, refunded_cents::bigint, net_cents::bigint from apportion.daily_channel_net_revenue
     where model_version = 'rf-fixed' and channel = 'email' order by basis, day$$,
  $$values ('accrual', '2025-06-01'::date, 950::bigint, 650::bigint, 300::bigint),
           ('cash', '2025-06-01', 950, 0, 950), ('cash', '2025-06-02', 0, 149, -149),
           ('cash', '2025-06-03', 0, 51, -51), ('cash', '2025-06-05', 0, 449, -449),
           ('cash', '2025-06-07', 0, 1, -1)$$,
  'email under rf-fixed (event 1: 500 credited, refunded 51 + 449; event 2: 450, refunded 149 + 1): accrual on the events'' day, cash on each refund''s day');
select is((select count(*) from apportion.refunds), 4::bigint, 'the reader reads its tenant''s refunds');

-- Isolation and roles.
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-0000000000b2') \g /dev/null
select is((select count(*) from apportion.refunds) + (select count(*) from apportion.refund_allocations), 0::bigint,
          'another tenant sees no refunds nor splits');
select throws_ok($$insert into apportion.refunds (event_id, amount_cents, occurred_at) values ('00000000-0000-4000-8000-0000000b0002', 1, '2025-06-06')$$,
  '23503', null, 'nor can it refund this tenant''s event');
select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000b1') \g /dev/null
select throws_ok($$insert into apportion.refunds (event_id, amount_cents, occurred_at) values ('00000000-0000-4000-8000-0000000b0002', 1, '2025-06-06')$$,
  '42501', null, 'the worker cannot write refunds (ingest data)');

select * from finish();
rollback;
