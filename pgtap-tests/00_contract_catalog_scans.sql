-- The security model as catalog scans over apportion's schemas (apportion
-- and apportion_internal), so objects added later are covered without
-- touching this file:
--   (a) no runtime role is superuser, BYPASSRLS or CREATEROLE, belongs to
--       another role (least of all apportion_owner), or owns anything in
--       schema apportion;
--   (b) every table with a tenant_id column has ENABLE and FORCE row level
--       security (partitions and partitioned parents included);
--   (c) every SECURITY DEFINER function pins search_path (without public or
--       $user), is owned by apportion_owner, and is not EXECUTE-able by PUBLIC;
--   (d) no function in the schema is EXECUTE-able by PUBLIC;
--   (e) no view bypasses the caller's RLS (views are security_invoker; no
--       materialized view holds tenant rows);
--   (f) no policy that applies to a runtime role or PUBLIC is plain "true";
--   (g) no runtime role (nor PUBLIC) may use schema apportion_internal or
--       execute anything in it: internal helpers are for triggers, the owner
--       and SECURITY DEFINER functions only.
-- Each scan is a temporary view that lists violations; the test asserts it
-- is empty, then plants one violation of each kind (rolled back with the
-- test) and asserts the same view finds it, so no scan passes vacuously.
begin;
select plan(25);

create temp view runtime_roles as
select r.oid, r.rolname::text as rolname
  from pg_roles r
 where r.rolname in ('apportion_ingest', 'apportion_worker', 'apportion_reader');

-- (a) ---------------------------------------------------------------------------
create temp view runtime_role_problems as
select r.rolname, 'superuser' as problem from runtime_roles r join pg_roles p on p.oid = r.oid where p.rolsuper
union all
select r.rolname, 'bypassrls' from runtime_roles r join pg_roles p on p.oid = r.oid where p.rolbypassrls
union all
select r.rolname, 'createrole' from runtime_roles r join pg_roles p on p.oid = r.oid where p.rolcreaterole
union all
select r.rolname, 'member of ' || g.rolname from runtime_roles r
  join pg_auth_members m on m.member = r.oid join pg_roles g on g.oid = m.roleid
union all
select r.rolname, 'can act as apportion_owner' from runtime_roles r
 where pg_has_role(r.oid, 'apportion_owner', 'member');

-- Objects a runtime role owns, directly or through a role it belongs to.
create temp view runtime_owned_objects as
select r.rolname, o.kind, o.name
  from (select 'schema' as kind, n.nspname::text as name, n.nspowner as owner
          from pg_namespace n where n.nspname in ('apportion', 'apportion_internal')
        union all
        select 'relation', c.relname::text, c.relowner
          from pg_class c where c.relnamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
        union all
        select 'function', p.oid::regprocedure::text, p.proowner
          from pg_proc p where p.pronamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
        union all
        select 'type', t.typname::text, t.typowner
          from pg_type t where t.typnamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)) o
  join runtime_roles r on pg_has_role(r.oid, o.owner, 'member');

-- (b) ---------------------------------------------------------------------------
create temp view tenant_tables as
select c.oid, c.relname::text as relname, c.relrowsecurity, c.relforcerowsecurity
  from pg_class c
  join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
 where c.relnamespace = 'apportion'::regnamespace and c.relkind in ('r', 'p');

create temp view tenant_tables_without_forced_rls as
select relname from tenant_tables where not (relrowsecurity and relforcerowsecurity);

-- (c) ---------------------------------------------------------------------------
create temp view definer_function_problems as
select p.oid::regprocedure::text as fn, v.problem
  from pg_proc p
 cross join lateral (values
   ('no pinned search_path',
    not exists (select from unnest(p.proconfig) c where c like 'search_path=%')),
   ('search_path includes public or $user',
    exists (select from unnest(p.proconfig) c
             cross join unnest(string_to_array(substr(c, length('search_path=') + 1), ',')) s
             where c like 'search_path=%' and btrim(btrim(s), '"') in ('public', '$user'))),
   ('not owned by apportion_owner', pg_get_userbyid(p.proowner) <> 'apportion_owner'),
   ('PUBLIC can execute', has_function_privilege('public', p.oid, 'EXECUTE'))
 ) v(problem, bad)
 where p.pronamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace) and p.prosecdef and v.bad;

-- (d) ---------------------------------------------------------------------------
create temp view public_executable_functions as
select p.oid::regprocedure::text as fn
  from pg_proc p
 where p.pronamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
   and has_function_privilege('public', p.oid, 'EXECUTE');

