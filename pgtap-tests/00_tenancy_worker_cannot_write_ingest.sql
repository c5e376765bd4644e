-- The worker must never mutate ingest data. It is
-- refused by privileges -- "permission denied for table", before any trigger
-- or policy runs -- for its own tenant's rows too. Ingest is append-only:
-- apportion_ingest may INSERT the same rows but never UPDATE or DELETE them.
begin;
\ir lib/fixtures.sql
select plan(22);

-- Fixtures, as the superuser: one touchpoint and one event of tenant A.
\o /dev/null
select apportion_test.make_tenant('tenant a', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-00000000000a', 'cust-1', 'email', '2026-01-01 00:00Z', 'tp-1');
select apportion_test.make_event('aaaaaaaa-0000-4000-8000-00000000000a', 'cust-1', '2026-01-02 00:00Z', 1000, 'EUR',
  p_id => 'aaaaaaaa-0000-4000-8000-0000000e0001', p_external_id => 'ord-1');
\o

-- apportion_worker, its tenant set ------------------------------------------------
select apportion_test.as_role('apportion_worker', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null
select is((select count(*) from apportion.touchpoints), 1::bigint, 'worker: reads its tenant''s touchpoints');
select is((select count(*) from apportion.attribution_events), 1::bigint, 'worker: reads its tenant''s events');

select throws_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('cust-2', 'email', '2026-01-03 00:00Z')$$,
  '42501', 'permission denied for table touchpoints', 'worker: INSERT into touchpoints refused by privilege');
select throws_ok($$update apportion.touchpoints set campaign = 'rewritten'$$,
  '42501', 'permission denied for table touchpoints', 'worker: UPDATE of touchpoints refused by privilege');
select throws_ok($$delete from apportion.touchpoints$$,
  '42501', 'permission denied for table touchpoints', 'worker: DELETE from touchpoints refused by privilege');
select throws_ok($$truncate apportion.touchpoints$$,
  '42501', 'permission denied for table touchpoints', 'worker: TRUNCATE of touchpoints refused by privilege');

select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('cust-2', '2026-01-03 00:00Z', 500, 'EUR')$$,
  '42501', 'permission denied for table attribution_events', 'worker: INSERT into attribution_events refused by privilege');
select throws_ok($$update apportion.attribution_events set revenue_cents = 0$$,
  '42501', 'permission denied for table attribution_events', 'worker: UPDATE of attribution_events refused by privilege');
select throws_ok($$delete from apportion.attribution_events$$,
  '42501', 'permission denied for table attribution_events', 'worker: DELETE from attribution_events refused by privilege');
select throws_ok($$truncate apportion.attribution_events$$,
  '42501', 'permission denied for table attribution_events', 'worker: TRUNCATE of attribution_events refused by privilege');
select apportion_test.as_admin() \g /dev/null

-- apportion_ingest, same tenant: the same INSERTs succeed, nothing else does.
select apportion_test.as_role('apportion_ingest', 'aaaaaaaa-0000-4000-8000-00000000000a') \g /dev/null
select lives_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('cust-2', 'email', '2026-01-03 00:00Z')$$,
  'ingest: the same INSERT into touchpoints succeeds');
select throws_ok($$update apportion.touchpoints set campaign = 'rewritten'$$,
  '42501', 'permission denied for table touchpoints', 'ingest: UPDATE of touchpoints refused (append-only)');
select throws_ok($$delete from apportion.touchpoints$$,
  '42501', 'permission denied for table touchpoints', 'ingest: DELETE from touchpoints refused (append-only)');
select throws_ok($$truncate apportion.touchpoints$$,
  '42501', 'permission denied for table touchpoints', 'ingest: TRUNCATE of touchpoints refused');

select lives_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('cust-2', '2026-01-03 00:00Z', 500, 'EUR')$$,
  'ingest: the same INSERT into attribution_events succeeds');
select throws_ok($$update apportion.attribution_events set revenue_cents = 0$$,
  '42501', 'permission denied for table attribution_events', 'ingest: UPDATE of attribution_events refused (append-only)');
select throws_ok($$delete from apportion.attribution_events$$,
  '42501', 'permission denied for table attribution_events', 'ingest: DELETE from attribution_events refused (append-only)');
select throws_ok($$truncate apportion.attribution_events$$,
  '42501', 'permission denied for table attribution_events', 'ingest: TRUNCATE of attribution_events refused');
select apportion_test.as_admin() \g /dev/null

-- The superuser sees the fixture rows unchanged, plus the ingest role's two.
select results_eq(
  $$select customer_id, campaign from apportion.touchpoints order by customer_id$$,
  $$values ('cust-1', null::text), ('cust-2', null::text)$$,
  'touchpoints: the fixture row unchanged, plus the row ingest added');
select results_eq(
  $$select customer_id, revenue_cents from apportion.attribution_events order by customer_id$$,
  $$values ('cust-1', 1000::bigint), ('cust-2', 500::bigint)$$,
  'attribution_events: the fixture row unchanged, plus the row ingest added');

-- Privileges, not a trigger: the catalog says so independently of behaviour.
select ok(not has_table_privilege('apportion_worker', 'apportion.touchpoints', 'INSERT, UPDATE, DELETE, TRUNCATE')
          and not has_any_column_privilege('apportion_worker', 'apportion.touchpoints', 'INSERT, UPDATE'),
  'worker holds no write privilege on touchpoints, at table or column level');
select ok(not has_table_privilege('apportion_worker', 'apportion.attribution_events', 'INSERT, UPDATE, DELETE, TRUNCATE')
          and not has_any_column_privilege('apportion_worker', 'apportion.attribution_events', 'INSERT, UPDATE'),
  'worker holds no write privilege on attribution_events, at table or column level');

select * from finish();
rollback;
