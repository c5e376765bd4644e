-- apportion_allocator, the role of services that call the allocation
-- functions, and tenant bindings, tried from the outside: real logins
-- (SET SESSION AUTHORIZATION), a tenant set or another one, and what an
-- attacker would try. The allocator allocates for its tenant under RLS and
-- has nothing of the queue or the operators' views. A login bound to tenants
-- (apportion.bind_login) that sets another tenant reads nothing and writes
-- nothing: every tenant policy refuses its statements with 42501 where the
-- tenant has rows (and it sees no row where it has none), whatever role it SETs.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
\ir lib/fixtures.sql
select plan(27);

\o /dev/null
select apportion_test.make_tenant('tenant a', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion_test.make_tenant('tenant b', 'bbbbbbbb-0000-4000-8000-00000000000b');
select apportion.register_model('bind-linear', 'linear');
select apportion_test.make_touch('aaaaaaaa-0000-4000-8000-00000000000a', 'c1', 'email', '2026-01-01 00:00Z');
select apportion_test.make_event('aaaaaaaa-0000-4000-8000-00000000000a', 'c1', '2026-01-02 00:00Z', 1000, 'EUR', p_id => 'aaaaaaaa-0000-4000-8000-0000000e0001');
select apportion_test.make_touch('bbbbbbbb-0000-4000-8000-00000000000b', 'c1', 'display', '2026-01-01 00:00Z');
select apportion_test.make_event('bbbbbbbb-0000-4000-8000-00000000000b', 'c1', '2026-01-02 00:00Z', 3000, 'EUR', p_id => 'bbbbbbbb-0000-4000-8000-0000000e0002');
-- Logins (rolled back with the test).
create role t_alloc_a login;
grant apportion_allocator to t_alloc_a;
create role t_alloc_free login;
grant apportion_allocator to t_alloc_free;
create role t_ingest_a login;
grant apportion_ingest to t_ingest_a;
create role t_worker_a login;
grant apportion_worker to t_worker_a;
create role t_nologin nologin;
select apportion.bind_login('t_alloc_a', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.bind_login('t_alloc_a', 'aaaaaaaa-0000-4000-8000-00000000000a'); -- idempotent
\o
select apportion_test.make_job('bbbbbbbb-0000-4000-8000-00000000000b', 'housekeeping', 'noop', p_state => 'running', p_locked_by => 'w1',
  p_locked_until => now() + interval '1 minute') as b_job \gset
\o /dev/null
select apportion.bind_login('t_ingest_a', 'aaaaaaaa-0000-4000-8000-00000000000a');
select apportion.bind_login('t_worker_a', 'aaaaaaaa-0000-4000-8000-00000000000a');
\o

-- apportion_allocator, not bound: its tenant's allocation, nothing else -----------
set session authorization t_alloc_free;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', false);
select is((select sum(allocated_revenue_cents) from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000e0001', 'bind-linear')),
  1000::numeric, 'allocator, tenant A: allocate_event splits A''s event');
select is((select count(*) from apportion.attribution_allocations), 1::bigint, 'and reads A''s allocations only');
select throws_ok($$select * from apportion.claim_jobs('w-attacker', '{attribution}', 10)$$, '42501',
  'permission denied for function claim_jobs', 'allocator: no queue claiming (42501)');
select throws_ok($$select * from apportion.open_failures()$$, '42501',
  'permission denied for function open_failures', 'allocator: no cross-tenant failures view (42501)');
select throws_ok($$select * from apportion.queue_overview()$$, '42501',
  'permission denied for function queue_overview', 'allocator: no cross-tenant queue view (42501)');
select throws_ok($$select count(*) from apportion.jobs$$, '42501', 'permission denied for table jobs', 'allocator: no jobs table (42501)');
select throws_ok($$select count(*) from apportion.worker_failed_jobs$$, '42501',
  'permission denied for table worker_failed_jobs', 'allocator: no failures table (42501)');
select throws_ok($$select apportion.enqueue('attribution', 'allocate_event', '{}')$$, '42501',
  'permission denied for function enqueue', 'allocator: no enqueue (42501)');
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c9', '2026-01-03 00:00Z', 1, 'EUR')$$,
  '42501', 'permission denied for table attribution_events', 'allocator: ingest data is read-only (42501)');
select throws_ok($$select * from apportion.tenant_bindings$$, '42501', 'permission denied for table tenant_bindings',
  'allocator: cannot read the bindings (42501)');
select throws_ok($$select apportion.bind_login('t_alloc_free', 'bbbbbbbb-0000-4000-8000-00000000000b')$$, '42501',
  'permission denied for function bind_login', 'allocator: cannot bind itself (42501)');
reset session authorization;

-- A login bound to tenant A ------------------------------------------------------
set session authorization t_alloc_a;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', false);
select is((select count(*) from apportion.attribution_events), 1::bigint, 'bound to A, tenant A set: reads A''s events');
select lives_ok($$select * from apportion.allocate_event('aaaaaaaa-0000-4000-8000-0000000e0001', 'bind-linear')$$,
  'bound to A, tenant A set: allocates A''s event');
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', false);
select throws_ok($$select count(*) from apportion.attribution_events$$, '42501',
  'login t_alloc_a may not act for tenant bbbbbbbb-0000-4000-8000-00000000000b: it is bound to other tenants (apportion.tenant_bindings)',
  'bound to A, tenant B set: reading B''s events is refused (42501)');
select throws_ok($$select * from apportion.allocate_event('bbbbbbbb-0000-4000-8000-0000000e0002', 'bind-linear')$$, '42501', null,
  'bound to A, tenant B set: allocating B''s event is refused (42501)');
select throws_ok($$select * from apportion.recompute_window('2026-01-01', '2026-02-01', 'bind-linear')$$, '42501', null,
  'bound to A, tenant B set: recompute_window over B is refused (42501)');
select is((select count(*) from apportion.daily_channel_revenue), 0::bigint,
  'bound to A, tenant B set: B''s report shows nothing (B has no allocations yet: where the tenant has rows, the statement fails with 42501)');
set role apportion_allocator;
select throws_ok($$select count(*) from apportion.tenants$$, '42501', null,
  'SET ROLE to the group role does not shed the binding (the login is session_user)');
reset role;
reset session authorization;
select is((select count(*) from apportion.attribution_allocations where tenant_id = 'bbbbbbbb-0000-4000-8000-00000000000b'), 0::bigint,
  'nothing was written for B');

-- A bound ingest login cannot write another tenant's rows; a bound worker cannot run its jobs
set session authorization t_ingest_a;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', false);
select throws_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c2', 'email', '2026-01-01 00:00Z')$$, '42501', null,
  'ingest login bound to A, tenant B set: a touchpoint for B is refused (42501)');
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', false);
select lives_ok($$insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c2', 'email', '2026-01-01 00:00Z')$$,
  'twin: the same touchpoint for A is accepted');
reset session authorization;
set session authorization t_worker_a;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', false);
select throws_ok(format($$select * from apportion.run_tenant_jobs('w1', 'bbbbbbbb-0000-4000-8000-00000000000b', array[%s::bigint])$$, :b_job), '42501', null,
  'worker login bound to A: running a job of tenant B is refused (42501)');
reset session authorization;

-- An unbound login of the same role is not restricted -----------------------------
set session authorization t_alloc_free;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', false);
select is((select sum(allocated_revenue_cents) from apportion.allocate_event('bbbbbbbb-0000-4000-8000-0000000e0002', 'bind-linear')),
  3000::numeric, 'an unbound allocator login acts for B as before');
reset session authorization;
select set_config('app.tenant_id', '', false);

-- The owner's functions ----------------------------------------------------------
select throws_ok($$select apportion.bind_login('t_nologin', 'aaaaaaaa-0000-4000-8000-00000000000a')$$, '22023',
  'bind_login: t_nologin is not a login role', 'bind_login refuses a role that cannot log in (22023)');
select throws_ok($$select apportion.bind_login('t_alloc_a', 'cccccccc-0000-4000-8000-00000000000c')$$, '22023',
  'bind_login: tenant cccccccc-0000-4000-8000-00000000000c does not exist', 'bind_login refuses an unknown tenant (22023)');
select ok(apportion.unbind_login('t_alloc_a', 'aaaaaaaa-0000-4000-8000-00000000000a'), 'unbind_login removes a binding');
select ok(not apportion.unbind_login('t_alloc_a', 'aaaaaaaa-0000-4000-8000-00000000000a'), 'and says so when there was none');

select * from finish();
rollback;