-- (g) ---------------------------------------------------------------------------
create temp view internal_reachable as
select r.rolname, 'usage on schema apportion_internal' as what
  from runtime_roles r where has_schema_privilege(r.oid, 'apportion_internal', 'USAGE')
union all
select 'public', 'usage on schema apportion_internal'
 where exists (select from pg_namespace n, aclexplode(n.nspacl) a
                where n.nspname = 'apportion_internal' and a.grantee = 0 and a.privilege_type = 'USAGE')
union all
select r.rolname, 'execute ' || p.oid::regprocedure::text
  from pg_proc p cross join runtime_roles r
 where p.pronamespace = 'apportion_internal'::regnamespace and has_function_privilege(r.oid, p.oid, 'EXECUTE')
union all
select 'public', 'execute ' || p.oid::regprocedure::text
  from pg_proc p
 where p.pronamespace = 'apportion_internal'::regnamespace and has_function_privilege('public', p.oid, 'EXECUTE');

-- (e) ---------------------------------------------------------------------------
create temp view views_bypassing_rls as
select c.relname::text as relname, 'view without security_invoker' as problem
  from pg_class c
 where c.relnamespace = 'apportion'::regnamespace and c.relkind = 'v'
   and not exists (select from unnest(c.reloptions) o
                    where lower(o) in ('security_invoker=true', 'security_invoker=on', 'security_invoker=1', 'security_invoker=yes'))
union all
select c.relname::text, 'materialized view with tenant_id (no RLS on materialized views)'
  from pg_class c
  join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
 where c.relnamespace = 'apportion'::regnamespace and c.relkind = 'm';

-- (f) ---------------------------------------------------------------------------
create temp view open_policies as
select c.relname::text || '.' || p.polname as policy
  from pg_policy p
  join pg_class c on c.oid = p.polrelid
 where c.relnamespace = 'apportion'::regnamespace
   and (pg_get_expr(p.polqual, p.polrelid) = 'true' or pg_get_expr(p.polwithcheck, p.polrelid) = 'true')
   and (0 = any (p.polroles)  -- PUBLIC
        or exists (select from unnest(p.polroles) pr join runtime_roles r on pg_has_role(r.oid, pr, 'member')));

-- The scans, on the schema as migrated ---------------------------------------------
select is((select count(*) from runtime_roles), 3::bigint, 'the three runtime roles exist');
select is((select coalesce(array_agg(rolname || ': ' || problem order by rolname, problem), '{}') from runtime_role_problems), '{}'::text[],
  '(a) no runtime role is superuser, bypassrls, createrole, or a member of any role (apportion_owner included)');
select is((select coalesce(array_agg(rolname || ' owns ' || kind || ' ' || name order by rolname, kind, name), '{}') from runtime_owned_objects), '{}'::text[],
  '(a) no runtime role owns anything in schema apportion');
select ok((select array_agg(relname) from tenant_tables) @> array['channels', 'touchpoints', 'attribution_events',
          'tenant_models', 'attribution_allocations', 'jobs', 'jobs_live', 'jobs_done', 'worker_failed_jobs'],
  '(b) the scan covers the tenant tables, partitions included (it finds them by their tenant_id column)');
select is((select coalesce(array_agg(relname order by relname), '{}') from tenant_tables_without_forced_rls), '{}'::text[],
  '(b) every table with tenant_id in schema apportion has ENABLE and FORCE row level security');
select ok(relrowsecurity and relforcerowsecurity, '(b) apportion.tenants (keyed by id) has ENABLE and FORCE row level security')
  from pg_class where oid = 'apportion.tenants'::regclass;
select is((select coalesce(array_agg(fn || ': ' || problem order by fn, problem), '{}') from definer_function_problems), '{}'::text[],
  '(c) every SECURITY DEFINER function pins search_path, is owned by apportion_owner and is not EXECUTE-able by PUBLIC');
select is((select coalesce(array_agg(fn order by fn), '{}') from public_executable_functions), '{}'::text[],
  '(d) no function in schema apportion is EXECUTE-able by PUBLIC');
select is((select coalesce(array_agg(relname || ': ' || problem order by relname), '{}') from views_bypassing_rls), '{}'::text[],
  '(e) every view in schema apportion runs as the caller (security_invoker), no materialized view holds tenant rows');
