// Engine benchmark: recompute_window throughput per model kind, against a
// baseline that reads the same inputs and writes the same rows with constant
// amounts; scaling from 10k to 100k events; and the cost of a long touchpoint
// history. Every figure is a median over repeated runs, with min and max.
//
// Setup (all generated in SQL with setseed, so every run sees the same data):
//   tenant L: 100,000 events over 10 days, one customer each, 1..7 touches
//             per customer (mean 4) within the 30-day lookback, 7 channels.
//   tenant S: 10,000 events generated the same way (scaling, "no history").
//   tenant H: tenant S's data plus 1,000,000 older touchpoints of the same
//             customers, 60..400 days before the window (outside every lookback).
// Each timed run is one transaction as apportion_worker under the tenant,
// committed on a durable cluster, starting from an empty allocations table.
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { stat, type Stat } from './lib/stats.js';

export const KINDS = [
  'last_touch', 'first_touch', 'last_non_direct', 'linear', 'time_decay', 'position_based', 'fixed_split', 'markov',
] as const;
export type Kind = (typeof KINDS)[number];

const PARAMS: Record<Kind, object> = {
  last_touch: {},
  first_touch: {},
  last_non_direct: {},
  linear: {},
  time_decay: { half_life: '7 days' },
  position_based: { first: 0.4, last: 0.4 },
  fixed_split: { channels: ['direct', 'email', 'google_search'] },
  // Trained for each tenant on its own data before the runs.
  markov: { training_start: '2025-01-01T00:00:00Z', training_end: '2025-03-11T00:00:00Z' },
};

const TENANT_L = '0b0b0000-0000-4000-8000-00000000000a';
const TENANT_S = '0b0b0000-0000-4000-8000-00000000000b';
const TENANT_H = '0b0b0000-0000-4000-8000-00000000000c';
export const WINDOW_START = '2025-03-01T00:00:00Z';
export const WINDOW_END = '2025-03-11T00:00:00Z';

// Every Stat here is in seconds.
export interface KindResult {
  kind: Kind;
  modelVersion: string;
  events: number;
  rows: number;
  engine: Stat;
  baseline: Stat;
  eventsPerSecond: number;
  baselineEventsPerSecond: number;
  /** engine median / baseline median; goal <= 1.5 */
  ratio: number;
}

export interface ScalingResult {
  kind: Kind;
  small: Stat;
  large: Stat;
  /** time(100k) / time(10k); goal <= 11 */
  ratio: number;
}

export interface EngineBenchResult {
  setup: {
    largeEvents: number;
    smallEvents: number;
    touchpointsLarge: number;
    touchpointsSmall: number;
    historyTouchpoints: number;
    meanTouchesPerEvent: number;
    repeats: number;
    window: [string, string];
    durable: boolean;
    settings: Record<string, string>;
  };
  kinds: KindResult[];
  scaling: ScalingResult[];
  history: { kind: Kind; events: number; historyTouchpoints: number; withHistory: Stat; withoutHistory: Stat; ratio: number };
  goals: { name: string; goal: string; value: number; met: boolean }[];
}

export interface EngineBenchOptions {
  /** Divide every data size by this (smoke runs only; figures need 1). */
  shrink?: number;
  repeats?: number;
  log?: (line: string) => void;
}

type Sql = postgres.Sql<Record<string, unknown>>;

