// Scale-out: what the PL/Proxy router costs, and what a second shard gives.
// A router and two shards in the bench cluster (installed by migrateShards),
// 8 tenants placed by the router's rule (so tenants 0, 2, 4, 6 on shard 0
// and 1, 3, 5, 7 on shard 1), each with 10,000 events and ~4 touches per
// event generated in SQL on its shard.
//   (r1) allocate one event: 300 allocate_event_for calls through the router
//        vs the same calls on the shard itself, as an apportion_allocator
//        login (the events are allocated already: each call recomputes and
//        writes nothing);
//   (r2) ingest 500 events: 20 ingest_events_for calls of 500 new events,
//        through the router vs on the shard, as an apportion_ingest login;
//   (t)  throughput: recompute_window_for of 4 tenants at once (4 clients,
//        40,000 events), all 4 on shard 0 vs 2 on each shard, through the
//        router; and the 2-shard case on the shards directly (the router's
//        own cost on heavy calls).
// After one warm-up pass (connections, plans), alternating order per round
// (A B, B A, A B); 3 rounds; every round reported.
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { migrateShards, type ShardsConfig } from '../../orchestrator/shards.js';
import { recreateDatabase } from '../lib/cluster.js';
import { loginRoleUrl, type GroupRole } from '../lib/roles.js';
import { stat, type Stat } from './lib/stats.js';

const ROUNDS = 3;
const TENANTS = Array.from({ length: 8 }, (_, i) => `5cbe0000-0000-4000-8000-00000000000${i}`);
const MODEL = 'bench-so-linear';
const CALLS = 300;
const INGESTS = 20;
const INGEST_SIZE = 500;

export interface ScaleOutResult {
  setup: { eventsPerTenant: number; tenants: number; calls: number; ingests: number; ingestSize: number; rounds: number };
  /** Milliseconds per call, per round. */
  allocateOne: { router: number[]; direct: number[]; ratio: number[] };
  ingest500: { router: number[]; direct: number[]; ratio: number[] };
  /** Events per second, per round. */
  throughput: {
    oneShard: number[];
    twoShards: number[];
    twoShardsDirect: number[];
    /** per shard in the two-shard case, events/s of its tenants' calls */
    perShard: [number[], number[]];
  };
  stats: Record<string, Stat>;
}

async function loadShardTenant(shard: postgres.Sql, tenant: string, seed: number, events: number): Promise<void> {
  await shard.begin(async (tx) => {
    await tx`select setseed(${seed})`;
    await tx`insert into apportion.attribution_events (tenant_id, id, customer_id, occurred_at, revenue_cents, currency)
             select ${tenant}::uuid, gen_random_uuid(), 'c' || i, timestamptz '2025-03-01' + random() * interval '10 days',
                    (random() * 100000)::bigint, 'USD'
               from generate_series(1, ${events}) i`;
    await tx`insert into apportion.touchpoints (tenant_id, customer_id, channel, occurred_at)
             select ${tenant}::uuid, 'c' || i, (array['email', 'display', 'google_search', 'direct', 'referral'])[1 + (random() * 4)::int],
                    timestamptz '2025-02-20' + random() * interval '18 days'
               from generate_series(1, ${events}) i, generate_series(1, 4) k`;
  });
  await shard`analyze apportion.attribution_events`;
  await shard`analyze apportion.touchpoints`;
}

