// Data that changes: restatement throughput of late touchpoints through the
// live path vs recompute_window over the same events; the cost of history on
// a first allocation; allocations_as_of over a long history vs the plain
// read of the same rows.
//
// Setup (generated in SQL with setseed, engine bench's generator):
//   tenant R: 10,000 events over 10 days, one customer each, 1..7 touches,
//             linear active. Restatement: 10,000 late touchpoints (one per
//             customer, an hour before its event) inserted as apportion_ingest
//             in statements of 500, then the live path drained as
//             apportion_worker (attribution.allocate_pending, 1,000 events a
//             job); timed from the first insert to the last commit.
//             recompute_window: the same 10,000 events after one more late
//             touch each, one statement.
//   tenant A: 100,000 events (linear), allocated once; then 1,000,000
//             history rows for them (earlier versions, written directly);
//             allocations_as_of at a time between versions vs the current
//             rows read the same way (count and sum over every row).
// History on a first allocation: recompute_window of tenant A's 100,000
// events into an empty allocations table with history (its triggers and
// the as-of index) vs without, alternating.
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { loadTenant, WINDOW_END, WINDOW_START } from './engine.js';
import { stat, type Stat } from './lib/stats.js';

const TENANT_R = '0b0b0000-0000-4000-8000-0000000000c1';
const TENANT_A = '0b0b0000-0000-4000-8000-0000000000c2';
const MODEL = 'bench-changes-linear';

export interface ChangesBenchResult {
  setup: { restateEvents: number; asOfEvents: number; historyRows: number; repeats: number };
  restatement: { restatedPerSecond: Stat; recomputePerSecond: Stat; ratio: number };
  firstAllocation: { withHistory: Stat; withoutHistory: Stat; ratio: number };
  asOf: { asOf: Stat; plain: Stat; ratio: number; rows: number };
  goals: { name: string; goal: string; value: number; met: boolean }[];
}

type Sql = postgres.Sql<Record<string, unknown>>;
type Tx = postgres.TransactionSql<Record<string, unknown>>;

async function as(sql: Sql, role: string, tenant: string, body: (tx: Tx) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await sql.begin(async (tx) => {
    await tx.unsafe(`set local role ${role}`);
    await tx`select set_config('app.tenant_id', ${tenant}, true)`;
    await body(tx);
  });
  return (performance.now() - t0) / 1000;
}

async function drain(sql: Sql, tenant: string): Promise<void> {
  for (;;) {
    let n = 0;
    await as(sql, 'apportion_worker', tenant, async (tx) => {
      const [r] = await tx`select apportion.task_allocate_pending(${tx.json({ model_version: MODEL })}) as r`;
      n = Number((r!.r as { event_count: number }).event_count);
    });
    if (n === 0) return;
  }
}