/** Generate one tenant's events and touches in SQL (deterministic via setseed). */
export async function loadTenant(sql: Sql, tenant: string, name: string, events: number, seed: number, historyPerCustomer: number): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`select apportion.create_tenant(${name}, ${tenant})`;
    await tx`select set_config('app.tenant_id', ${tenant}, true), setseed(${seed})`;
    await tx`
      insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency)
      select gen_random_uuid(), 'customer-' || i,
             ${WINDOW_START}::timestamptz + random() * (${WINDOW_END}::timestamptz - ${WINDOW_START}::timestamptz),
             (random() * 100000)::bigint, 'USD'
        from generate_series(1, ${events}::int) i`;
    await tx`
      insert into apportion.touchpoints (customer_id, channel, occurred_at)
      select e.customer_id,
             (array['direct', 'email', 'google_search', 'organic_search', 'paid_social', 'referral', 'display'])[1 + floor(random() * 7)::int],
             e.occurred_at - random() * interval '29 days'
        from apportion.attribution_events e
       cross join lateral generate_series(1, 1 + floor(random() * 7)::int + (e.id is null)::int) k
       where e.tenant_id = ${tenant}`;
    if (historyPerCustomer > 0) {
      await tx`
        insert into apportion.touchpoints (customer_id, channel, occurred_at)
        select 'customer-' || i,
               (array['direct', 'email', 'google_search', 'organic_search', 'paid_social', 'referral', 'display'])[1 + floor(random() * 7)::int],
               ${WINDOW_START}::timestamptz - interval '60 days' - random() * interval '340 days'
          from generate_series(1, ${events}::int) i, generate_series(1, ${historyPerCustomer}::int) k`;
    }
  });
}

/** One transaction as apportion_worker under `tenant`; returns seconds. */
async function timed(sql: Sql, tenant: string, body: (tx: postgres.TransactionSql<Record<string, unknown>>) => Promise<unknown>): Promise<number> {
  await sql`truncate apportion.attribution_allocations`;
  const t0 = performance.now();
  await sql.begin(async (tx) => {
    await tx`set local role apportion_worker`;
    await tx`select set_config('app.tenant_id', ${tenant}, true)`;
    await body(tx);
  });
  return (performance.now() - t0) / 1000;
}

async function runEngine(sql: Sql, tenant: string, model: string): Promise<{ seconds: number; events: number; rows: number }> {
  let events = 0;
  let rows = 0;
  const seconds = await timed(sql, tenant, async (tx) => {
    const [r] = await tx`select * from apportion.recompute_window(${WINDOW_START}, ${WINDOW_END}, ${model})`;
    events = Number(r!.event_count);
    rows = Number(r!.allocation_count);
  });
  return { seconds, events, rows };
}

/**
 * The baseline: the engine's input join, read the way the engine reads it
 * for that kind (events in the window; then their in-lookback touches by
 * the lookback index: per event as one ordered array for the single-touch
 * kinds, probed in customer order, as rows for the weighted kinds, none for
 * fixed_split, which reads no touches), then an insert of the same
 * allocation rows the engine wrote (taken from bench.expected) with
 * constant amounts, in event id order as the engine inserts them. No
 * weights, no ranking, no money arithmetic. Where an order is the
 * baseline's own choice it takes the faster one (measured in psql, 4 runs
 * each: events sorted by id made the weighted and fixed_split baselines
 * 5-7% faster, since the insert then follows the events key; the engine
 * gains nothing from that sort and skips it).
 */
async function runBaseline(sql: Sql, tenant: string, model: string, kind: Kind): Promise<number> {
  const singleTouch = kind === 'last_touch' || kind === 'first_touch' || kind === 'last_non_direct';
  return timed(sql, tenant, async (tx) => {
    const events = tx`
      select e.id, e.customer_id, e.occurred_at, e.occurred_at - interval '30 days' as window_from, e.currency
        from apportion.attribution_events e
       where e.tenant_id = ${tenant} and e.occurred_at >= ${WINDOW_START} and e.occurred_at < ${WINDOW_END}
       order by e.id`;
    const touches = kind === 'fixed_split'
      ? tx`select ev.id as event_id from ev`
      : singleTouch
      ? tx`
        select ev.id as event_id, s.channels
          from (select * from ev order by ev.customer_id) ev
         cross join lateral (
            select array_agg(t.channel order by t.occurred_at, t.id) as channels
              from apportion.touchpoints t
             where t.tenant_id = ${tenant} and t.customer_id = ev.customer_id
               and t.occurred_at >= ev.window_from and t.occurred_at <= ev.occurred_at
          ) s`
      : tx`
        select ev.id as event_id, t.channel, t.occurred_at, t.id
          from ev
          left join lateral (
            select t.channel, t.occurred_at, t.id
              from apportion.touchpoints t
             where t.tenant_id = ${tenant} and t.customer_id = ev.customer_id
               and t.occurred_at >= ev.window_from and t.occurred_at <= ev.occurred_at
          ) t on true`;
    await tx`
      with ev as materialized (${events}),
      joined as materialized (${touches})
      insert into apportion.attribution_allocations
        (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio,
         touchpoint_count, currency, event_occurred_at, correlation_id, computed_at)
      select ${tenant}::uuid, x.event_id, ${model}, x.channel, 0, 0, x.touchpoint_count, ev.currency, ev.occurred_at, null, now()
        from bench.expected x
        join ev on ev.id = x.event_id
       where (select count(*) from joined) >= 0`;
  });
}