export async function benchScaleOut(url: string, opts: { shrink?: number; log?: (l: string) => void } = {}): Promise<ScaleOutResult> {
  const log = opts.log ?? (() => {});
  const eventsPerTenant = Math.max(100, Math.floor(10_000 / (opts.shrink ?? 1)));
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  const names = ['bench_so_router', 'bench_so_shard0', 'bench_so_shard1'];
  const [routerUrl, ...shardUrls] = await Promise.all(names.map((n) => recreateDatabase(url, n)));
  const cfg: ShardsConfig = { router: routerUrl!, shards: shardUrls };
  const opened: postgres.Sql[] = [];
  const open = (u: string, max = 1) => {
    const s = postgres(u, { max, onnotice: () => {} });
    opened.push(s);
    return s;
  };
  try {
    log('installing a router and two shards');
    await migrateShards(cfg);
    const router = open(cfg.router);
    const shards = cfg.shards.map((u) => open(u));
    for (const [i, t] of TENANTS.entries()) await router`select apportion.create_tenant(${'bench ' + i}, ${t}::uuid)`;
    await router`select count(*) from apportion.register_model(${MODEL}, 'linear', '{}')`;
    const placement = await router<{ tenant_id: string; shard: number }[]>`
      select tenant_id::text, shard from apportion_router.placement order by tenant_id`;
    const shardOf = new Map(placement.map((p) => [p.tenant_id, p.shard]));
    log(`loading ${eventsPerTenant} events per tenant`);
    for (const [i, t] of TENANTS.entries()) await loadShardTenant(shards[shardOf.get(t)!]!, t, 0.1 + i / 100, eventsPerTenant);

    const as = async (base: string, group: GroupRole, max: number) =>
      open(await loginRoleUrl(base, group, `${group}_bench_so`, `bench-only-so-${group}`), max);
    const routerAlloc = await as(cfg.router, 'apportion_allocator', 4);
    const directAlloc = [await as(cfg.shards[0]!, 'apportion_allocator', 4), await as(cfg.shards[1]!, 'apportion_allocator', 4)];
    const routerIngest = await as(cfg.router, 'apportion_ingest', 1);
    const directIngest = await as(cfg.shards[0]!, 'apportion_ingest', 1);

    // Allocate every tenant once, so the single-event calls find their rows.
    for (const t of TENANTS) await routerAlloc`select * from apportion.recompute_window_for(${t}, '2025-01-01', '2026-01-01', ${MODEL})`;
    const t0 = TENANTS[0]!;
    const sample = (await shards[shardOf.get(t0)!]!<{ id: string }[]>`
      select id::text from apportion.attribution_events where tenant_id = ${t0}::uuid order by id limit ${CALLS}`).map((r) => r.id);

    const allocateOne = async (sql: postgres.Sql) => {
      const start = performance.now();
      for (const id of sample) await sql`select count(*) from apportion.allocate_event_for(${t0}::uuid, ${id}::uuid, ${MODEL})`;
      return (performance.now() - start) / sample.length;
    };
    let batch = 0;
    const ingest = async (sql: postgres.Sql) => {
      const start = performance.now();
      for (let i = 0; i < INGESTS; i++) {
        batch++;
        const rows = Array.from({ length: INGEST_SIZE }, (_, k) => ({
          customer_id: `n${batch}-${k}`, occurred_at: '2025-03-05T00:00:00Z', revenue_cents: 1000 + k, currency: 'USD',
        }));
        await sql`select apportion.ingest_events_for(${t0}::uuid, ${sql.json(rows)})`;
      }
      return (performance.now() - start) / INGESTS;
    };
    const recompute = async (tenants: string[], via: (t: string) => postgres.Sql) => {
      const perShard = [0, 0];
      const times = [0, 0];
      const start = performance.now();
      await Promise.all(tenants.map(async (t) => {
        const s0 = performance.now();
        const [r] = await via(t)`select * from apportion.recompute_window_for(${t}::uuid, '2025-01-01', '2026-01-01', ${MODEL})`;
        const shard = shardOf.get(t)!;
        perShard[shard] = (perShard[shard] ?? 0) + Number(r!.event_count);
        times[shard] = Math.max(times[shard]!, (performance.now() - s0) / 1000);
      }));
      const seconds = (performance.now() - start) / 1000;
      return { rate: (perShard[0]! + perShard[1]!) / seconds, perShard: perShard.map((n, i) => (times[i]! > 0 ? n / times[i]! : 0)) };
    };

    const r: ScaleOutResult = {
      setup: { eventsPerTenant, tenants: TENANTS.length, calls: CALLS, ingests: INGESTS, ingestSize: INGEST_SIZE, rounds: ROUNDS },
      allocateOne: { router: [], direct: [], ratio: [] },
      ingest500: { router: [], direct: [], ratio: [] },
      throughput: { oneShard: [], twoShards: [], twoShardsDirect: [], perShard: [[], []] },
      stats: {},
    };
    const oneShard = TENANTS.filter((t) => shardOf.get(t) === 0).slice(0, 4);
    const twoShards = [...TENANTS.filter((t) => shardOf.get(t) === 0).slice(0, 2), ...TENANTS.filter((t) => shardOf.get(t) === 1).slice(0, 2)];
    // Warm up: every connection of the router's backends to both shards, and the plans.
    await recompute(twoShards, () => routerAlloc);
    await recompute(twoShards, (t) => directAlloc[shardOf.get(t)!]!);
    await allocateOne(routerAlloc);
    await allocateOne(directAlloc[shardOf.get(t0)!]!);
    for (let round = 0; round < ROUNDS; round++) {
      const routerFirst = round % 2 === 0;
      const pair = async <T>(a: () => Promise<T>, b: () => Promise<T>): Promise<[T, T]> => {
        if (routerFirst) {
          const x = await a();
          return [x, await b()];
        }
        const y = await b();
        return [await a(), y];
      };
      const [ar, ad] = await pair(() => allocateOne(routerAlloc), () => allocateOne(directAlloc[shardOf.get(t0)!]!));
      r.allocateOne.router.push(ar);
      r.allocateOne.direct.push(ad);
      r.allocateOne.ratio.push(ar / ad);
      const [ir, id] = await pair(() => ingest(routerIngest), () => ingest(directIngest));
      r.ingest500.router.push(ir);
      r.ingest500.direct.push(id);
      r.ingest500.ratio.push(ir / id);
      const one = await recompute(oneShard, () => routerAlloc);
      const [two, twoDirect] = await pair(
        () => recompute(twoShards, () => routerAlloc),
        () => recompute(twoShards, (t) => directAlloc[shardOf.get(t)!]!),
      );
      r.throughput.oneShard.push(one.rate);
      r.throughput.twoShards.push(two.rate);
      r.throughput.twoShardsDirect.push(twoDirect.rate);
      r.throughput.perShard[0].push(two.perShard[0]!);
      r.throughput.perShard[1].push(two.perShard[1]!);
      log(`round ${round + 1}: allocate one ${ar.toFixed(3)} vs ${ad.toFixed(3)} ms; ingest 500 ${ir.toFixed(1)} vs ${id.toFixed(1)} ms; ` +
        `4 tenants on 1 shard ${Math.round(one.rate)} events/s, on 2 shards ${Math.round(two.rate)} (direct ${Math.round(twoDirect.rate)})`);
    }
    r.stats = {
      allocateOneRouter: stat(r.allocateOne.router), allocateOneDirect: stat(r.allocateOne.direct), allocateOneRatio: stat(r.allocateOne.ratio),
      ingestRouter: stat(r.ingest500.router), ingestDirect: stat(r.ingest500.direct), ingestRatio: stat(r.ingest500.ratio),
      oneShard: stat(r.throughput.oneShard), twoShards: stat(r.throughput.twoShards), twoShardsDirect: stat(r.throughput.twoShardsDirect),
    };
    return r;
  } finally {
    for (const s of opened) await s.end();
    for (const n of names) await admin`drop database if exists ${admin(n)} with (force)`;
    await admin.end();
  }
}

