// Data that changes after it was allocated, with real commits: a seeded
// random interleaving of event ingest, late touchpoints, refunds (partial,
// full, several per event) and recomputes over two tenants and three
// models, drained through the live path between steps. Afterwards every
// in-horizon allocation equals a from-scratch computation over the final
// data, every event's parts sum to its revenue, every refund split equals
// the reference's (test/helpers/reference.ts) over the final allocation,
// sums to its refund and leaves no channel below zero, and every state the
// allocations were in after a drain is reproduced by allocations_as_of (and
// the daily report by daily_channel_revenue_as_of) at that time. Plus the race a late touchpoint must
// win: a live job holding the event's pending row while the touch arrives.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant, type Sql } from '../orchestrator/db.js';
import { testDatabase, type TestDatabase } from './helpers/db.js';
import { prng, splitRefunds, type Refund } from './helpers/reference.js';

const TENANTS = ['da7a0000-0000-4000-8000-000000000001', 'da7a0000-0000-4000-8000-000000000002'];
const MODELS = ['dc-linear', 'dc-decay', 'dc-last'];
const CUSTOMERS = 25;
const STEPS = 70;
const CHANNELS = ['direct', 'email', 'google_search', 'paid_social', 'referral', 'display'];
const DAY_MS = 86_400_000;

let db: TestDatabase;
let admin: postgres.Sql;
let ingest: Sql;
let worker: Sql;

beforeAll(async () => {
  db = await testDatabase('data_changes');
  admin = postgres(db.url, { max: 1, onnotice: () => {} });
  await admin`select apportion.register_model('dc-linear', 'linear', '{"lookback": "10 days"}')`;
  await admin`select apportion.register_model('dc-decay', 'time_decay', '{"half_life": "2 days", "lookback": "20 days"}')`;
  await admin`select apportion.register_model('dc-last', 'last_touch', '{}')`;
  ingest = postgres(await db.urlAs('apportion_ingest'), { max: 2, onnotice: () => {} }) as unknown as Sql;
  worker = postgres(await db.urlAs('apportion_worker'), { max: 2, onnotice: () => {} }) as unknown as Sql;
  for (const [i, t] of TENANTS.entries()) {
    await admin`select apportion.create_tenant(${'changes ' + i}, ${t})`;
    await withTenant(ingest, t, async (tx) => {
      for (const m of MODELS) await tx`select apportion.activate_model(${m})`;
    });
  }
});

afterAll(async () => {
  await ingest?.end();
  await worker?.end();
  await admin?.end();
  await db?.drop();
});

/** Run the live path for every tenant and model until nothing is pending. */
async function drain(): Promise<void> {
  for (const t of TENANTS) {
    for (const m of MODELS) {
      for (;;) {
        const [r] = await withTenant(worker, t, (tx) => tx`select apportion.task_allocate_pending(${tx.json({ model_version: m })}) as r`);
        if (Number((r!.r as { event_count: number }).event_count) === 0) break;
      }
    }
  }
  const [p] = await admin`select count(*)::int as n from apportion.pending_allocations`;
  expect(p!.n).toBe(0);
}

/** Resolves once some backend of this database waits for a lock (throws after 3 s). */
async function waitForLockWait(): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const [w] = await admin`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`;
    if (w!.n > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no session waited for a lock');
}

type Rows = Map<string, string>;

async function current(tenant: string, model: string): Promise<Rows> {
  const rows = await withTenant(worker, tenant, (tx) => tx`
    select event_id::text, channel, allocated_revenue_cents::text as c, allocation_ratio::text as r, touchpoint_count
      from apportion.attribution_allocations where model_version = ${model}`);
  return new Map(rows.map((x) => [`${x.event_id} ${x.channel}`, `${x.c} ${x.r} ${x.touchpoint_count}`]));
}

async function asOf(tenant: string, model: string, at: string): Promise<Rows> {
  const rows = await withTenant(worker, tenant, (tx) => tx`
    select event_id::text, channel, allocated_revenue_cents::text as c, allocation_ratio::text as r, touchpoint_count
      from apportion.allocations_as_of(${model}, ${at}::timestamptz)`);
  return new Map(rows.map((x) => [`${x.event_id} ${x.channel}`, `${x.c} ${x.r} ${x.touchpoint_count}`]));
}

