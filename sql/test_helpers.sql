-- apportion's pgTAP helpers, for a service's own tests of its integration.
-- Include right after BEGIN in a pgTAP test file (psql \ir or \i):
--   begin;
--   \i node_modules/apportion/sql/test_helpers.sql
--   select plan(...);
--   ...
--   rollback;
-- Everything here lives in schema apportion_test and is rolled back with the
-- test, like the rows it makes. The helpers write as the caller (a superuser
-- in CI, or apportion_owner), so they set up any state; act as a runtime
-- role with as_role() to test what that role can do. See README, "Testing
-- your integration".
create schema apportion_test;
grant usage on schema apportion_test to public;

-- A tenant with the default channel taxonomy.
create function apportion_test.make_tenant(p_name text, p_id uuid default gen_random_uuid())
returns uuid
language sql
as $$
  select apportion.create_tenant(p_name, p_id)
$$;

-- Act as a runtime role under a tenant (null: no tenant) for the rest of the
-- transaction, or until as_admin().
create function apportion_test.as_role(p_role text, p_tenant uuid default null)
returns void
language plpgsql
as $$
begin
  perform set_config('app.tenant_id', coalesce(p_tenant::text, ''), true);
  execute format('set local role %I', p_role);
end
$$;

-- Back to the suite's own role, no tenant.
create function apportion_test.as_admin()
returns void
language plpgsql
as $$
begin
  reset role;
  perform set_config('app.tenant_id', '', true);
end
$$;

-- A touchpoint of the tenant's customer.
create function apportion_test.make_touch(
  p_tenant uuid, p_customer text, p_channel text, p_at timestamptz, p_external_id text default null)
returns uuid
language sql
as $$
  insert into apportion.touchpoints (tenant_id, customer_id, channel, occurred_at, external_id)
  values (p_tenant, p_customer, p_channel, p_at, p_external_id)
  returning id
$$;

-- A conversion event (which enqueues allocation for the tenant's active
-- models, as any ingest does).
create function apportion_test.make_event(
  p_tenant uuid, p_customer text, p_at timestamptz, p_revenue_cents bigint,
  p_currency text default 'USD', p_id uuid default gen_random_uuid(), p_external_id text default null)
returns uuid
language sql
as $$
  insert into apportion.attribution_events (tenant_id, id, customer_id, occurred_at, revenue_cents, currency, external_event_id)
  values (p_tenant, p_id, p_customer, p_at, p_revenue_cents, p_currency, p_external_id)
  returning id
$$;

-- Allocate the tenant's pending events now, in this transaction, as the
-- worker's live path would (attribution.allocate_pending for each model
-- version with pending events, until none is left). Returns the number of
-- events allocated. Events that cannot be allocated leave the pending set
-- as allocate_event jobs of their own (not run here). A markov version the
-- tenant has not trained keeps its events pending.
create function apportion_test.drain_allocations(p_tenant uuid)
returns bigint
language plpgsql
as $$
declare
  v_previous text := apportion.enter_tenant(p_tenant, 'drain_allocations');
  v_model text;
  v_result jsonb;
  v_total bigint := 0;
begin
  for v_model in select distinct p.model_version from apportion.pending_allocations p
                  where p.tenant_id = p_tenant order by 1 loop
    loop
      v_result := apportion.task_allocate_pending(jsonb_build_object('model_version', v_model));
      v_total := v_total + (v_result ->> 'event_count')::bigint;
      exit when (v_result ->> 'event_count')::bigint = 0
             or not exists (select from apportion.pending_allocations p
                             where p.tenant_id = p_tenant and p.model_version = v_model);
    end loop;
  end loop;
  perform set_config('app.tenant_id', v_previous, true);
  return v_total;
end
$$;

grant execute on all functions in schema apportion_test to public;