export async function benchEngine(url: string, opts: EngineBenchOptions = {}): Promise<EngineBenchResult> {
  const shrink = opts.shrink ?? 1;
  const repeats = opts.repeats ?? 3;
  const log = opts.log ?? (() => {});
  const largeEvents = Math.round(100_000 / shrink);
  const smallEvents = Math.round(10_000 / shrink);
  const historyPerCustomer = 100; // x smallEvents = 1,000,000 at full size

  const sql = postgres(url, { max: 1, onnotice: () => {} }) as unknown as Sql;
  try {
    // Fresh state: the bench owns its tenants and model versions.
    await sql`drop schema if exists bench cascade`;
    await sql`create schema bench`;
    await sql`grant usage on schema bench to apportion_worker`;
    await sql`create table bench.expected (event_id uuid, channel text, touchpoint_count int)`;
    await sql`grant select on bench.expected to apportion_worker`;
    await sql`truncate apportion.attribution_allocations`;
    // (Trained state is never deleted row by row; the bench's database is its own.)
    await sql`truncate apportion.markov_removal_effects, apportion.markov_transitions, apportion.trained_models`;
    await sql`delete from apportion.touchpoints where tenant_id in (${TENANT_L}, ${TENANT_S}, ${TENANT_H})`;
    await sql`delete from apportion.attribution_events where tenant_id in (${TENANT_L}, ${TENANT_S}, ${TENANT_H})`;
    await sql`delete from apportion.tenant_models where tenant_id in (${TENANT_L}, ${TENANT_S}, ${TENANT_H})`;
    await sql`delete from apportion.channels where tenant_id in (${TENANT_L}, ${TENANT_S}, ${TENANT_H})`;
    await sql`delete from apportion.tenants where id in (${TENANT_L}, ${TENANT_S}, ${TENANT_H})`;
    for (const kind of KINDS) {
      await sql`select apportion.register_model(${'bench-' + kind}, ${kind}, ${sql.json(PARAMS[kind] as postgres.JSONValue)})`;
    }

    log(`loading data: ${largeEvents} + ${smallEvents} + ${smallEvents} events, ${historyPerCustomer * smallEvents} history touchpoints`);
    await loadTenant(sql, TENANT_L, 'bench large', largeEvents, 0.11, 0);
    await loadTenant(sql, TENANT_S, 'bench small', smallEvents, 0.22, 0);
    await loadTenant(sql, TENANT_H, 'bench history', smallEvents, 0.22, historyPerCustomer);
    await sql`vacuum analyze apportion.touchpoints`;
    await sql`vacuum analyze apportion.attribution_events`;
    for (const tenant of [TENANT_L, TENANT_S, TENANT_H]) {
      await sql.begin(async (tx) => {
        await tx`set local role apportion_worker`;
        await tx`select set_config('app.tenant_id', ${tenant}, true)`;
        await tx`select * from apportion.train_model('bench-markov')`;
      });
    }
    const counts = await sql`select tenant_id::text as tenant, count(*)::int as n from apportion.touchpoints group by 1`;
    const touches = (t: string) => Number(counts.find((c) => c.tenant === t)?.n ?? 0);
    const settings = Object.fromEntries(
      (await sql`select name, setting from pg_settings where name in ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'work_mem', 'jit', 'max_parallel_workers_per_gather')`)
        .map((r) => [r.name as string, r.setting as string]),
    );

    const kinds: KindResult[] = [];
    const scaling: ScalingResult[] = [];
    for (const kind of KINDS) {
      const model = 'bench-' + kind;
      // Warm-up run; also records the rows the baseline will write.
      const warm = await runEngine(sql, TENANT_L, model);
      await sql`truncate bench.expected`;
      await sql`insert into bench.expected select event_id, channel, touchpoint_count from apportion.attribution_allocations`;
      await sql`analyze bench.expected`;
      const engineRuns: number[] = [];
      const baselineRuns: number[] = [];
      const smallRuns: number[] = [];
      for (let r = 0; r < repeats; r++) {
        engineRuns.push((await runEngine(sql, TENANT_L, model)).seconds);
        baselineRuns.push(await runBaseline(sql, TENANT_L, model, kind));
        smallRuns.push((await runEngine(sql, TENANT_S, model)).seconds);
      }
      const engine = stat(engineRuns);
      const baseline = stat(baselineRuns);
      const k: KindResult = {
        kind, modelVersion: model, events: warm.events, rows: warm.rows, engine, baseline,
        eventsPerSecond: warm.events / engine.median,
        baselineEventsPerSecond: warm.events / baseline.median,
        ratio: engine.median / baseline.median,
      };
      kinds.push(k);
      const small = stat(smallRuns);
      scaling.push({ kind, small, large: engine, ratio: engine.median / small.median });
      log(`${kind}: ${warm.events} events -> ${warm.rows} rows; engine ${fmt(engine)}, baseline ${fmt(baseline)}, ratio ${k.ratio.toFixed(2)}; ` +
          `10k-scale ${fmt(small)}, scaling ${(engine.median / small.median).toFixed(2)}`);
    }

    const historyKind: Kind = 'linear';
    const withRuns: number[] = [];
    const withoutRuns: number[] = [];
    await runEngine(sql, TENANT_H, 'bench-' + historyKind); // warm-up
    for (let r = 0; r < repeats; r++) {
      withoutRuns.push((await runEngine(sql, TENANT_S, 'bench-' + historyKind)).seconds);
      withRuns.push((await runEngine(sql, TENANT_H, 'bench-' + historyKind)).seconds);
    }
    const history = {
      kind: historyKind, events: smallEvents, historyTouchpoints: historyPerCustomer * smallEvents,
      withHistory: stat(withRuns), withoutHistory: stat(withoutRuns),
      ratio: stat(withRuns).median / stat(withoutRuns).median,
    };
    log(`history (${historyKind}): with ${fmt(history.withHistory)}, without ${fmt(history.withoutHistory)}, ratio ${history.ratio.toFixed(2)}`);
    await sql`truncate apportion.attribution_allocations`;

    const goals = [
      ...kinds.map((k) => ({ name: `${k.kind}: engine / baseline`, goal: '<= 1.5', value: k.ratio, met: k.ratio <= 1.5 })),
      ...scaling.map((s) => ({ name: `${s.kind}: time(100k) / time(10k)`, goal: '<= 11', value: s.ratio, met: s.ratio <= 11 })),
      { name: 'history: with 1M old touchpoints / without', goal: '<= 1.3', value: history.ratio, met: history.ratio <= 1.3 },
    ];
    return {
      setup: {
        largeEvents, smallEvents,
        touchpointsLarge: touches(TENANT_L), touchpointsSmall: touches(TENANT_S),
        historyTouchpoints: historyPerCustomer * smallEvents,
        meanTouchesPerEvent: touches(TENANT_L) / largeEvents,
        repeats, window: [WINDOW_START, WINDOW_END],
        durable: settings.fsync === 'on' && settings.synchronous_commit === 'on',
        settings,
      },
      kinds, scaling, history, goals,
    };
  } finally {
    await sql.end();
  }
}

