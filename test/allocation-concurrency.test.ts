// Two allocations of the same (tenant, event, model) never interleave: a
// set-based run that started from an older snapshot must not write its stale
// rows over a newer allocation of one of its events. The schedule below is
// forced with real sessions, not simulated: S1 holds an event's rows, S2's
// window waits behind it, meanwhile a new touch arrives and another
// allocation of the second event commits; then S1 and S2 finish.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from './helpers/db.js';

const TENANT = 'c0c0c0c0-0000-4000-8000-0000000000c1';
const E1 = 'c0c0c0c0-0000-4000-8000-0000000000e1';
const E2 = 'c0c0c0c0-0000-4000-8000-0000000000e2';
const MODEL = 'race-linear';

let db: TestDatabase;
let admin: postgres.Sql;
const sessions: postgres.Sql[] = [];

async function session(url: string): Promise<postgres.Sql> {
  const s = postgres(url, { max: 1, onnotice: () => {} });
  sessions.push(s);
  return s;
}

/** Resolves once some backend of this database waits for a lock. */
async function untilSomeoneWaits(count = 1): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const [row] = await admin<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock'`;
    if (row!.n >= count) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`fewer than ${count} session(s) ever waited for a lock`);
}

beforeAll(async () => {
  db = await testDatabase('allocation_concurrency');
  admin = postgres(db.url, { max: 1, onnotice: () => {} });
  await admin`select apportion.create_tenant('race', ${TENANT})`;
  await admin`select apportion.register_model(${MODEL}, 'linear')`;
  await admin.begin(async (tx) => {
    await tx`select set_config('app.tenant_id', ${TENANT}, true)`;
    await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values
               ('c1', 'email', '2025-06-01T10:00Z'), ('c2', 'email', '2025-06-01T10:00Z')`;
    await tx`insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
               (${E1}, 'c1', '2025-06-02T10:00Z', 1000, 'USD'), (${E2}, 'c2', '2025-06-02T10:00Z', 1000, 'USD')`;
  });
});

afterAll(async () => {
  for (const s of sessions) await s.end();
  await admin?.end();
  await db?.drop();
});

describe('concurrent allocations of one event', () => {
  it('a window that waited behind a lock does not write stale rows over a newer allocation', async () => {
    const workerUrl = await db.urlAs('apportion_worker');
    const ingestUrl = await db.urlAs('apportion_ingest');
    const [s1, s2, s3, ingest] = [await session(workerUrl), await session(workerUrl), await session(workerUrl), await session(ingestUrl)];
    const asTenant = async (s: postgres.Sql, fn: (tx: postgres.TransactionSql) => Promise<unknown>) =>
      s.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${TENANT}, true)`;
        return fn(tx);
      });

    // Both events allocated: email gets each event's 1000.
    await asTenant(s1, (tx) => tx`select * from apportion.recompute_window('2025-06-02', '2025-06-03', ${MODEL})`);

    // S1 re-allocates E1 and keeps its transaction open.
    let releaseS1!: () => void;
    const s1Open = new Promise<void>((r) => (releaseS1 = r));
    let s1Ran!: () => void;
    const s1HasRun = new Promise<void>((r) => (s1Ran = r));
    const s1Done = asTenant(s1, async (tx) => {
      await tx`select * from apportion.allocate_event(${E1}, ${MODEL})`;
      s1Ran();
      await s1Open;
    });
    await s1HasRun;

    // S2 recomputes the window holding E1 and E2, and waits behind S1.
    const s2Done = asTenant(s2, (tx) => tx`select * from apportion.recompute_window('2025-06-02', '2025-06-03', ${MODEL})`);
    await untilSomeoneWaits(1);

    // Meanwhile a display touch for E2's customer arrives, and E2 is
    // allocated again: email 500, display 500.
    await ingest.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${TENANT}, true)`;
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c2', 'display', '2025-06-01T12:00Z')`;
    });
    const s3Done = asTenant(s3, (tx) => tx`select * from apportion.allocate_event(${E2}, ${MODEL})`);
    // (It may commit at once, or wait its turn behind S1 and S2.)
    await Promise.race([s3Done, untilSomeoneWaits(2)]);

    releaseS1();
    await Promise.all([s1Done, s2Done, s3Done]);

    const rows = await admin<{ channel: string; cents: string }[]>`
      select channel, allocated_revenue_cents::text as cents from apportion.attribution_allocations
       where tenant_id = ${TENANT} and event_id = ${E2} and model_version = ${MODEL} order by channel`;
    expect(rows.map((r) => [r.channel, r.cents])).toEqual([['display', '500'], ['email', '500']]);
    const [e1] = await admin<{ cents: string }[]>`
      select sum(allocated_revenue_cents)::text as cents from apportion.attribution_allocations
       where tenant_id = ${TENANT} and event_id = ${E1} and model_version = ${MODEL}`;
    expect(e1!.cents).toBe('1000');
  });
});
