// Claimed work runs in turns across tenants: a tenant's fresh job does not
// wait behind another tenant's backlog claimed in the same batch. Tenant A
// queues 20 slow jobs (each recomputes a window of 3,000 events), then
// tenant B one; a real orchestrator with two runners claims all 21 at once
// and splits A's into two groups. In turns, B's job starts beside A's first
// group, before A's second group and most of A's first; first come first
// served, it would start only after one of A's groups had finished.
// And a tenant runs one group at a time (unless its groups are the parts of
// one big claim), so its later small claims leave the other runner free.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from './helpers/db.js';
import { startOrchestrator, waitFor } from './helpers/orchestrator.js';

const A = 'fa1a0000-0000-4000-8000-00000000000a';
const B = 'fa1a0000-0000-4000-8000-00000000000b';
// One model version per job, so that A's jobs do not wait for each other
// (runs of one tenant and model are serialised).
const windowFor = (model: string) => ({ window_start: '2025-09-01T00:00:00Z', window_end: '2025-09-02T00:00:00Z', model_version: model });

let db: TestDatabase;
let admin: postgres.Sql;

beforeAll(async () => {
  db = await testDatabase('queue_fairness');
  admin = postgres(db.url, { max: 1, onnotice: () => {} });
  await admin`select apportion.create_tenant('A', ${A}), apportion.create_tenant('B', ${B})`;
  for (let i = 0; i <= 26; i++) await admin`select apportion.register_model(${'fair-' + i}, 'linear')`;
  for (const t of [A, B]) {
    await admin.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${t}, true)`;
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at)
               select 'c' || (g % 500), (array['email', 'display', 'referral'])[1 + g % 3], '2025-08-31T00:00Z'::timestamptz + g * interval '1 second'
                 from generate_series(1, 3000) g`;
      await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
               select 'c' || (g % 500), '2025-09-01T00:00Z'::timestamptz + g * interval '1 second', 1000 + g, 'USD'
                 from generate_series(1, ${t === A ? 3000 : 10}) g`;
    });
  }
});

afterAll(async () => {
  await admin?.end();
  await db?.drop();
});

describe('fair turns across tenants', () => {
  it("a tenant's fresh job starts before another tenant's backlog claimed with it", async () => {
    const ids: { a: string[]; b: string } = { a: [], b: '' };
    await admin.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${A}, true)`;
      for (let i = 0; i < 20; i++) {
        const [r] = await tx`select apportion.enqueue('attribution', 'recompute_window', ${tx.json(windowFor('fair-' + i))})::text as id`;
        ids.a.push(r!.id as string);
      }
      await tx`select set_config('app.tenant_id', ${B}, true)`;
      const [r] = await tx`select apportion.enqueue('attribution', 'recompute_window', ${tx.json(windowFor('fair-20'))})::text as id`;
      ids.b = r!.id as string;
    });
    const o = await startOrchestrator(await db.urlAs('apportion_worker'), {
      APPORTION_CONCURRENCY: '2',
      APPORTION_BATCH_SIZE: '1000',
    });
    try {
      const all = [...ids.a, ids.b];
      await waitFor('all 21 jobs done', async () => {
        const [r] = await admin`select count(*)::int as n from apportion.jobs where id = any(${all}::bigint[]) and state = 'succeeded'`;
        return r!.n === 21 || undefined;
      }, 60_000);
      const rows = await admin<{ id: string; tenant_id: string; started: Date }[]>`
        select id::text, tenant_id::text, (attempt_log -> 0 ->> 'started_at')::timestamptz as started
          from apportion.jobs where id = any(${all}::bigint[])`;
      const bStarted = rows.find((r) => r.id === ids.b)!.started.getTime();
      const aAfterB = rows.filter((r) => r.tenant_id === A && r.started.getTime() > bStarted).length;
      // In turns: A's second group and all but the first of A's first group
      // start after B. First come first served: B waits for one of A's two
      // groups to finish, and at most a few of A's jobs start after it.
      expect(aAfterB).toBeGreaterThanOrEqual(10);
    } finally {
      expect(await o.stop()).toBe(0);
    }
  });

  it("a tenant's later job waits for its running group, leaving the other runner to another tenant", async () => {
    // A's first job runs on one runner (claims run nothing inline here); A's
    // second, claimed while it runs, must not take the other runner, so B's
    // job, enqueued after it, starts and finishes before it. (Run side by side, A's two
    // jobs would hold both runners and B's would wait for one to finish.)
    const enqueue = async (tenant: string, model: string) =>
      admin.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenant}, true)`;
        const [r] = await tx`select apportion.enqueue('attribution', 'recompute_window', ${tx.json(windowFor(model))})::text as id`;
        return r!.id as string;
      });
    // A's first job is held running, whatever the machine's speed: the test
    // holds the lock its runs of model fair-21 take (store_allocations
    // serialises runs of one tenant and model on it) until B's job or A's
    // second has finished.
    const holder = postgres(db.url, { max: 1, onnotice: () => {} });
    const lockKey = `${A}:fair-21`;
    await holder`select pg_advisory_lock(hashtext('apportion.store_allocations'), hashtext(${lockKey}))`;
    const first = await enqueue(A, 'fair-21');
    const o = await startOrchestrator(await db.urlAs('apportion_worker'), {
      APPORTION_CONCURRENCY: '2',
      APPORTION_BATCH_SIZE: '1000',
      APPORTION_INLINE_RUN_MAX: '0',
      APPORTION_LEASE_SECONDS: '6',
    });
    try {
      const state = async (id: string) => (await admin<{ state: string }[]>`select state from apportion.jobs where id = ${id}`)[0]!.state;
      await waitFor("A's first job running", async () => ((await state(first)) === 'running' || undefined), 30_000);
      const later = await enqueue(A, 'fair-25');
      await waitFor("A's later job claimed", async () => ((await state(later)) !== 'queued' || undefined), 30_000);
      expect(await state(first)).toBe('running');
      const b = await enqueue(B, 'fair-26');
      await waitFor("B's job or A's second done", async () => {
        const [r] = await admin`select count(*)::int as n from apportion.jobs where id = any(${[later, b]}::bigint[]) and state = 'succeeded'`;
        return r!.n > 0 || undefined;
      }, 30_000);
      expect(await state(first)).toBe('running');
      await holder`select pg_advisory_unlock(hashtext('apportion.store_allocations'), hashtext(${lockKey}))`;
      const all = [first, later, b];
      await waitFor('all 3 jobs done', async () => {
        const [r] = await admin`select count(*)::int as n from apportion.jobs where id = any(${all}::bigint[]) and state = 'succeeded'`;
        return r!.n === 3 || undefined;
      }, 60_000);
      const rows = await admin<{ id: string; started: Date }[]>`
        select id::text, (attempt_log -> 0 ->> 'started_at')::timestamptz as started
          from apportion.jobs where id = any(${[later, b]}::bigint[])`;
      const started = (id: string) => rows.find((r) => r.id === id)!.started.getTime();
      expect(started(b)).toBeLessThan(started(later));
    } finally {
      await holder.end();
      expect(await o.stop()).toBe(0);
    }
  });

  it('claimed jobs no runner can start go back before their lease expires, the attempt not counted', async () => {
    // One runner, held by A's job for over two leases (6 s each: a release
    // comes a third of a lease after the claim, and the machine may be busy
    // with other suites); B's job is claimed meanwhile and waits locally.
    // Left there its lease would expire again and again, each expiry an
    // attempt of a job that never ran.
    const holder = postgres(db.url, { max: 1, onnotice: () => {} });
    const lockKey = `${A}:fair-22`;
    await holder`select pg_advisory_lock(hashtext('apportion.store_allocations'), hashtext(${lockKey}))`;
    const enqueue = async (tenant: string, model: string) =>
      admin.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenant}, true)`;
        const [r] = await tx`select apportion.enqueue('attribution', 'recompute_window', ${tx.json(windowFor(model))})::text as id`;
        return r!.id as string;
      });
    const held = await enqueue(A, 'fair-22');
    const o = await startOrchestrator(await db.urlAs('apportion_worker'), {
      APPORTION_CONCURRENCY: '1',
      APPORTION_BATCH_SIZE: '10',
      APPORTION_INLINE_RUN_MAX: '0',
      APPORTION_LEASE_SECONDS: '6',
    });
    try {
      const state = async (id: string) => (await admin<{ state: string }[]>`select state from apportion.jobs where id = ${id}`)[0]!.state;
      await waitFor("A's job running", async () => ((await state(held)) === 'running' || undefined), 30_000);
      const waiting = await enqueue(B, 'fair-23');
      await waitFor("B's job claimed", async () => ((await state(waiting)) === 'running' || undefined), 30_000);
      await new Promise((r) => setTimeout(r, 13_000));
      await holder`select pg_advisory_unlock(hashtext('apportion.store_allocations'), hashtext(${lockKey}))`;
      await waitFor('both jobs done', async () => {
        const [r] = await admin`select count(*)::int as n from apportion.jobs where id = any(${[held, waiting]}::bigint[]) and state = 'succeeded'`;
        return r!.n === 2 || undefined;
      }, 30_000);
      const [b] = await admin<{ attempts: number; outcomes: string[] }[]>`
        select attempts, array(select e ->> 'outcome' from jsonb_array_elements(attempt_log) e) as outcomes
          from apportion.jobs where id = ${waiting}`;
      expect(b).toEqual({ attempts: 1, outcomes: ['succeeded'] });
      expect(o.logs.some((l) => l.msg === 'released claimed jobs no runner started within a third of their lease')).toBe(true);
    } finally {
      await holder.end();
      expect(await o.stop()).toBe(0);
    }
  });
});