export function fmt(s: Stat): string {
  return `${s.median.toFixed(2)} s (min ${s.min.toFixed(2)}, max ${s.max.toFixed(2)})`;
}

/** The engine section of docs/benchmarks.md. */
export function engineMarkdown(r: EngineBenchResult): string {
  const out: string[] = [];
  const s = r.setup;
  out.push('### Setup', '');
  out.push(`- Tenant L: ${s.largeEvents.toLocaleString('en-US')} events over 10 days (${s.window[0]} to ${s.window[1]}), one customer each, ` +
    `${s.touchpointsLarge.toLocaleString('en-US')} touchpoints (mean ${s.meanTouchesPerEvent.toFixed(2)} per event, 1..7, all inside the 30-day lookback), 7 channels.`);
  out.push(`- Tenant S: ${s.smallEvents.toLocaleString('en-US')} events generated the same way (${s.touchpointsSmall.toLocaleString('en-US')} touchpoints).`);
  out.push(`- Tenant H: tenant S's data plus ${s.historyTouchpoints.toLocaleString('en-US')} older touchpoints of the same customers, 60..400 days before the window.`);
  out.push(`- Each run: one transaction as \`apportion_worker\` under the tenant (RLS on), \`recompute_window\` over the whole window, committed; the allocations table is emptied before every run. ` +
    `Cluster settings: ${Object.entries(s.settings).map(([k, v]) => `${k}=${v}`).join(', ')}${s.durable ? ' (durable)' : ' (NOT durable)'}.`);
  out.push(`- Baseline, same invocation: the engine's input join, read as the engine reads it for that kind (events in the window in id order, then their in-lookback touchpoints by the lookback index: as one ordered channel array per event, probed in customer order, for the single-touch kinds, as rows for the weighted kinds, none for fixed_split), plus an insert of exactly the rows the engine wrote for that kind, in event id order, with constant amounts — no weights, ranking or cent arithmetic. Where an order is the baseline's own choice it takes the faster one.`);
  out.push('- markov: trained once per tenant on its own data (training window 2025-01-01 to 2025-03-11) before the runs; training is not timed here (see the markov section).');
  out.push(`- ${s.repeats} runs each after one warm-up; median (min..max).`, '');
  out.push(`### Throughput per model kind (${s.largeEvents.toLocaleString('en-US')} events)`, '');
  out.push('| kind | rows | engine s | baseline s | events/s | engine / baseline (goal <= 1.5) |');
  out.push('|---|---:|---|---|---:|---:|');
  for (const k of r.kinds) {
    out.push(`| ${k.kind} | ${k.rows.toLocaleString('en-US')} | ${k.engine.median.toFixed(2)} (${k.engine.min.toFixed(2)}..${k.engine.max.toFixed(2)}) | ` +
      `${k.baseline.median.toFixed(2)} (${k.baseline.min.toFixed(2)}..${k.baseline.max.toFixed(2)}) | ${Math.round(k.eventsPerSecond).toLocaleString('en-US')} | ${k.ratio.toFixed(2)}${k.ratio <= 1.5 ? '' : ' (missed)'} |`);
  }
  out.push('', `### Scaling: ${s.smallEvents.toLocaleString('en-US')} vs ${s.largeEvents.toLocaleString('en-US')} events`, '');
  out.push('| kind | 10k s | 100k s | ratio (goal <= 11) |');
  out.push('|---|---|---|---:|');
  for (const x of r.scaling) {
    out.push(`| ${x.kind} | ${x.small.median.toFixed(3)} (${x.small.min.toFixed(3)}..${x.small.max.toFixed(3)}) | ${x.large.median.toFixed(2)} | ${x.ratio.toFixed(2)}${x.ratio <= 11 ? '' : ' (missed)'} |`);
  }
  const h = r.history;
  out.push('', '### Touchpoint history', '');
  out.push(`Allocating ${h.events.toLocaleString('en-US')} new events (${h.kind}) for tenant H (${h.historyTouchpoints.toLocaleString('en-US')} older touchpoints) vs tenant S (none): ` +
    `${h.withHistory.median.toFixed(3)} s (${h.withHistory.min.toFixed(3)}..${h.withHistory.max.toFixed(3)}) vs ${h.withoutHistory.median.toFixed(3)} s (${h.withoutHistory.min.toFixed(3)}..${h.withoutHistory.max.toFixed(3)}): ` +
    `ratio ${h.ratio.toFixed(2)} (goal <= 1.3${h.ratio <= 1.3 ? '' : ', missed'}).`);
  return out.join('\n');
}