const diff = (a: Rows, b: Rows) => {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: ${v} vs ${b.get(k) ?? '(none)'}`);
  for (const [k, v] of b) if (!a.has(k)) out.push(`${k}: (none) vs ${v}`);
  return out;
};

describe('allocations follow the data', () => {
  it(`${STEPS} random steps of ingest, late touches, refunds and recomputes: from-scratch equal, conserved, every past state reproducible`, async () => {
    const rand = prng(20261201);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
    const now = Date.now();
    const at = (daysAgoMax: number, daysAgoMin = 0) => new Date(now - (daysAgoMin + rand() * (daysAgoMax - daysAgoMin)) * DAY_MS).toISOString();
    const snapshots: { at: string; rows: Map<string, Rows> }[] = [];
    let lateTouches = 0;
    let recomputes = 0;
    let refunds = 0;
    for (let step = 0; step < STEPS; step++) {
      const tenant = pick(TENANTS);
      const op = rand();
      if (op < 0.35) {
        // Events: mostly recent, a few older than the 90-day horizon.
        const n = 1 + Math.floor(rand() * 5);
        const events = Array.from({ length: n }, () => ({
          customer_id: `c${Math.floor(rand() * CUSTOMERS)}`,
          occurred_at: rand() < 0.1 ? at(130, 100) : at(60, 1),
          revenue_cents: String(pick([0, 1, 7, 100, 999, 10_000, 123_457])),
        }));
        await withTenant(ingest, tenant, (tx) => tx`
          insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
          select customer_id, occurred_at, revenue_cents, 'USD'
            from jsonb_to_recordset(${tx.json(events)}) as x(customer_id text, occurred_at timestamptz, revenue_cents bigint)`);
      } else if (op < 0.5) {
        // A refund of an event with revenue left: partial, or all of what is left.
        const [e] = await withTenant(ingest, tenant, (tx) => tx`
          select e.id::text, e.revenue_cents - coalesce((select sum(f.amount_cents) from apportion.refunds f where f.event_id = e.id), 0) as left_cents
            from apportion.attribution_events e
           where e.revenue_cents > coalesce((select sum(f.amount_cents) from apportion.refunds f where f.event_id = e.id), 0)
           order by md5(e.id::text || ${String(step)}) limit 1`);
        if (e) {
          const leftCents = BigInt(e.left_cents as string);
          const amount = rand() < 0.3 ? leftCents : 1n + BigInt(Math.floor(rand() * Number(leftCents)));
          await withTenant(ingest, tenant, (tx) => tx`
            insert into apportion.refunds (event_id, amount_cents, occurred_at) values (${e.id}, ${amount.toString()}::bigint, ${at(30)})`);
          refunds++;
        }
      } else if (op < 0.8) {
        // Touches, most of them late for events already in.
        const n = 1 + Math.floor(rand() * 4);
        const touches = Array.from({ length: n }, () => ({
          customer_id: `c${Math.floor(rand() * CUSTOMERS)}`, channel: pick(CHANNELS), occurred_at: rand() < 0.1 ? at(140, 100) : at(70),
        }));
        await withTenant(ingest, tenant, (tx) => tx`
          insert into apportion.touchpoints (customer_id, channel, occurred_at)
          select customer_id, channel, occurred_at
            from jsonb_to_recordset(${tx.json(touches)}) as x(customer_id text, channel text, occurred_at timestamptz)`);
        lateTouches += n;
      } else {
        const from = now - Math.floor(rand() * 140) * DAY_MS;
        await withTenant(worker, tenant, (tx) => tx`
          select * from apportion.recompute_window(${new Date(from).toISOString()}, ${new Date(from + 20 * DAY_MS).toISOString()}, ${pick(MODELS)})`);
        recomputes++;
      }
      if (rand() < 0.4 || step === STEPS - 1) {
        await drain();
        const [t] = await admin`select now()::text as at`; // after every commit above
        const rows = new Map<string, Rows>();
        for (const tn of TENANTS) for (const m of MODELS) rows.set(`${tn} ${m}`, await current(tn, m));
        snapshots.push({ at: t!.at as string, rows });
      }
    }
    expect(lateTouches).toBeGreaterThan(30);
    expect(recomputes).toBeGreaterThan(3);
    expect(refunds).toBeGreaterThan(5);
    // A late touch for an event past the horizon, for certain: counted, not restated.
    await withTenant(ingest, TENANTS[0]!, async (tx) => {
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c-old', 'email', now() - interval '112 days')`;
      await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c-old', now() - interval '110 days', 500, 'USD')`;
    });
    await drain();
    await withTenant(ingest, TENANTS[0]!, (tx) => tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('c-old', 'display', now() - interval '111 days')`);
    const [pendingOld] = await admin`select count(*)::int as n from apportion.pending_allocations`;
    expect(pendingOld!.n).toBe(0);

    // Every in-horizon event: its stored rows are what a computation over
    // the final data gives.
    const mismatches: string[] = [];
    for (const tenant of TENANTS) {
      for (const m of MODELS) {
        const fresh = await withTenant(worker, tenant, (tx) => tx`
          select c.event_id::text, c.channel, c.allocated_revenue_cents::text as c, c.allocation_ratio::numeric(7, 6)::text as r, c.touchpoint_count
            from apportion.compute_allocations(${m}, array(select id from apportion.attribution_events
                                                             where occurred_at >= now() - interval '90 days')) c`);
        const want = new Map(fresh.map((x) => [`${x.event_id} ${x.channel}`, `${x.c} ${x.r} ${x.touchpoint_count}`]));
        const inHorizon = new Set(fresh.map((x) => x.event_id as string));
        const have = new Map([...(await current(tenant, m))].filter(([k]) => inHorizon.has(k.split(' ')[0]!)));
        mismatches.push(...diff(want, have).map((d) => `${tenant} ${m} ${d}`));
      }
    }
    expect(mismatches.slice(0, 10)).toEqual([]);

    const [bad] = await admin`
      select count(*)::int as n from (
        select e.id, a.model_version from apportion.attribution_events e
          join apportion.attribution_allocations a on a.tenant_id = e.tenant_id and a.event_id = e.id
         group by e.id, e.revenue_cents, a.model_version having sum(a.allocated_revenue_cents) <> e.revenue_cents) x`;
    expect(bad!.n).toBe(0);
    // Refund splits: the reference's over the final allocation, exactly.
    const splitRows = await admin`select tenant_id::text, refund_id::text, model_version, channel, refunded_cents::text as c from apportion.refund_allocations`;
    const haveSplits = new Map(splitRows.map((r) => [`${r.tenant_id} ${r.model_version} ${r.refund_id} ${r.channel}`, r.c as string]));
    const wantSplits = new Map<string, string>();
    const allocs = await admin`select tenant_id::text, event_id::text, model_version, channel, allocated_revenue_cents::text as c from apportion.attribution_allocations`;
    const refundRows = await admin`select tenant_id::text, id::text, event_id::text, amount_cents::text as c,
                                          (extract(epoch from occurred_at) * 1000000)::bigint::text as at from apportion.refunds`;
    const byEvent = new Map<string, Refund[]>();
    for (const r of refundRows) byEvent.set(`${r.tenant_id} ${r.event_id}`, [...(byEvent.get(`${r.tenant_id} ${r.event_id}`) ?? []), { id: r.id, cents: BigInt(r.c), at: BigInt(r.at) }]);
    const allocationOf = new Map<string, Map<string, bigint>>();
    for (const a of allocs) {
      const k = `${a.tenant_id} ${a.event_id} ${a.model_version}`;
      allocationOf.set(k, (allocationOf.get(k) ?? new Map()).set(a.channel, BigInt(a.c)));
    }
    for (const [k, parts] of allocationOf) {
      const [tenant, event, model] = k.split(' ');
      const rs = byEvent.get(`${tenant} ${event}`);
      if (!rs) continue;
      for (const [refund, split] of splitRefunds(parts, rs)) for (const [c, v] of split) wantSplits.set(`${tenant} ${model} ${refund} ${c}`, v.toString());
    }
    const splitDiff = diff(wantSplits, haveSplits);
    expect(splitDiff.slice(0, 10)).toEqual([]);
    expect(wantSplits.size).toBeGreaterThan(10);
    const [refundSums] = await admin`
      select count(*)::int as n from (
        select f.id, ra.model_version from apportion.refunds f join apportion.refund_allocations ra on ra.refund_id = f.id
         group by f.id, f.amount_cents, ra.model_version having sum(ra.refunded_cents) <> f.amount_cents) x`;
    expect(refundSums!.n).toBe(0);
    const [belowZero] = await admin`
      select count(*)::int as n from apportion.attribution_allocations a
       where a.allocated_revenue_cents < (select coalesce(sum(ra.refunded_cents), 0) from apportion.refund_allocations ra
                                           where ra.event_id = a.event_id and ra.model_version = a.model_version and ra.channel = a.channel)`;
    expect(belowZero!.n).toBe(0);

    const [skips] = await admin`select coalesce(sum(skipped_events), 0)::int as n from apportion.restatements_skipped
                                 where tenant_id = ${TENANTS[0]!}`;
    expect(skips!.n).toBeGreaterThanOrEqual(MODELS.length);
    const [history] = await admin`select count(*)::int as n from apportion.allocation_history`;
    expect(history!.n).toBeGreaterThan(20);

    // Replaying the history reproduces every state after a drain.
    let compared = 0;
    for (const snap of snapshots) {
      for (const tenant of TENANTS) {
        for (const m of MODELS) {
          const d = diff(snap.rows.get(`${tenant} ${m}`)!, await asOf(tenant, m, snap.at));
          if (d.length > 0) mismatches.push(`${snap.at} ${tenant} ${m}: ${d.slice(0, 3).join('; ')}`);
          compared++;
        }
        // The daily report as of then: per model and channel, the snapshot's cents.
        const want = new Map<string, bigint>();
        for (const m of MODELS) {
          for (const [k, v] of snap.rows.get(`${tenant} ${m}`)!) {
            const key = `${m} ${k.split(' ')[1]}`;
            want.set(key, (want.get(key) ?? 0n) + BigInt(v.split(' ')[0]!));
          }
        }
        const daily = await withTenant(worker, tenant, (tx) => tx`
          select model_version, channel, sum(revenue_cents)::text as c from apportion.daily_channel_revenue_as_of(${snap.at}::timestamptz)
           where model_version = any(${MODELS}) group by 1, 2`);
        const have = new Map(daily.map((r) => [`${r.model_version} ${r.channel}`, BigInt(r.c as string)]));
        const dd = diff(new Map([...want].map(([k, v]) => [k, v.toString()])), new Map([...have].map(([k, v]) => [k, v.toString()])));
        if (dd.length > 0) mismatches.push(`${snap.at} ${tenant} daily: ${dd.slice(0, 3).join('; ')}`);
      }
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(snapshots.length).toBeGreaterThan(10);
    expect(compared).toBe(snapshots.length * TENANTS.length * MODELS.length);
  });

  it('a run that began before another but wrote after it is later in the history: as-of counts each cent once', async () => {
    // Two recomputes of one event, the first begun earlier and writing
    // later: versions must follow each other by when they were written, or
    // an as-of between the two transaction starts sees two versions at once.
    const tenant = TENANTS[1]!;
    await admin`select apportion.register_model('dc-order', 'linear', '{"lookback": "10 days"}')`;
    const [e] = await withTenant(ingest, tenant, async (tx) => {
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('order', 'email', now() - interval '3 days')`;
      return tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
                values ('order', now() - interval '1 day', 1000, 'USD') returning id::text`;
    });
    const recompute = (tx: Sql) => tx`select * from apportion.recompute_window(now() - interval '2 days', now(), 'dc-order')`;
    await withTenant(worker, tenant, (tx) => recompute(tx as unknown as Sql));
    const early = postgres(await db.urlAs('apportion_worker'), { max: 1, onnotice: () => {} });
    try {
      let go!: () => void;
      const released = new Promise<void>((r) => (go = r));
      let begun!: () => void;
      const hasBegun = new Promise<void>((r) => (begun = r));
      const first = early.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenant}, true)`; // its now() is fixed here
        begun();
        await released;
        await tx`select * from apportion.recompute_window(now() - interval '2 days', now(), 'dc-order')`;
      });
      await hasBegun;
      await new Promise((r) => setTimeout(r, 50));
      await withTenant(ingest, tenant, (tx) => tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('order', 'display', now() - interval '2 days')`);
      await withTenant(worker, tenant, (tx) => recompute(tx as unknown as Sql)); // begun later, writes first
      await withTenant(ingest, tenant, (tx) => tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('order', 'referral', now() - interval '30 hours')`);
      go();
      await first;
    } finally {
      await early.end();
    }
    const times = await admin<{ at: string }[]>`
      select distinct changed_at::text as at from apportion.allocation_changes where event_id = ${e!.id} order by 1`;
    expect(times.length).toBe(3);
    // At every change and just before it, the event's cents sum to its revenue.
    for (const { at } of times) {
      for (const offset of ['0', '1 millisecond']) {
        const [r] = await withTenant(worker, tenant, (tx) => tx`
          select coalesce(sum(allocated_revenue_cents), 0)::int as cents, count(*)::int as rows
            from apportion.allocations_as_of('dc-order', ${at}::timestamptz - ${offset}::interval) where event_id = ${e!.id}`);
        if (r!.rows > 0) expect({ at, offset, cents: r!.cents }).toEqual({ at, offset, cents: 1000 });
      }
    }
    const current = await withTenant(worker, tenant, (tx) => tx`
      select count(*)::int as n from apportion.attribution_allocations where event_id = ${e!.id} and model_version = 'dc-order'`);
    expect(current[0]!.n).toBe(3);
  });

  it('a refund waits for an allocation of its tenant being written, so it is split over the committed one', async () => {
    const tenant = TENANTS[0]!;
    const [e] = await withTenant(ingest, tenant, async (tx) => {
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('refund-lock', 'email', now() - interval '3 days')`;
      return tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
                values ('refund-lock', now() - interval '1 day', 1000, 'USD') returning id::text`;
    });
    await drain();
    // A run of store_allocations for (tenant, dc-linear) holds this lock until it commits.
    const holder = postgres(db.url, { max: 1, onnotice: () => {} });
    const refunder = postgres(await db.urlAs('apportion_ingest'), { max: 1, onnotice: () => {} });
    try {
      await holder`select pg_advisory_lock(hashtext('apportion.store_allocations'), hashtext(${tenant + ':dc-linear'}))`;
      let done = false;
      const refund = refunder.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenant}, true)`;
        await tx`insert into apportion.refunds (event_id, amount_cents, occurred_at) values (${e!.id}, 100, now())`;
      }).then(() => (done = true));
      await waitForLockWait();
      expect(done).toBe(false);
      await holder`select pg_advisory_unlock(hashtext('apportion.store_allocations'), hashtext(${tenant + ':dc-linear'}))`;
      await refund;
    } finally {
      await holder.end();
      await refunder.end();
    }
    const [r] = await admin`select coalesce(sum(refunded_cents), 0)::int as n from apportion.refund_allocations where event_id = ${e!.id} and model_version = 'dc-linear'`;
    expect(r!.n).toBe(100);
  });

  it('a late touch that arrives while a live job holds its event still restates it', async () => {
    const tenant = TENANTS[0]!;
    const [e] = await withTenant(ingest, tenant, async (tx) => {
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('race', 'email', now() - interval '3 days')`;
      return tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
                values ('race', now() - interval '1 day', 1000, 'USD') returning id::text`;
    });
    await drain();
    // Another touch makes it pending; a job takes it (locks the row) and
    // has read the data; then a third touch arrives, and the job finishes.
    await withTenant(ingest, tenant, (tx) => tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('race', 'display', now() - interval '2 days')`);
    const job = postgres(await db.urlAs('apportion_worker'), { max: 1, onnotice: () => {} });
    const late = postgres(await db.urlAs('apportion_ingest'), { max: 1, onnotice: () => {} });
    try {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const jobDone = job.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenant}, true)`;
        await tx`select event_id from apportion.pending_allocations where model_version = 'dc-linear' and event_id = ${e!.id} for update skip locked`;
        locked();
        await held;
        await tx`delete from apportion.pending_allocations where model_version = 'dc-linear' and event_id = ${e!.id}`;
      });
      await isLocked;
      const lateDone = late.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenant}, true)`;
        await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values ('race', 'referral', now() - interval '30 hours')`;
      });
      // The late insert waits for the job's row lock (on conflict do update) rather than passing it by.
      await waitForLockWait();
      release();
      await jobDone;
      await lateDone;
    } finally {
      await job.end();
      await late.end();
    }
    const [p] = await admin`select count(*)::int as n from apportion.pending_allocations where event_id = ${e!.id} and model_version = 'dc-linear'`;
    expect(p!.n).toBe(1);
    await drain();
    const rows = await withTenant(worker, tenant, (tx) => tx`
      select channel, allocated_revenue_cents::int as c from apportion.attribution_allocations
       where event_id = ${e!.id} and model_version = 'dc-linear' order by channel`);
    // All three touches count: 1000 / 3 each, the spare cent by the tie-break.
    expect(rows.map((r) => r.channel)).toEqual(['display', 'email', 'referral']);
    expect(rows.map((r) => r.c).sort()).toEqual([333, 333, 334]);
  });
});