select is((select coalesce(array_agg(policy order by policy), '{}') from open_policies), '{}'::text[],
  '(f) no policy open to a runtime role or PUBLIC is plain true');
select ok((select count(*) from pg_proc where pronamespace = 'apportion_internal'::regnamespace) > 0,
  '(g) the scan has internal helpers to look at');
select is((select coalesce(array_agg(rolname || ': ' || what order by rolname, what), '{}') from internal_reachable), '{}'::text[],
  '(g) no runtime role nor PUBLIC can use schema apportion_internal or execute any function in it');

-- Self-checks: plant one violation of each kind; each scan must find it ---------
create table apportion.scan_probe (tenant_id uuid);
alter table apportion.scan_probe owner to apportion_reader;
create policy scan_probe_open on apportion.scan_probe to public using (true);
create view apportion.scan_probe_view as select tenant_id from apportion.scan_probe;
create materialized view apportion.scan_probe_matview as select tenant_id from apportion.scan_probe;
-- Created by the superuser: EXECUTE for PUBLIC by default, no search_path.
create function apportion.scan_probe_definer() returns integer language sql security definer as 'select 1';
create function apportion.scan_probe_public_path() returns integer language sql security definer
  set search_path = public, pg_temp as 'select 1';
create function apportion_internal.scan_probe_helper() returns integer language sql as 'select 1';
revoke execute on function apportion_internal.scan_probe_helper() from public;
grant execute on function apportion_internal.scan_probe_helper() to apportion_ingest;
grant usage on schema apportion_internal to apportion_reader;
create function apportion_internal.scan_probe_public() returns integer language sql as 'select 1';
alter role apportion_reader bypassrls;
grant apportion_owner to apportion_worker;

select ok(('apportion_reader', 'bypassrls') in (select rolname, problem from runtime_role_problems),
  'self-check (a): a runtime role with BYPASSRLS is found');
select ok(('apportion_worker', 'member of apportion_owner') in (select rolname, problem from runtime_role_problems)
          and ('apportion_worker', 'can act as apportion_owner') in (select rolname, problem from runtime_role_problems),
  'self-check (a): a runtime role granted apportion_owner is found');
select ok(('apportion_reader', 'relation', 'scan_probe') in (select rolname, kind, name from runtime_owned_objects),
  'self-check (a): a table owned by a runtime role is found');
select ok('scan_probe' in (select relname from tenant_tables_without_forced_rls),
  'self-check (b): a table with tenant_id and no row level security is found');
select ok(('apportion.scan_probe_definer()', 'no pinned search_path') in (select fn, problem from definer_function_problems),
  'self-check (c): a SECURITY DEFINER function without search_path is found');
select ok(('apportion.scan_probe_public_path()', 'search_path includes public or $user') in (select fn, problem from definer_function_problems),
  'self-check (c): a SECURITY DEFINER function whose search_path includes public is found');
select ok(('apportion.scan_probe_definer()', 'PUBLIC can execute') in (select fn, problem from definer_function_problems)
          and ('apportion.scan_probe_definer()', 'not owned by apportion_owner') in (select fn, problem from definer_function_problems),
  'self-check (c): a SECURITY DEFINER function EXECUTE-able by PUBLIC and owned by a superuser is found');
select ok('apportion.scan_probe_definer()' in (select fn from public_executable_functions),
  'self-check (d): a function EXECUTE-able by PUBLIC is found');
select is((select array_agg(relname order by relname) from views_bypassing_rls), array['scan_probe_matview', 'scan_probe_view'],
  'self-check (e): a view without security_invoker and a materialized view with tenant_id are found');
select ok(('apportion_ingest', 'execute apportion_internal.scan_probe_helper()') in (select rolname, what from internal_reachable),
  'self-check (g): an internal helper a runtime role may execute is found');
select ok(('apportion_reader', 'usage on schema apportion_internal') in (select rolname, what from internal_reachable),
  'self-check (g): USAGE on apportion_internal for a runtime role is found');
select ok(('public', 'execute apportion_internal.scan_probe_public()') in (select rolname, what from internal_reachable),
  'self-check (g): an internal helper PUBLIC may execute (the default for a new function) is found');
-- (apportion_worker now belongs to apportion_owner, so the owner_admin
-- policies count as open to it as well.)
select ok('scan_probe.scan_probe_open' in (select policy from open_policies),
  'self-check (f): a policy "to public using (true)" is found');

select * from finish();
rollback;
