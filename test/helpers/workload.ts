// The allocation workload the orchestrator fault tests share: tenants with
// touchpoints, allocate_event jobs for fresh events interleaved across them in
// chunks (a claimed batch spans several tenants), and the check that the
// stored allocations are exactly one computation's, whatever happened.
import type postgres from 'postgres';
import { expect } from 'vitest';
import { waitFor } from './orchestrator.js';

export interface Workload {
  tenants: string[];
  model: string;
  /** Register the model, create the tenants and their touchpoints. */
  setup(): Promise<void>;
  /** Enqueue allocate_event for `count` fresh events; returns the job ids. */
  enqueueAllocations(count: number): Promise<string[]>;
  /** Job counts by state. */
  states(jobIds: string[]): Promise<Record<string, number>>;
  allSucceeded(jobIds: string[], timeoutMs?: number): Promise<true>;
  /** Stored allocations equal what one computation gives, for these jobs' events. */
  expectExactlyOneRunOfAllocations(jobIds: string[]): Promise<void>;
}

export function allocationWorkload(admin: postgres.Sql, tenants: string[], model: string, chunk = 50): Workload {
  const states = async (jobIds: string[]) => {
    const rows = await admin`select state, count(*)::int as n from apportion.jobs where id = any(${jobIds}::bigint[]) group by state`;
    return Object.fromEntries(rows.map((r) => [r.state, r.n])) as Record<string, number>;
  };
  return {
    tenants,
    model,
    async setup() {
      await admin`select apportion.register_model(${model}, 'linear', '{}')`;
      for (const tenant of tenants) {
        await admin`select apportion.create_tenant(${'workload ' + tenant.slice(-4)}, ${tenant})`;
        await admin.begin(async (tx) => {
          await tx`select set_config('app.tenant_id', ${tenant}, true)`;
          await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at)
                   select 'customer-' || (g % 500), (array['email','display','referral','google_search','direct'])[1 + g % 5],
                          '2025-07-25'::timestamptz + g * interval '7 minutes'
                     from generate_series(1, 2000) g`;
        });
      }
    },
    async enqueueAllocations(count) {
      const ids: string[] = [];
      for (let done = 0, c = 0; done < count; done += chunk, c++) {
        const tenant = tenants[c % tenants.length]!;
        const n = Math.min(chunk, count - done);
        ids.push(...(await admin.begin(async (tx) => {
          await tx`select set_config('app.tenant_id', ${tenant}, true)`;
          const events = await tx`
            insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
            select 'customer-' || ((${done} + g) % 500), '2025-08-01'::timestamptz + (${done} + g) * interval '1 second', 100 + (${done} + g) % 9973, 'USD'
              from generate_series(1, ${n}) g
            returning id`;
          const payloads = events.map((e) => ({ event_id: e.id, model_version: model }));
          const rows = await tx`select apportion.enqueue_many('attribution', 'allocate_event', ${tx.json(payloads)}) as id`;
          return rows.map((r) => String(r.id));
        })));
      }
      return ids;
    },
    states,
    async allSucceeded(jobIds, timeoutMs = 60_000) {
      try {
        return await waitFor(`${jobIds.length} jobs to succeed`, async () => ((await states(jobIds)).succeeded === jobIds.length ? true : undefined), timeoutMs, 50);
      } catch (err) {
        // Say where the rest stand: states, next run_at, leases, attempts.
        const [where] = await admin`
          select json_object_agg(state, n) as states, min(next_run) as next_run_at, max(lease) as latest_lease, max(attempts) as max_attempts
            from (select state, count(*) as n, min(run_at) filter (where state = 'queued') as next_run,
                         max(locked_until) as lease, max(attempts) as attempts
                    from apportion.jobs where id = any(${jobIds}::bigint[]) group by state) s`;
        const failed = await admin`
          select id, error_code, error_message, (select json_agg(json_build_object('worker', e ->> 'worker', 'outcome', e ->> 'outcome',
                                                   'code', e ->> 'error_code', 'message', e ->> 'error_message', 'at', e ->> 'started_at'))
                                          from jsonb_array_elements(attempt_log) e) as attempts
            from apportion.jobs where id = any(${jobIds}::bigint[]) and state = 'failed' limit 3`;
        throw new Error(`${(err as Error).message}; jobs now ${JSON.stringify(where)} at ${new Date().toISOString()}` +
          (failed.length ? `; failed: ${JSON.stringify(failed)}` : ''));
      }
    },
    async expectExactlyOneRunOfAllocations(jobIds) {
      let expectedRows = 0;
      for (const tenant of tenants) {
        const [diff] = await admin.begin(async (tx) => {
          await tx`select set_config('app.tenant_id', ${tenant}, true)`;
          return tx`
            with ev as (select (payload->>'event_id')::uuid as id from apportion.jobs
                         where id = any(${jobIds}::bigint[]) and tenant_id = ${tenant}),
            expected as (select c.event_id, c.channel, c.allocated_revenue_cents, c.allocation_ratio
                           from apportion.compute_allocations(${model}, array(select id from ev)) c),
            stored as (select a.event_id, a.channel, a.allocated_revenue_cents, a.allocation_ratio
                         from apportion.attribution_allocations a
                        where a.tenant_id = ${tenant} and a.model_version = ${model} and a.event_id in (select id from ev))
            select (select count(*) from (table expected except all table stored) x)::int as missing,
                   (select count(*) from (table stored except all table expected) x)::int as extra,
                   (select count(*) from expected)::int as expected`;
        });
        expect(diff).toMatchObject({ missing: 0, extra: 0 });
        expectedRows += diff!.expected;
      }
      expect(expectedRows).toBeGreaterThanOrEqual(jobIds.length);
    },
  };
}
