// A router (PL/Proxy) and two apportion shards in one throwaway cluster,
// installed by migrateShards from one configuration: tenants are placed by
// the documented rule; the parity vector and the independent reference
// agree through the router; every call reaches only its tenant's shard and
// rows; each shard's own orchestrator runs the live path for the events
// ingested through the router; the operators' view merges the shards; a
// tenant moves between shards, interrupted at every step and run again,
// and in the middle of ingest, losing and duplicating nothing.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateShards, moveTenant, type MoveStep, type ShardsConfig } from '../orchestrator/shards.js';
import { databaseName, recreateDatabase } from '../scripts/lib/cluster.js';
import { loginRoleUrl, type GroupRole } from '../scripts/lib/roles.js';
import { testDatabase, type TestDatabase } from './helpers/db.js';
import { startOrchestrator, waitFor, type RunningOrchestrator } from './helpers/orchestrator.js';
import { allocate, prng, timestampText, type ConversionEvent, type Model, type Touch } from './helpers/reference.js';

const TENANTS = [
  '5c000000-0000-4000-8000-000000000001',
  '5c000000-0000-4000-8000-000000000002',
  '5c000000-0000-4000-8000-000000000003',
  '5c000000-0000-4000-8000-000000000004',
];
const PARITY = '5c000000-0000-4000-8000-0000000000ff';
const MODELS: Record<string, Model> = {
  'so-last-touch': { kind: 'last_touch', params: {} },
  'so-first-touch': { kind: 'first_touch', params: { lookback: '7 days' } },
  'so-last-non-direct': { kind: 'last_non_direct', params: {} },
  'so-linear': { kind: 'linear', params: {} },
  'so-time-decay': { kind: 'time_decay', params: { half_life: '2 days 3 hours' } },
  'so-position': { kind: 'position_based', params: { first: 0.3, last: 0.5 } },
  'so-fixed': { kind: 'fixed_split', params: { channels: ['email', 'display', 'direct'], weights: [0.5, 0.25, 0.25] } },
};
const CHANNELS = ['direct', 'email', 'google_search', 'organic_search', 'paid_social', 'referral', 'display'];
const DIRECT = new Set(['direct']);
const START = BigInt(Date.UTC(2025, 3, 1)) * 1000n;
const SPAN = 40n * 86_400_000_000n;

let db: TestDatabase;
let cfg: ShardsConfig;
let admin: postgres.Sql;
let router: postgres.Sql;
const shardAdmins: postgres.Sql[] = [];
const data = new Map<string, { events: ConversionEvent[]; touches: Touch[] }>();
const orchestrators: RunningOrchestrator[] = [];

/** The router as a login in one group role. */
async function routerAs(group: GroupRole): Promise<postgres.Sql> {
  const url = await loginRoleUrl(cfg.router, group, `${group}_so_login`, `test-only-so-${group}`);
  return postgres(url, { max: 2, onnotice: () => {}, types: { bigint: postgres.BigInt } });
}

function generate(rand: () => number, customers: number, events: number): { events: ConversionEvent[]; touches: Touch[] } {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const at = () => START + BigInt(Math.floor(rand() * Number(SPAN / 1000n))) * 1000n;
  const uuid = () => {
    const h = Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16)).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };
  const touches: Touch[] = [];
  for (let c = 0; c < customers; c++) {
    const n = Math.floor(rand() * 12);
    for (let k = 0; k < n; k++) touches.push({ id: uuid(), customerId: `customer-${c}`, channel: pick(CHANNELS), at: at() });
  }
  const evs: ConversionEvent[] = [];
  for (let e = 0; e < events; e++) {
    const revenueCents = rand() < 0.2 ? pick([0n, 1n, 7n, 10000n, 1_000_000_000_000n]) : BigInt(Math.floor(rand() * 3_000_000));
    evs.push({ id: uuid(), customerId: `customer-${Math.floor(rand() * customers)}`, at: at(), revenueCents });
  }
  return { events: evs, touches };
}

async function ingest(sql: postgres.Sql, tenant: string, d: { events: ConversionEvent[]; touches: Touch[] }): Promise<void> {
  const touches = d.touches.map((t) => ({ id: t.id, customer_id: t.customerId, channel: t.channel, occurred_at: timestampText(t.at) }));
  for (let i = 0; i < touches.length; i += 2000) {
    await sql`select apportion.ingest_touchpoints_for(${tenant}, ${sql.json(touches.slice(i, i + 2000))})`;
  }
  const events = d.events.map((e) => ({
    id: e.id, customer_id: e.customerId, occurred_at: timestampText(e.at), revenue_cents: e.revenueCents.toString(), currency: 'EUR',
  }));
  for (let i = 0; i < events.length; i += 2000) {
    await sql`select apportion.ingest_events_for(${tenant}, ${sql.json(events.slice(i, i + 2000))})`;
  }
}

