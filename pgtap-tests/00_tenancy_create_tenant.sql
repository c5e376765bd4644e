-- Tenant administration: create_tenant makes the tenant and its default
-- channel taxonomy; bad input is refused with 22023 and writes nothing; only
-- the owner (admin) may create tenants or register models.
begin;
\ir lib/isolate.sql
select plan(27);

-- As the owner role (what an admin connection acts as) ------------------------
set local role apportion_owner;
select is(apportion.create_tenant('Acme', 'aaaaaaaa-0000-4000-8000-00000000000a'), 'aaaaaaaa-0000-4000-8000-00000000000a'::uuid,
  'create_tenant returns the id it was given');
select results_eq($$select id, name from apportion.tenants where id = 'aaaaaaaa-0000-4000-8000-00000000000a'$$,
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'Acme')$$,
  'create_tenant stores the tenant and its name');
select set_eq(
  $$select code from apportion.channels where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a'$$,
  array['direct', 'email', 'google_search', 'organic_search', 'paid_social', 'referral', 'display', 'unattributed'],
  'the new tenant gets the 8 default channels');
select results_eq(
  $$select code from apportion.channels where tenant_id = 'aaaaaaaa-0000-4000-8000-00000000000a' and is_direct$$,
  array['direct'],
  'only direct is marked is_direct');

select ok(apportion.create_tenant('Beta') is not null, 'create_tenant without an id generates one');
select is((select count(*) from apportion.channels c join apportion.tenants t on t.id = c.tenant_id where t.name = 'Beta'), 8::bigint,
  'a tenant with a generated id gets the 8 default channels too');

-- Bad input: 22023, nothing written.
select throws_ok($$select apportion.create_tenant('')$$, '22023', 'create_tenant: p_name must be a non-empty name', 'empty name refused (22023)');
select throws_ok($$select apportion.create_tenant('   ')$$, '22023', 'create_tenant: p_name must be a non-empty name', 'blank name refused (22023)');
select throws_ok($$select apportion.create_tenant(null)$$, '22023', 'create_tenant: p_name must be a non-empty name', 'null name refused (22023)');
select throws_ok($$select apportion.create_tenant('Gamma', null)$$, '22023', 'create_tenant: p_id must not be null', 'null id refused (22023)');
select throws_ok($$select apportion.create_tenant('Acme again', 'aaaaaaaa-0000-4000-8000-00000000000a')$$, '23505', null,
  'an id already in use refused (23505)');
select is((select count(*) from apportion.tenants), 2::bigint, 'the refused calls created no tenant');
select is((select count(*) from apportion.channels), 16::bigint, 'the refused calls created no channel (8 per tenant)');
select results_eq($$select name from apportion.tenants where id = 'aaaaaaaa-0000-4000-8000-00000000000a'$$, array['Acme'],
  'the refused duplicate left the existing tenant as it was');

select lives_ok($$select apportion.register_model('admin-last-touch', 'last_touch')$$, 'the owner registers a model');
reset role;

-- Runtime roles: neither create_tenant nor register_model ----------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);

set local role apportion_ingest;
select throws_ok($$select apportion.create_tenant('Evil', 'eeeeeeee-0000-4000-8000-00000000000e')$$,
  '42501', 'permission denied for function create_tenant', 'ingest cannot execute create_tenant (42501)');
select throws_ok($$select apportion.register_model('evil-model', 'linear')$$,
  '42501', 'permission denied for function register_model', 'ingest cannot execute register_model (42501)');
-- Its twin: what ingest may do with models is switch them on for its tenant.
select lives_ok($$select apportion.activate_model('admin-last-touch')$$, 'ingest activates a registered model for its tenant');
reset role;

set local role apportion_worker;
select throws_ok($$select apportion.create_tenant('Evil', 'eeeeeeee-0000-4000-8000-00000000000e')$$,
  '42501', 'permission denied for function create_tenant', 'worker cannot execute create_tenant (42501)');
select throws_ok($$select apportion.register_model('evil-model', 'linear')$$,
  '42501', 'permission denied for function register_model', 'worker cannot execute register_model (42501)');
reset role;

set local role apportion_reader;
select throws_ok($$select apportion.create_tenant('Evil', 'eeeeeeee-0000-4000-8000-00000000000e')$$,
  '42501', 'permission denied for function create_tenant', 'reader cannot execute create_tenant (42501)');
select throws_ok($$select apportion.register_model('evil-model', 'linear')$$,
  '42501', 'permission denied for function register_model', 'reader cannot execute register_model (42501)');
reset role;

-- Nor can a runtime role create a tenant by hand.
set local role apportion_ingest;
select throws_ok($$insert into apportion.tenants (id, name) values ('eeeeeeee-0000-4000-8000-00000000000e', 'Evil')$$,
  '42501', 'permission denied for table tenants', 'ingest cannot insert into tenants (42501)');
reset role;
set local role apportion_worker;
select throws_ok($$insert into apportion.tenants (id, name) values ('eeeeeeee-0000-4000-8000-00000000000e', 'Evil')$$,
  '42501', 'permission denied for table tenants', 'worker cannot insert into tenants (42501)');
reset role;

select is((select count(*) from apportion.tenants where id = 'eeeeeeee-0000-4000-8000-00000000000e'), 0::bigint,
  'no refused call created a tenant');
select is((select count(*) from apportion.attribution_models where model_version = 'evil-model'), 0::bigint,
  'no refused call registered a model');
select results_eq($$select tenant_id, model_version from apportion.tenant_models$$,
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'admin-last-touch')$$,
  'the activation is stored for the ingest role''s tenant');

select * from finish();
rollback;
