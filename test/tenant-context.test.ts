// The old worker leaked a tenant setting from one pooled connection's
// transaction into the next. withTenant() sets app.tenant_id transaction-
// locally; this proves under load that nothing leaks, and would fail if the
// helper used a session-level setting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { connect, withTenant, type Sql } from '../orchestrator/db.js';
import { testDatabase, type TestDatabase } from './helpers/db.js';

const TENANTS = 50;
const TRANSACTIONS_PER_TENANT = 200;
const POOL = 10;

let db: TestDatabase;
let sql: Sql;
const tenants: string[] = [];

beforeAll(async () => {
  db = await testDatabase('tenant_context');
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  for (let i = 0; i < TENANTS; i++) {
    const [row] = await admin`select apportion.create_tenant(${'tenant ' + i}) as id`;
    const id = row!.id as string;
    tenants.push(id);
    // i + 1 touchpoints, so every tenant's count is distinct.
    await admin.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${id}, true)`;
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at)
               select 'customer-' || g, 'email', now() - g * interval '1 hour' from generate_series(1, ${i + 1}) g`;
    });
  }
  await admin.end();
  sql = connect(await db.urlAs('apportion_ingest'), { max: POOL });
});

afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

describe('withTenant', () => {
  it(`keeps ${TENANTS} tenants x ${TRANSACTIONS_PER_TENANT} interleaved transactions apart over a pool of ${POOL}`, async () => {
    const jobs: number[] = [];
    for (let r = 0; r < TRANSACTIONS_PER_TENANT; r++) for (let t = 0; t < TENANTS; t++) jobs.push(t);
    // Shuffle deterministically so tenants interleave on every connection.
    let seed = 42;
    for (let i = jobs.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const j = seed % (i + 1);
      [jobs[i], jobs[j]] = [jobs[j]!, jobs[i]!];
    }
    const leaks: string[] = [];
    const wrong: string[] = [];
    let checked = 0;
    const backends = new Set<number>();
    let next = 0;
    const lane = async () => {
      while (next < jobs.length) {
        const t = jobs[next++]!;
        const tenant = tenants[t]!;
        const seen = await withTenant(sql, tenant, async (tx) => {
          const [row] = await tx`select count(*)::int as n, count(distinct tenant_id)::int as tenants,
                                        min(tenant_id::text) as tenant, pg_backend_pid() as pid
                                   from apportion.touchpoints`;
          return row!;
        });
        backends.add(seen.pid as number);
        if (seen.n !== t + 1 || seen.tenants !== 1 || seen.tenant !== tenant) {
          wrong.push(`tenant ${t} saw ${seen.n} rows of ${seen.tenants} tenant(s)`);
        }
        // Outside any transaction: whatever connection we get must carry no tenant.
        const [after] = await sql`select coalesce(current_setting('app.tenant_id', true), '') as tenant,
                                         (select count(*)::int from apportion.touchpoints) as visible`;
        checked++;
        if (after!.tenant !== '' || after!.visible !== 0) leaks.push(`connection still had tenant '${after!.tenant}' (${after!.visible} rows visible)`);
      }
    };
    await Promise.all(Array.from({ length: POOL * 2 }, lane));
    expect(wrong).toEqual([]);
    expect(leaks).toEqual([]);
    expect(checked).toBe(TENANTS * TRANSACTIONS_PER_TENANT);
    expect(backends.size).toBe(POOL);
  });

  it('rolls the tenant back with the transaction when the work fails', async () => {
    await expect(
      withTenant(sql, tenants[0]!, async (tx) => {
        await tx`select 1/0`;
      }),
    ).rejects.toThrow(/division by zero/);
    const [row] = await sql`select coalesce(current_setting('app.tenant_id', true), '') as tenant`;
    expect(row!.tenant).toBe('');
  });

  it('sees nothing without a tenant', async () => {
    const [row] = await sql`select count(*)::int as n from apportion.touchpoints`;
    expect(row!.n).toBe(0);
  });
});