beforeAll(async () => {
  db = await testDatabase('scale_out');
  admin = postgres(db.url, { max: 1, onnotice: () => {} });
  const suffix = randomBytes(3).toString('hex');
  const names = { router: `so_router_${suffix}`, shards: [`so_shard0_${suffix}`, `so_shard1_${suffix}`] };
  cfg = {
    router: await recreateDatabase(db.url, names.router),
    shards: await Promise.all(names.shards.map((n) => recreateDatabase(db.url, n))),
  };
  await migrateShards(cfg);
  router = postgres(cfg.router, { max: 1, onnotice: () => {} });
  for (const s of cfg.shards) shardAdmins.push(postgres(s, { max: 1, onnotice: () => {} }));

  for (const [i, t] of [...TENANTS, PARITY].entries()) await router`select apportion.create_tenant(${'tenant ' + i}, ${t})`;
  for (const [version, model] of Object.entries(MODELS)) {
    await router`select count(*) from apportion.register_model(${version}, ${model.kind}, ${router.json(model.params as postgres.JSONValue)})`;
  }
  await router`select count(*) from apportion.register_model('1.0.0', 'fixed_split', '{"channels": ["direct", "email", "google_search"]}')`;
  const ingester = await routerAs('apportion_ingest');
  const rand = prng(20261201);
  for (const t of TENANTS) {
    data.set(t, generate(rand, 120, 400));
    await ingest(ingester, t, data.get(t)!);
  }
  await ingester`select apportion.ingest_events_for(${PARITY}, ${ingester.json([
    { id: '00000000-0000-0000-0000-0000000000a1', customer_id: 'customer-a', occurred_at: '2025-06-01T10:00:00Z', revenue_cents: 10000, currency: 'USD' },
    { id: '00000000-0000-0000-0000-0000000000b2', customer_id: 'customer-b', occurred_at: '2025-06-01T15:00:00Z', revenue_cents: 15000, currency: 'USD' },
  ])})`;
  await ingester.end();
}, 180_000);

afterAll(async () => {
  for (const o of orchestrators) await o.stop();
  await router?.end();
  for (const s of shardAdmins) await s.end();
  if (cfg) {
    for (const url of [cfg.router, ...cfg.shards]) await admin`drop database if exists ${admin(databaseName(url))} with (force)`;
  }
  await admin?.end();
  await db?.drop();
});

