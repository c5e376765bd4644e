// Two claims at once take different jobs, and neither comes back empty while
// the other holds its jobs: a claim skips the rows another claim locked and
// takes the next ones, within one tenant (here the system's jobs) and across
// tenants. Real sessions, each holding its claim's transaction open.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from './helpers/db.js';

const A = 'c1a10000-0000-4000-8000-00000000000a';
const B = 'c1a10000-0000-4000-8000-00000000000b';

let db: TestDatabase;
let admin: postgres.Sql;
const sessions: postgres.Sql[] = [];

beforeAll(async () => {
  db = await testDatabase('queue_concurrent_claims');
  admin = postgres(db.url, { max: 1, onnotice: () => {} });
  await admin`select apportion.create_tenant('A', ${A}), apportion.create_tenant('B', ${B})`;
});

afterAll(async () => {
  for (const s of sessions) await s.end();
  await admin?.end();
  await db?.drop();
});

/** Two worker sessions claim `limit` jobs each, the first holding its transaction open until the second has claimed. */
async function claimTwice(limit: number): Promise<[string[], string[]]> {
  const url = await db.urlAs('apportion_worker');
  const [s1, s2] = [postgres(url, { max: 1, onnotice: () => {} }), postgres(url, { max: 1, onnotice: () => {} })];
  sessions.push(s1, s2);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let claimed!: (ids: string[]) => void;
  const first = new Promise<string[]>((r) => (claimed = r));
  const t1 = s1.begin(async (tx) => {
    const rows = await tx<{ id: string }[]>`select job_id::text as id from apportion.claim_jobs('w1', array['housekeeping'], ${limit}, 30)`;
    claimed(rows.map((r) => r.id));
    await held;
  });
  const ids1 = await first;
  const ids2 = (await s2<{ id: string }[]>`select job_id::text as id from apportion.claim_jobs('w2', array['housekeeping'], ${limit}, 30)`).map((r) => r.id);
  release();
  await t1;
  return [ids1, ids2];
}

describe('concurrent claims', () => {
  it('take different jobs of one tenant, the second the next ones', async () => {
    await admin`delete from apportion.jobs`;
    await admin`insert into apportion.jobs (queue, task, payload) select 'housekeeping', 'noop', '{}' from generate_series(1, 10)`;
    const [ids1, ids2] = await claimTwice(4);
    expect(ids1).toHaveLength(4);
    expect(ids2).toHaveLength(4);
    expect(ids1.filter((id) => ids2.includes(id))).toEqual([]);
  });

  it('take different jobs across tenants', async () => {
    await admin`delete from apportion.jobs`;
    for (const t of [A, B]) {
      await admin.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${t}, true)`;
        await tx`insert into apportion.jobs (queue, task, payload) select 'housekeeping', 'ping', '{}' from generate_series(1, 6)`;
      });
    }
    const [ids1, ids2] = await claimTwice(4);
    expect(ids1).toHaveLength(4);
    expect(ids2).toHaveLength(4);
    expect(ids1.filter((id) => ids2.includes(id))).toEqual([]);
  });
});
