-- The daily report (apportion.daily_channel_revenue) as an analyst reads it,
-- as apportion_reader: one tenant only, revenue summed per day, model
-- version, currency and channel, the models side by side over the same
-- revenue; sums exact past bigint; with no tenant set it is empty.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a (1000 USD on 2025-06-10)
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b (3000 + 500 EUR on 2025-06-10)
begin;
\ir lib/fixtures.sql
select plan(4);

\o /dev/null
select apportion_test.make_tenant('A', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion_test.make_tenant('B', 'bbbbbbbb-0000-4000-8000-00000000000b');
select apportion.register_model('rep-linear', 'linear');
select apportion.register_model('rep-last', 'last_touch');

-- The same customer id in both tenants; B has a second customer that day.
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-00000000000a', 'shared', 'email', '2025-06-09 12:00Z');
select apportion_test.make_event('aaaaaaaa-0000-4000-8000-00000000000a', 'shared', '2025-06-10 12:00Z', 1000, 'USD');
select apportion_test.make_touch('bbbbbbbb-0000-4000-8000-00000000000b', 'shared', 'display', '2025-06-09 13:00Z');
select apportion_test.make_touch('bbbbbbbb-0000-4000-8000-00000000000b', 'shared', 'referral', '2025-06-09 14:00Z');
select apportion_test.make_event('bbbbbbbb-0000-4000-8000-00000000000b', 'shared', '2025-06-10 12:00Z', 3000, 'EUR');
select apportion_test.make_touch('bbbbbbbb-0000-4000-8000-00000000000b', 'other', 'display', '2025-06-10 09:00Z');
select apportion_test.make_event('bbbbbbbb-0000-4000-8000-00000000000b', 'other', '2025-06-10 18:00Z', 500, 'EUR');
\o

-- The worker allocates both tenants under both models.
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null
select r.* from unnest(array['rep-linear', 'rep-last']) m, apportion.recompute_window('2025-06-01', '2025-07-01', m) r \g /dev/null
select apportion_test.as_admin() \g /dev/null
select apportion_test.as_role('apportion_worker', 'bbbbbbbb-0000-4000-8000-00000000000b') \g /dev/null
select r.* from unnest(array['rep-linear', 'rep-last']) m, apportion.recompute_window('2025-06-01', '2025-07-01', m) r \g /dev/null
select apportion_test.as_admin() \g /dev/null

-- The reader of tenant B ------------------------------------------------------------
select apportion_test.as_role('apportion_reader', 'bbbbbbbb-0000-4000-8000-00000000000b') \g /dev/null
select results_eq(
  $$select tenant_id, day, model_version, currency, channel, revenue_cents, event_count
      from apportion.daily_channel_revenue order by model_version, channel$$,
  $$values ('bbbbbbbb-0000-4000-8000-00000000000b'::uuid, '2025-06-10'::date, 'rep-last'::text, 'EUR'::char(3), 'display'::text, 500::numeric, 1::bigint),
           ('bbbbbbbb-0000-4000-8000-00000000000b', '2025-06-10', 'rep-last', 'EUR', 'referral', 3000, 1),
           ('bbbbbbbb-0000-4000-8000-00000000000b', '2025-06-10', 'rep-linear', 'EUR', 'display', 2000, 2),
           ('bbbbbbbb-0000-4000-8000-00000000000b', '2025-06-10', 'rep-linear', 'EUR', 'referral', 1500, 1)$$,
  'daily_channel_revenue as apportion_reader: only tenant B''s revenue, summed per day, model, currency and channel');
select results_eq(
  $$select model_version, sum(revenue_cents)::bigint from apportion.daily_channel_revenue group by 1 order by 1$$,
  $$values ('rep-last'::text, 3500::bigint), ('rep-linear', 3500::bigint)$$,
  'the models side by side: each splits the same 3500 cents of the day');
select apportion_test.as_admin() \g /dev/null

-- Sums past bigint: two events of the largest bigint revenue, one day, one channel --
\o /dev/null
select apportion_test.make_tenant('C', 'cccccccc-0000-4000-8000-00000000000c');
select apportion_test.make_touch('cccccccc-0000-4000-8000-00000000000c', 'big-1', 'email', '2025-06-09 12:00Z');
select apportion_test.make_touch('cccccccc-0000-4000-8000-00000000000c', 'big-2', 'email', '2025-06-09 12:00Z');
select apportion_test.make_event('cccccccc-0000-4000-8000-00000000000c', 'big-1', '2025-06-10 12:00Z', 9223372036854775807, 'USD');
select apportion_test.make_event('cccccccc-0000-4000-8000-00000000000c', 'big-2', '2025-06-10 13:00Z', 9223372036854775807, 'USD');
\o
select apportion_test.as_role('apportion_worker', 'cccccccc-0000-4000-8000-00000000000c') \g /dev/null
select r.* from apportion.recompute_window('2025-06-01', '2025-07-01', 'rep-linear') r \g /dev/null
select apportion_test.as_admin() \g /dev/null
select apportion_test.as_role('apportion_reader', 'cccccccc-0000-4000-8000-00000000000c') \g /dev/null
select results_eq(
  $$select channel, revenue_cents, event_count from apportion.daily_channel_revenue$$,
  $$values ('email'::text, 18446744073709551614::numeric, 2::bigint)$$,
  'two events of bigint-max revenue on one day and channel: the day sums exactly, past bigint (no 22003)');
select apportion_test.as_admin() \g /dev/null

-- The reader without a tenant --------------------------------------------------------
select apportion_test.as_role('apportion_reader') \g /dev/null
select is((select count(*) from apportion.daily_channel_revenue), 0::bigint,
  'reader without a tenant: the report is empty');
select apportion_test.as_admin() \g /dev/null

select * from finish();
rollback;