describe('a router over two shards', () => {
  it('places new tenants on the shard with the fewest, the lowest number among equals', async () => {
    const rows = await router<{ tenant_id: string; shard: number }[]>`
      select tenant_id::text, shard from apportion_router.placement order by placed_at, tenant_id`;
    expect(rows.map((r) => r.shard)).toEqual([0, 1, 0, 1, 0]);
    for (const [i, s] of shardAdmins.entries()) {
      const [n] = await s<{ n: number }[]>`select count(*)::int as n from apportion.tenants`;
      expect(n!.n).toBe(rows.filter((r) => r.shard === i).length);
    }
  });

  it('gives the parity vector through the router', async () => {
    const allocator = await routerAs('apportion_allocator');
    const [counts] = await allocator`select * from apportion.recompute_window_for(${PARITY}, '2025-06-01T00:00Z', '2025-06-02T00:00Z', '1.0.0')`;
    expect(counts).toEqual({ event_count: 2n, allocation_count: 6n });
    const spare = ['direct', 'email', 'google_search'].sort((a, b) => {
      const md5 = (c: string) => createHash('md5').update(`00000000-0000-0000-0000-0000000000a1:${c}`).digest('hex');
      return md5(a) < md5(b) ? -1 : 1;
    })[0];
    const rows = await allocator`select event_id::text, channel, allocated_revenue_cents::text as cents, allocation_ratio::text as ratio
                                   from apportion.allocations_for(${PARITY}, '1.0.0') order by event_id, channel`;
    expect(rows).toEqual([
      ...['direct', 'email', 'google_search'].map((c) => ({
        event_id: '00000000-0000-0000-0000-0000000000a1', channel: c, cents: c === spare ? '3334' : '3333', ratio: '0.333333' })),
      ...['direct', 'email', 'google_search'].map((c) => ({
        event_id: '00000000-0000-0000-0000-0000000000b2', channel: c, cents: '5000', ratio: '0.333333' })),
    ]);
    await allocator.end();
  });

  it('agrees with the reference implementation row for row, every model, tenants on both shards', async () => {
    const allocator = await routerAs('apportion_allocator');
    const reader = await routerAs('apportion_reader');
    const mismatches: string[] = [];
    let compared = 0;
    for (const t of TENANTS) {
      const { events, touches } = data.get(t)!;
      const byCustomer = new Map<string, Touch[]>();
      for (const x of touches) byCustomer.set(x.customerId, [...(byCustomer.get(x.customerId) ?? []), x]);
      for (const [version, model] of Object.entries(MODELS)) {
        const [counts] = await allocator`
          select * from apportion.recompute_window_for(${t}, '2025-01-01T00:00Z', '2026-01-01T00:00Z', ${version})`;
        expect(counts!.event_count).toBe(BigInt(events.length));
        const want = new Map<string, string>();
        for (const e of events) {
          for (const a of allocate(e, byCustomer.get(e.customerId) ?? [], model, DIRECT)) {
            want.set(`${e.id} ${a.channel}`, `${a.cents} ${a.ratio} ${a.touchpointCount}`);
          }
        }
        const rows = await reader`select tenant_id::text, event_id::text, channel, allocated_revenue_cents::text as cents,
                                         allocation_ratio::text as ratio, touchpoint_count
                                    from apportion.allocations_for(${t}, ${version})`;
        const got = new Map(rows.map((r) => [`${r.event_id} ${r.channel}`, `${r.cents} ${r.ratio} ${r.touchpoint_count}`]));
        expect(new Set(rows.map((r) => r.tenant_id))).toEqual(new Set([t]));
        for (const [k, v] of want) if (got.get(k) !== v) mismatches.push(`${t} ${version} ${k}: router ${got.get(k) ?? '(none)'}, reference ${v}`);
        for (const k of got.keys()) if (!want.has(k)) mismatches.push(`${t} ${version} ${k}: router only`);
        compared += want.size;
      }
    }
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(compared).toBeGreaterThan(10_000);
    await allocator.end();
    await reader.end();
  });

  it('reaches only the tenant\'s shard and rows', async () => {
    const [a, b] = [TENANTS[0]!, TENANTS[1]!]; // shard 0 and shard 1
    const eventOfB = data.get(b)!.events[0]!.id;
    const allocator = await routerAs('apportion_allocator');
    // B's event asked for under A: A's shard does not have it, and says so.
    await expect(allocator`select * from apportion.allocate_event_for(${a}, ${eventOfB}, 'so-linear')`).rejects.toMatchObject({ code: '22023' });
    // An event id of A's own tenant on B's shard: nothing under B either.
    const eventOfA = data.get(a)!.events[0]!.id;
    await expect(allocator`select * from apportion.allocate_event_for(${b}, ${eventOfA}, 'so-linear')`).rejects.toMatchObject({ code: '22023' });
    // A tenant the router has not placed.
    await expect(allocator`select * from apportion.allocations_for('5c000000-0000-4000-8000-0000000000ee', 'so-linear')`)
      .rejects.toMatchObject({ code: '22023' });
    await allocator.end();
    // A's rows live on shard 0 only; B's on shard 1 only.
    const [onOther] = await shardAdmins[1]!<{ n: number }[]>`
      select count(*)::int as n from apportion.attribution_events where tenant_id = ${a}::uuid`;
    expect(onOther!.n).toBe(0);
    const [onOwn] = await shardAdmins[0]!<{ n: number }[]>`
      select count(*)::int as n from apportion.attribution_events where tenant_id = ${a}::uuid`;
    expect(onOwn!.n).toBe(data.get(a)!.events.length);
    // The router grants as a shard does: ingest may not allocate, a reader may not ingest.
    const ingester = await routerAs('apportion_ingest');
    await expect(ingester`select * from apportion.allocate_event_for(${a}, ${eventOfA}, 'so-linear')`).rejects.toMatchObject({ code: '42501' });
    await ingester.end();
    const reader = await routerAs('apportion_reader');
    await expect(reader`select apportion.ingest_events_for(${a}, '[]')`).rejects.toMatchObject({ code: '42501' });
    // Nor may a runtime role create tenants or read the placement's servers.
    await expect(reader`select apportion.create_tenant('x')`).rejects.toMatchObject({ code: '42501' });
    await expect(reader`select * from apportion_router.shards`).rejects.toMatchObject({ code: '42501' });
    await expect(reader`select * from pg_user_mappings where umoptions is not null`).resolves.toHaveLength(0);
    await reader.end();
  });

  it('migrates again from the configuration with `apportion migrate` (APPORTION_SHARDS), and routes as before', async () => {
    const file = path.join(os.tmpdir(), `apportion-shards-${process.pid}.json`);
    fs.writeFileSync(file, JSON.stringify(cfg));
    try {
      const res = spawnSync(process.execPath, ['--import', 'tsx', path.resolve('orchestrator/cli.ts'), 'migrate', '--json'], {
        env: { ...process.env, APPORTION_SHARDS: file, DATABASE_URL: '' }, encoding: 'utf8', timeout: 120_000,
      });
      expect(res.status, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)).toEqual({ shards: 2 });
    } finally {
      fs.rmSync(file, { force: true });
    }
    const reader = await routerAs('apportion_reader');
    const rows = await reader`select count(*)::int as n from apportion.allocations_for(${TENANTS[1]!}, 'so-linear')`;
    expect(rows[0]!.n).toBeGreaterThan(0);
    await reader.end();
  });

  it('runs the live path on each shard with its own orchestrator, and merges the queue overview', async () => {
    for (const s of cfg.shards) {
      orchestrators.push(await startOrchestrator(await loginRoleUrl(s, 'apportion_worker', 'apportion_worker_so_login', 'test-only-so-worker')));
    }
    const ingester = await routerAs('apportion_ingest');
    const fresh = TENANTS.map((t, i) => ({
      tenant: t,
      id: `5c000000-0000-4000-8000-0000000001${i.toString().padStart(2, '0')}`,
    }));
    for (const f of fresh) {
      await ingester`select apportion.activate_model_for(${f.tenant}, 'so-linear')`;
      await ingester`select apportion.ingest_events_for(${f.tenant}, ${ingester.json([
        { id: f.id, customer_id: 'customer-1', occurred_at: '2025-05-09T00:00:00Z', revenue_cents: 12345, currency: 'EUR' },
      ])})`;
    }
    await ingester.end();
    const reader = await routerAs('apportion_reader');
    for (const f of fresh) {
      await waitFor(`the live path for ${f.tenant}`, async () => {
        const rows = await reader`select sum(allocated_revenue_cents)::text as cents from apportion.allocations_for(${f.tenant}, 'so-linear')
                                   where event_id = ${f.id}::uuid`;
        return rows[0]?.cents === '12345' || undefined;
      });
    }
    await reader.end();
    const worker = await routerAs('apportion_worker');
    const overview = await worker`select queue, queued, running, open_failures from apportion.queue_overview() order by queue`;
    expect(overview.map((q) => q.queue)).toEqual(['attribution', 'housekeeping', 'llm', 'maintenance']);
    const perShard = await Promise.all(shardAdmins.map((s) => s`select queue, open_failures from apportion.queue_overview() order by queue`));
    expect(overview.map((q) => q.open_failures)).toEqual(
      perShard[0]!.map((q, i) => BigInt(q.open_failures) + BigInt(perShard[1]![i]!.open_failures)));
    await worker.end();
  });

  /** Everything of a tenant as the router reads it, and where its rows are. */
  async function snapshot(tenant: string) {
    const reader = await routerAs('apportion_reader');
    const rows: string[] = [];
    for (const version of [...Object.keys(MODELS), '1.0.0']) {
      const r = await reader`select event_id::text, channel, allocated_revenue_cents::text as cents, allocation_ratio::text as ratio,
                                    touchpoint_count, computed_at, change_reason
                               from apportion.allocations_for(${tenant}, ${version}) order by event_id, channel`;
      rows.push(...r.map((x) => `${version} ${x.event_id} ${x.channel} ${x.cents} ${x.ratio} ${x.touchpoint_count} ${x.computed_at.toISOString()} ${x.change_reason}`));
    }
    const daily = await reader`select * from apportion.daily_channel_revenue_for(${tenant})`;
    await reader.end();
    const where = await Promise.all(shardAdmins.map(async (s) => {
      const [c] = await s<{ events: number; touches: number; allocations: number; history: number; tenants: number; channels: number }[]>`
        select (select count(*)::int from apportion.attribution_events where tenant_id = ${tenant}::uuid) as events,
               (select count(*)::int from apportion.touchpoints where tenant_id = ${tenant}::uuid) as touches,
               (select count(*)::int from apportion.attribution_allocations where tenant_id = ${tenant}::uuid) as allocations,
               (select count(*)::int from apportion.allocation_history where tenant_id = ${tenant}::uuid) as history,
               (select count(*)::int from apportion.tenants where id = ${tenant}::uuid) as tenants,
               (select count(*)::int from apportion.channels where tenant_id = ${tenant}::uuid) as channels`;
      return c!;
    }));
    const [placement] = await router<{ shard: number; moving_to: number | null }[]>`
      select shard, moving_to from apportion_router.placement where tenant_id = ${tenant}::uuid`;
    const moves = await router`select 1 from apportion_router.moves where tenant_id = ${tenant}::uuid`;
    return { rows, daily: daily.length, where, placement, moves: moves.length };
  }

  const STEPS: MoveStep[] = ['marked', 'locked', 'copied', 'verified', 'switching', 'committed', 'switched', 'cleaned'];

  it('moves a tenant interrupted after every step and run again: everything once, on the new shard', async () => {
    const tenant = TENANTS[2]!; // on shard 0
    // A refund and a recompute's history, so every kind of row travels.
    const ingester = await routerAs('apportion_ingest');
    const event = data.get(tenant)!.events.find((e) => e.revenueCents > 100n)!;
    await ingester`select apportion.ingest_refunds_for(${tenant}, ${ingester.json([
      { event_id: event.id, amount_cents: 50, occurred_at: '2025-05-20T00:00:00Z', external_refund_id: 'so-refund-1' },
    ])})`;
    await ingester.end();
    const allocator = await routerAs('apportion_allocator');
    await allocator`select * from apportion.recompute_window_for(${tenant}, '2025-01-01T00:00Z', '2026-01-01T00:00Z', 'so-linear')`;
    await allocator.end();
    const before = await snapshot(tenant);
    expect(before.placement).toEqual({ shard: 0, moving_to: null });
    expect(before.where[1]).toEqual({ events: 0, touches: 0, allocations: 0, history: 0, tenants: 0, channels: 0 });
    let shard = 0;
    for (const step of STEPS) {
      const to = 1 - shard;
      await expect(moveTenant(cfg, tenant, to, { failAfter: step })).rejects.toThrow(`after step ${step}`);
      if (step !== 'cleaned') {
        // Until it is run again the tenant's calls are refused (or, after the switch, already served by the new shard).
        const reader = await routerAs('apportion_reader');
        const call = reader`select count(*) from apportion.allocations_for(${tenant}, 'so-linear')`;
        if (step === 'switched') await expect(call).resolves.toBeDefined();
        else await expect(call).rejects.toMatchObject({ code: '55006' });
        await reader.end();
      }
      const result = await moveTenant(cfg, tenant, to);
      expect(result.to).toBe(to);
      const after = await snapshot(tenant);
      expect(after.rows, `after an interruption at ${step}`).toEqual(before.rows);
      expect(after.daily).toBe(before.daily);
      expect(after.placement).toEqual({ shard: to, moving_to: null });
      expect(after.moves).toBe(0);
      expect(after.where[to]).toEqual(before.where[0]);
      expect(after.where[shard]).toEqual({ events: 0, touches: 0, allocations: 0, history: 0, tenants: 0, channels: 0 });
      shard = to;
    }
    // The refund and its splits (50 cents under every version that allocated the event) came along.
    const [refund] = await shardAdmins[shard]!<{ n: number; split: string; versions: number }[]>`
      select count(*)::int as n,
             (select sum(refunded_cents)::text from apportion.refund_allocations where tenant_id = ${tenant}::uuid) as split,
             (select count(distinct model_version)::int from apportion.attribution_allocations
               where tenant_id = ${tenant}::uuid and event_id = ${event.id}::uuid) as versions
        from apportion.refunds where tenant_id = ${tenant}::uuid`;
    expect(refund!.versions).toBe(Object.keys(MODELS).length);
    expect(refund).toMatchObject({ n: 1, split: String(50 * refund!.versions) });
  }, 120_000);

  it('refuses a second move of the same tenant while one runs, and a tenant with bound logins', async () => {
    const tenant = TENANTS[2]!;
    const [placed] = await router<{ shard: number }[]>`select shard from apportion_router.placement where tenant_id = ${tenant}::uuid`;
    const to = 1 - placed!.shard;
    const before = await snapshot(tenant);
    const results = await Promise.allSettled([moveTenant(cfg, tenant, to), moveTenant(cfg, tenant, to)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(String(refused.reason)).toMatch(/another move of tenant .* is running|is on shard \d already/);
    const after = await snapshot(tenant);
    expect(after.rows).toEqual(before.rows);
    expect(after.placement).toEqual({ shard: to, moving_to: null });
    expect(after.where[1 - to]).toEqual({ events: 0, touches: 0, allocations: 0, history: 0, tenants: 0, channels: 0 });

    // A login bound to the tenant there: refused before anything changes.
    const login = 'apportion_reader_so_login';
    await shardAdmins[to]!`select apportion.bind_login(${login}::regrole, ${tenant}::uuid)`;
    await expect(moveTenant(cfg, tenant, 1 - to)).rejects.toThrow(/logins bound to it .*apportion_reader_so_login/);
    await shardAdmins[to]!`select apportion.unbind_login(${login}::regrole, ${tenant}::uuid)`;
    const still = await snapshot(tenant);
    expect(still.placement).toEqual({ shard: to, moving_to: null });
    expect(still.moves).toBe(0);
    expect(still.rows).toEqual(before.rows);
  });

  it('moves a tenant while it ingests through the router: every event once, allocated on the new shard', async () => {
    const tenant = TENANTS[3]!; // on shard 1, so-linear active, orchestrators running
    const ingester = await routerAs('apportion_ingest');
    let refused = 0;
    let sent = 0;
    const ingestAll = (async () => {
      for (let batch = 0; batch < 40; batch++) {
        const rows = Array.from({ length: 25 }, (_, i) => ({
          customer_id: `customer-${(batch * 25 + i) % 120}`, occurred_at: '2025-05-10T00:00:00Z',
          revenue_cents: 1000 + i, currency: 'EUR', external_event_id: `so-live-${batch}-${i}`,
        }));
        for (;;) {
          try {
            await ingester`select apportion.ingest_events_for(${tenant}, ${ingester.json(rows)})`;
            sent += rows.length;
            break;
          } catch (err) {
            if ((err as { code?: string }).code !== '55006') throw err;
            refused++;
            await new Promise((r) => setTimeout(r, 5));
          }
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 30));
    const result = await moveTenant(cfg, tenant, 0);
    await ingestAll;
    await ingester.end();
    expect(result).toMatchObject({ from: 1, to: 0 });
    expect(sent).toBe(1000);
    const [onTarget] = await shardAdmins[0]!<{ n: number; distinct: number }[]>`
      select count(*)::int as n, count(distinct external_event_id)::int as distinct from apportion.attribution_events
       where tenant_id = ${tenant}::uuid and external_event_id like 'so-live-%'`;
    expect(onTarget).toEqual({ n: 1000, distinct: 1000 });
    const [onSource] = await shardAdmins[1]!<{ n: number }[]>`
      select count(*)::int as n from apportion.attribution_events where tenant_id = ${tenant}::uuid`;
    expect(onSource!.n).toBe(0);
    // The live path finishes on the new shard: every event allocated once, its parts summing to its revenue.
    await waitFor('every live event allocated on shard 0', async () => {
      const [r] = await shardAdmins[0]!<{ pending: number; unallocated: number }[]>`
        select (select count(*)::int from apportion.pending_allocations where tenant_id = ${tenant}::uuid) as pending,
               (select count(*)::int from apportion.attribution_events e where e.tenant_id = ${tenant}::uuid
                   and e.external_event_id like 'so-live-%'
                   and not exists (select from apportion.attribution_allocations a where a.tenant_id = e.tenant_id
                                     and a.event_id = e.id and a.model_version = 'so-linear')) as unallocated`;
      return (r!.pending === 0 && r!.unallocated === 0) || undefined;
    }, 60_000);
    const [sums] = await shardAdmins[0]!<{ bad: number }[]>`
      select count(*)::int as bad from (
        select e.id from apportion.attribution_events e join apportion.attribution_allocations a
          on a.tenant_id = e.tenant_id and a.event_id = e.id and a.model_version = 'so-linear'
         where e.tenant_id = ${tenant}::uuid group by e.id, e.revenue_cents having sum(a.allocated_revenue_cents) <> e.revenue_cents) x`;
    expect(sums!.bad).toBe(0);
    // The move happened mid-ingest: some calls were refused while it switched, and were sent again.
    expect(refused).toBeGreaterThan(0);
  }, 120_000);
});