export function scaleOutMarkdown(r: ScaleOutResult): string {
  const f = (xs: number[], d = 3) => xs.map((x) => x.toFixed(d)).join(', ');
  const n = (xs: number[]) => xs.map((x) => Math.round(x).toLocaleString('en-US')).join(', ');
  const s = r.setup;
  return [
    `A router (PL/Proxy) and two shards in one cluster on this machine, installed by \`migrateShards\`; ${s.tenants} tenants placed by the router's rule, ${s.eventsPerTenant.toLocaleString('en-US')} events each (about 4 touches per event, linear). One warm-up pass, then ${s.rounds} rounds, router and direct alternating which goes first; every round listed.`,
    '',
    '| measure | through the router | on the shard directly | router / direct, per round |',
    '|---|---|---|---|',
    `| (r1) allocate one event, ms per call (${s.calls} calls) | ${f(r.allocateOne.router)} | ${f(r.allocateOne.direct)} | ${f(r.allocateOne.ratio, 2)} |`,
    `| (r2) ingest ${s.ingestSize} events, ms per call (${s.ingests} calls) | ${f(r.ingest500.router, 1)} | ${f(r.ingest500.direct, 1)} | ${f(r.ingest500.ratio, 2)} |`,
    '',
    `(t) recompute_window_for of 4 tenants at once (4 clients, ${(4 * s.eventsPerTenant).toLocaleString('en-US')} events), events/s per round:`,
    '',
    '| placement | events/s | per shard (2 shards: each shard\'s tenants / their time) |',
    '|---|---|---|',
    `| 4 tenants on shard 0, through the router | ${n(r.throughput.oneShard)} | |`,
    `| 2 tenants on each shard, through the router | ${n(r.throughput.twoShards)} | shard 0: ${n(r.throughput.perShard[0])}; shard 1: ${n(r.throughput.perShard[1])} |`,
    `| 2 tenants on each shard, on the shards directly | ${n(r.throughput.twoShardsDirect)} | |`,
    '',
    'Both shards share this machine\'s 2 cores, so a second shard is not expected to add throughput here; on separate machines each shard brings its own. The router forwards each call as one statement over a kept connection; on a call of a few milliseconds that is the overhead in (r1), on heavy calls it is lost in the work (the direct row of (t)).',
  ].join('\n');
}
