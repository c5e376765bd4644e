// Through a real transaction pooler (PgBouncer, pool_mode = transaction):
// server connections are shared by every client transaction, which is where
// a session-level tenant would leak. withTenant must keep tenants apart, and
// the orchestrator must work with its work connections pooled and only its
// LISTEN connection direct.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { connect, withTenant, type Sql } from '../orchestrator/db.js';
import { testDatabase, type TestDatabase } from './helpers/db.js';
import { havePgbouncer, startPgbouncer, type Pooler } from './helpers/pgbouncer.js';
import { startOrchestrator, waitFor } from './helpers/orchestrator.js';

let db: TestDatabase;
let pooler: Pooler;
let ingestDirect: string;
let workerDirect: string;
const tenants: string[] = [];

beforeAll(async () => {
  if (!havePgbouncer()) throw new Error('pgbouncer is not installed: apt-get install pgbouncer (.ci/run does)');
  db = await testDatabase('pooler');
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  await admin`select apportion.register_model('pooled-linear', 'linear', '{}')`;
  for (let i = 0; i < 10; i++) {
    const [row] = await admin`select apportion.create_tenant(${'pooled ' + i}) as id`;
    tenants.push(row!.id as string);
  }
  await admin.end();
  ingestDirect = await db.urlAs('apportion_ingest');
  workerDirect = await db.urlAs('apportion_worker');
  pooler = await startPgbouncer(db.url, [
    ['apportion_ingest_test_login', 'test-only-apportion_ingest'],
    ['apportion_worker_test_login', 'test-only-apportion_worker'],
  ]);
});

afterAll(async () => {
  await pooler?.stop();
  await db?.drop();
});

describe('through PgBouncer in transaction mode', () => {
  it('withTenant keeps 10 tenants x 100 transactions apart on 4 shared server connections', async () => {
    const sql: Sql = connect(pooler.url(ingestDirect), { max: 20, prepare: false });
    try {
      // Each tenant writes touchpoints through the pooler: i + 1 of them.
      await Promise.all(tenants.map((t, i) => withTenant(sql, t, (tx) => tx`
        insert into apportion.touchpoints (customer_id, channel, occurred_at)
        select 'c' || g, 'email', now() from generate_series(1, ${i + 1}) g`)));
      const wrong: string[] = [];
      const leaks: string[] = [];
      const backends = new Set<number>();
      await Promise.all(Array.from({ length: 20 }, async (_, lane) => {
        for (let k = 0; k < 50; k++) {
          const t = (lane * 7 + k) % tenants.length;
          const [seen] = await withTenant(sql, tenants[t]!, (tx) =>
            tx`select count(*)::int as n, count(distinct tenant_id)::int as k, pg_backend_pid() as pid from apportion.touchpoints`);
          backends.add(seen!.pid as number);
          if (seen!.n !== t + 1 || seen!.k !== 1) wrong.push(`tenant ${t} saw ${seen!.n} rows of ${seen!.k} tenants`);
          const [after] = await sql`select coalesce(current_setting('app.tenant_id', true), '') as t,
                                           (select count(*)::int from apportion.touchpoints) as n`;
          if (after!.t !== '' || after!.n !== 0) leaks.push(`server connection carried tenant '${after!.t}'`);
        }
      }));
      expect(wrong).toEqual([]);
      expect(leaks).toEqual([]);
      expect(backends.size).toBeLessThanOrEqual(4); // really shared server connections
    } finally {
      await sql.end();
    }
  });

  it('the orchestrator works with pooled work connections and a direct listener', async () => {
    const o = await startOrchestrator(pooler.url(workerDirect), {
      APPORTION_LISTEN_URL: workerDirect,
      APPORTION_PREPARE: 'false',
      APPORTION_POLL_INTERVAL_MS: '60000',
    });
    try {
      await waitFor('ready', async () => (await o.health('/readyz')).status === 200);
      const ingest = connect(pooler.url(ingestDirect), { max: 4, prepare: false });
      for (const t of tenants) {
        await withTenant(ingest, t, async (tx) => {
          await tx`select apportion.activate_model('pooled-linear')`;
          await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
                   select 'c' || g, now(), 1000 + g, 'USD' from generate_series(1, 20) g`;
        });
      }
      const admin = postgres(db.url, { max: 1, onnotice: () => {} });
      const done = await waitFor('200 events allocated', async () => {
        const [r] = await admin`select (select count(distinct event_id)::int from apportion.attribution_allocations
                                         where tenant_id = any(${tenants}::uuid[])) as allocated,
                                       (select count(*)::int from apportion.pending_allocations
                                         where tenant_id = any(${tenants}::uuid[])) as pending`;
        return r!.allocated === 200 && r!.pending === 0 ? r : undefined;
      });
      expect(done!.allocated).toBe(200);
      const [failed] = await admin`select count(*)::int as n from apportion.jobs
                                    where state <> 'succeeded' and tenant_id = any(${tenants}::uuid[])`;
      expect(failed!.n).toBe(0);
      const [bad] = await admin`select count(*)::int as n from (
          select e.id from apportion.attribution_events e
          left join apportion.attribution_allocations a on a.tenant_id = e.tenant_id and a.event_id = e.id
          where e.tenant_id = any(${tenants}::uuid[])
          group by e.id, e.revenue_cents having coalesce(sum(a.allocated_revenue_cents), -1) <> e.revenue_cents) x`;
      expect(bad!.n).toBe(0);
      await admin.end();
      await ingest.end();
    } finally {
      expect(await o.stop()).toBe(0);
    }
  });
});