export async function benchChanges(url: string, opts: { shrink?: number; repeats?: number; log?: (line: string) => void } = {}): Promise<ChangesBenchResult> {
  const shrink = opts.shrink ?? 1;
  const repeats = opts.repeats ?? 3;
  const log = opts.log ?? (() => {});
  const restateEvents = Math.round(10_000 / shrink);
  const asOfEvents = Math.round(100_000 / shrink);
  const sql = postgres(url, { max: 1, onnotice: () => {} }) as unknown as Sql;
  try {
    await sql`truncate apportion.attribution_allocations, apportion.allocation_history, apportion.pending_allocations`;
    for (const t of [TENANT_R, TENANT_A]) {
      await sql`delete from apportion.touchpoints where tenant_id = ${t}`;
      await sql`delete from apportion.attribution_events where tenant_id = ${t}`;
      await sql`delete from apportion.tenant_models where tenant_id = ${t}`;
      await sql`delete from apportion.channels where tenant_id = ${t}`;
      await sql`delete from apportion.tenants where id = ${t}`;
    }
    await sql`select apportion.register_model(${MODEL}, 'linear', '{}')`;
    log(`loading data: ${restateEvents} + ${asOfEvents} events`);
    await loadTenant(sql, TENANT_R, 'bench restate', restateEvents, 0.44, 0);
    await loadTenant(sql, TENANT_A, 'bench as-of', asOfEvents, 0.55, 0);
    // Recent enough for the restatement horizon, whatever day the bench runs.
    await sql`update apportion.tenants set restatement_horizon = interval '100 years' where id in (${TENANT_R}, ${TENANT_A})`;
    await sql`vacuum analyze apportion.touchpoints`;
    await sql`vacuum analyze apportion.attribution_events`;

    // Restatement vs recompute_window, alternating.
    const restated: number[] = [];
    const recomputed: number[] = [];
    await as(sql, 'apportion_worker', TENANT_R, (tx) => tx`select * from apportion.recompute_window(${WINDOW_START}, ${WINDOW_END}, ${MODEL})`);
    await as(sql, 'apportion_ingest', TENANT_R, (tx) => tx`select apportion.activate_model(${MODEL})`);
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      for (let offset = 0; offset < restateEvents; offset += 500) {
        await as(sql, 'apportion_ingest', TENANT_R, (tx) => tx`
          insert into apportion.touchpoints (customer_id, channel, occurred_at)
          select e.customer_id, (array['email', 'display', 'referral'])[1 + (${r}::int + n) % 3], e.occurred_at - interval '1 hour' * (1 + ${r}::int)
            from (select e.*, row_number() over (order by e.id) as n from apportion.attribution_events e) e
           where e.n > ${offset} and e.n <= ${offset + 500}`);
      }
      await drain(sql, TENANT_R);
      const seconds = (performance.now() - t0) / 1000;
      restated.push(restateEvents / seconds);
      // One more late touch each, without the live path, then the window.
      await as(sql, 'apportion_ingest', TENANT_R, (tx) => tx`select apportion.deactivate_model(${MODEL})`);
      await as(sql, 'apportion_ingest', TENANT_R, (tx) => tx`
        insert into apportion.touchpoints (customer_id, channel, occurred_at)
        select e.customer_id, 'paid_social', e.occurred_at - interval '30 minutes' * (1 + ${r}::int) from apportion.attribution_events e`);
      const w = await as(sql, 'apportion_worker', TENANT_R, (tx) => tx`select * from apportion.recompute_window(${WINDOW_START}, ${WINDOW_END}, ${MODEL})`);
      recomputed.push(restateEvents / w);
      await as(sql, 'apportion_ingest', TENANT_R, (tx) => tx`select apportion.activate_model(${MODEL})`);
      log(`round ${r + 1}: restated ${Math.round(restateEvents / seconds)} events/s, recompute_window ${Math.round(restateEvents / w)} events/s`);
    }

    // History on a first allocation: triggers on vs off.
    const withH: number[] = [];
    const withoutH: number[] = [];
    const firstRun = async () => {
      await sql`delete from apportion.attribution_allocations where tenant_id = ${TENANT_A}`;
      await sql`vacuum apportion.attribution_allocations`;
      return as(sql, 'apportion_worker', TENANT_A, (tx) => tx`select * from apportion.recompute_window(${WINDOW_START}, ${WINDOW_END}, ${MODEL})`);
    };
    // Without history: no history triggers and no as-of index.
    const setHistory = async (on: boolean) => {
      await sql.unsafe(`alter table apportion.attribution_allocations ${on ? 'enable' : 'disable'} trigger attribution_allocations_history_update`);
      await sql.unsafe(`alter table apportion.attribution_allocations ${on ? 'enable' : 'disable'} trigger attribution_allocations_history_delete`);
      await sql.unsafe(on
        ? 'create index if not exists attribution_allocations_as_of_idx on apportion.attribution_allocations (tenant_id, model_version, computed_at)'
        : 'drop index if exists apportion.attribution_allocations_as_of_idx');
    };
    await firstRun(); // warm-up
    for (let r = 0; r < repeats; r++) {
      for (const on of r % 2 === 0 ? [true, false] : [false, true]) {
        await setHistory(on);
        (on ? withH : withoutH).push(await firstRun());
      }
    }
    await setHistory(true);
    log(`first allocation of ${asOfEvents} events: with history ${withH.map((x) => x.toFixed(2)).join(', ')} s; without ${withoutH.map((x) => x.toFixed(2)).join(', ')} s`);

    // As-of over a long history: earlier versions of every row, written directly.
    await firstRun();
    await sql`truncate apportion.allocation_history`; // (the deletes above recorded the earlier rounds' rows)
    const [cur] = await sql`select count(*)::int as n from apportion.attribution_allocations where tenant_id = ${TENANT_A}`;
    const versionsPerRow = Math.max(1, Math.round(1_000_000 / shrink / (cur!.n as number)));
    await sql`
      insert into apportion.allocation_history
        (tenant_id, event_id, model_version, channel, allocated_revenue_cents, allocation_ratio, touchpoint_count,
         currency, event_occurred_at, correlation_id, change_reason, valid_from, valid_to, ended_reason)
      select a.tenant_id, a.event_id, a.model_version, a.channel, a.allocated_revenue_cents, a.allocation_ratio, a.touchpoint_count,
             a.currency, a.event_occurred_at, null, 'allocated', a.computed_at - interval '1 day' * (v + 1), a.computed_at - interval '1 day' * v, 'recompute'
        from apportion.attribution_allocations a, generate_series(1, ${versionsPerRow}::int) v
       where a.tenant_id = ${TENANT_A}`;
    await sql`vacuum analyze apportion.allocation_history`;
    await sql`vacuum analyze apportion.attribution_allocations`;
    const [h] = await sql`select count(*)::int as n from apportion.allocation_history where tenant_id = ${TENANT_A}`;
    const asOfRuns: number[] = [];
    const plainRuns: number[] = [];
    let rows = 0;
    for (let r = 0; r < repeats + 1; r++) {
      const a = await as(sql, 'apportion_reader', TENANT_A, async (tx) => {
        const [x] = await tx`select count(*)::int as n, sum(allocated_revenue_cents) as s
                               from apportion.allocations_as_of(${MODEL}, now() - interval '1 day' * ${versionsPerRow / 2 + 0.5})`;
        rows = x!.n as number;
      });
      const p = await as(sql, 'apportion_reader', TENANT_A, (tx) => tx`
        select count(*)::int as n, sum(allocated_revenue_cents) as s from apportion.attribution_allocations where model_version = ${MODEL}`);
      if (r > 0) {
        asOfRuns.push(a);
        plainRuns.push(p);
      }
    }
    log(`as-of over ${h!.n} history rows: ${asOfRuns.map((x) => x.toFixed(3)).join(', ')} s; plain read ${plainRuns.map((x) => x.toFixed(3)).join(', ')} s`);

    const result: ChangesBenchResult = {
      setup: { restateEvents, asOfEvents, historyRows: h!.n as number, repeats },
      restatement: { restatedPerSecond: stat(restated), recomputePerSecond: stat(recomputed), ratio: stat(restated).median / stat(recomputed).median },
      firstAllocation: { withHistory: stat(withH), withoutHistory: stat(withoutH), ratio: stat(withH).median / stat(withoutH).median },
      asOf: { asOf: stat(asOfRuns), plain: stat(plainRuns), ratio: stat(asOfRuns).median / stat(plainRuns).median, rows },
      goals: [],
    };
    result.goals.push(
      { name: 'restatement / recompute_window events/s', goal: '>= 0.5', value: result.restatement.ratio, met: result.restatement.ratio >= 0.5 },
      { name: 'first allocation with history / without', goal: '<= 1.1', value: result.firstAllocation.ratio, met: result.firstAllocation.ratio <= 1.1 },
      { name: 'allocations_as_of / plain read', goal: '<= 2', value: result.asOf.ratio, met: result.asOf.ratio <= 2 },
    );
    return result;
  } finally {
    await sql.end();
  }
}

const runs = (s: Stat, f: (x: number) => string) => `${f(s.median)} (${s.runs.map(f).join(', ')})`;

export function changesMarkdown(r: ChangesBenchResult): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const s2 = (x: number) => x.toFixed(2);
  const s3 = (x: number) => x.toFixed(3);
  const s = r.setup;
  return [
    '### Setup', '',
    `- Restatement: ${s.restateEvents.toLocaleString('en-US')} allocated events (linear, one customer each, 1..7 touches), ${s.restateEvents.toLocaleString('en-US')} late touchpoints ` +
      'inserted as `apportion_ingest` in statements of 500, the live path drained as `apportion_worker`; timed from the first insert to the last commit. ' +
      '`recompute_window` restates the same events after one more late touch each, in one statement. Alternating, one round each.',
    `- First allocation: \`recompute_window\` of ${s.asOfEvents.toLocaleString('en-US')} events into an empty table, with history (its triggers and the as-of index on computed_at) vs without (both removed), alternating order.`,
    `- As-of: ${s.historyRows.toLocaleString('en-US')} history rows (earlier versions of the same ${s.asOfEvents.toLocaleString('en-US')} events' rows); ` +
      '`allocations_as_of` at a time between versions vs the current rows read the same way (count and sum), as `apportion_reader`.',
    `- ${s.repeats} rounds; median (every round).`, '',
    '| measure | value | goal |', '|---|---|---|',
    `| restated events/s | ${runs(r.restatement.restatedPerSecond, n)} | |`,
    `| recompute_window events/s | ${runs(r.restatement.recomputePerSecond, n)} | |`,
    `| restatement / recompute_window | ${r.restatement.ratio.toFixed(2)} | >= 0.5${r.restatement.ratio >= 0.5 ? '' : ' (missed)'} |`,
    `| first allocation with history, s | ${runs(r.firstAllocation.withHistory, s2)} | |`,
    `| first allocation without history, s | ${runs(r.firstAllocation.withoutHistory, s2)} | |`,
    `| with / without | ${r.firstAllocation.ratio.toFixed(2)} | <= 1.1${r.firstAllocation.ratio <= 1.1 ? '' : ' (missed)'} |`,
    `| allocations_as_of, s (${r.asOf.rows.toLocaleString('en-US')} rows) | ${runs(r.asOf.asOf, s3)} | |`,
    `| plain read, s | ${runs(r.asOf.plain, s3)} | |`,
    `| as-of / plain | ${r.asOf.ratio.toFixed(2)} | <= 2${r.asOf.ratio <= 2 ? '' : ' (missed)'} |`,
  ].join('\n');
}
