// Markov training benchmark: train_model over 1,000,000 touchpoints and
// 200,000 paths with 8 channels, and its split into path building, counting
// and solving. (Allocation of a trained markov version is in the engine
// section, against its baseline like every kind.)
//
// Setup (generated in SQL with setseed): 200,000 customers, 5 touches each
// (1,000,000), within 20 days of a start in [2025-01-01, 2025-02-05), on 8
// channels (the 7 defaults and a tenant channel "affiliate", unevenly
// likely). A customer converts (one event 20..22 days after its start) with
// probability 0.3, or 0.7 when one of its touches is email: about half
// convert, so about 100,000 converting and 100,000 non-converting paths.
// Training window [2025-01-01, 2025-03-01), lookback 30 days.
// Each timed run is one transaction as apportion_worker under the tenant,
// on a durable cluster; train_model runs are rolled back (trained state is
// frozen), the split's statements only read.
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { stat, type Stat } from './lib/stats.js';

const TENANT = '0b0b0000-0000-4000-8000-0000000000d1';
const MODEL = 'bench-markov-train';
const PARAMS = { training_start: '2025-01-01T00:00:00Z', training_end: '2025-03-01T00:00:00Z' };

export interface MarkovBenchResult {
  setup: { customers: number; touchpoints: number; events: number; paths: number; conversions: number; channels: number; repeats: number; durable: boolean };
  /** seconds */
  train: Stat;
  paths: Stat;
  counting: Stat;
  solving: Stat;
  goals: { name: string; goal: string; value: number; met: boolean }[];
}

type Sql = postgres.Sql<Record<string, unknown>>;
class Rollback extends Error {}

async function asWorker<T>(sql: Sql, body: (tx: postgres.TransactionSql<Record<string, unknown>>) => Promise<T>, rollback = false): Promise<{ seconds: number; value: T }> {
  let value: T | undefined;
  const t0 = performance.now();
  let seconds = 0;
  try {
    await sql.begin(async (tx) => {
      await tx`set local role apportion_worker`;
      await tx`select set_config('app.tenant_id', ${TENANT}, true)`;
      value = await body(tx);
      seconds = (performance.now() - t0) / 1000;
      if (rollback) throw new Rollback();
    });
    seconds = (performance.now() - t0) / 1000;
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
  }
  return { seconds, value: value as T };
}

export async function benchMarkov(url: string, opts: { shrink?: number; repeats?: number; log?: (line: string) => void } = {}): Promise<MarkovBenchResult> {
  const shrink = opts.shrink ?? 1;
  const repeats = opts.repeats ?? 3;
  const log = opts.log ?? (() => {});
  const customers = Math.round(200_000 / shrink);
  const sql = postgres(url, { max: 1, onnotice: () => {} }) as unknown as Sql;
  try {
    await sql`truncate apportion.markov_removal_effects, apportion.markov_transitions, apportion.trained_models`;
    await sql`delete from apportion.touchpoints where tenant_id = ${TENANT}`;
    await sql`delete from apportion.attribution_events where tenant_id = ${TENANT}`;
    await sql`delete from apportion.channels where tenant_id = ${TENANT}`;
    await sql`delete from apportion.tenants where id = ${TENANT}`;
    await sql`select apportion.register_model(${MODEL}, 'markov', ${sql.json(PARAMS)})`;
    log(`loading data: ${customers} customers, ${customers * 5} touchpoints`);
    await sql.begin(async (tx) => {
      await tx`select apportion.create_tenant('bench markov', ${TENANT})`;
      await tx`select set_config('app.tenant_id', ${TENANT}, true), setseed(0.33)`;
      await tx`insert into apportion.channels (code, name, is_direct) values ('affiliate', 'Affiliate', false)`;
      await tx`create temporary table bench_customer on commit drop as
               select 'customer-' || i as customer_id, timestamptz '2025-01-01' + random() * interval '35 days' as started
                 from generate_series(1, ${customers}::int) i`;
      await tx`
        insert into apportion.touchpoints (customer_id, channel, occurred_at)
        select c.customer_id,
               (array['google_search', 'email', 'paid_social', 'direct', 'organic_search', 'display', 'referral', 'affiliate'])[1 + floor(power(random(), 1.6) * 8)::int],
               c.started + random() * interval '20 days'
          from bench_customer c, generate_series(1, 5) k`;
      await tx`
        insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
        select c.customer_id, c.started + interval '20 days' + random() * interval '2 days', (random() * 100000)::bigint, 'USD'
          from bench_customer c
         where random() < case when exists (select from apportion.touchpoints t
                                             where t.tenant_id = ${TENANT} and t.customer_id = c.customer_id and t.channel = 'email')
                               then 0.7 else 0.3 end`;
    });
    await sql`vacuum analyze apportion.touchpoints`;
    await sql`vacuum analyze apportion.attribution_events`;
    const [counts] = await sql`select (select count(*) from apportion.touchpoints where tenant_id = ${TENANT})::int as touches,
                                      (select count(*) from apportion.attribution_events where tenant_id = ${TENANT})::int as events`;
    const durable = (await sql`select current_setting('fsync') = 'on' and current_setting('synchronous_commit') = 'on' as d`)[0]!.d as boolean;

    const args = [TENANT, '30 days', PARAMS.training_start, PARAMS.training_end] as const;
    const train: number[] = [];
    const paths: number[] = [];
    const counting: number[] = [];
    const solving: number[] = [];
    let trained: Record<string, unknown> = {};
    // Warm-up, then rounds in a fixed order.
    await asWorker(sql, (tx) => tx`select * from apportion.train_model(${MODEL})`, true);
    for (let r = 0; r < repeats; r++) {
      const t = await asWorker(sql, async (tx) => (await tx`select * from apportion.train_model(${MODEL})`)[0]!, true);
      train.push(t.seconds);
      trained = t.value;
      const p = await asWorker(sql, (tx) => tx`select count(*) from apportion.markov_paths(${args[0]}, ${args[1]}, ${args[2]}, ${args[3]})`);
      paths.push(p.seconds);
      const c = await asWorker(sql, (tx) => tx`
        select array_agg(from_state order by from_state, to_state) as f, array_agg(to_state order by from_state, to_state) as t,
               array_agg(transition_count order by from_state, to_state) as n
          from apportion.markov_transition_counts(${args[0]}, ${args[1]}, ${args[2]}, ${args[3]})`);
      counting.push(Math.max(0, c.seconds - p.seconds));
      const [arrays] = c.value;
      const s = await asWorker(sql, (tx) => tx`select * from apportion.markov_solve(${arrays!.f as string[]}::text[], ${arrays!.t as string[]}::text[], ${arrays!.n as string[]}::bigint[])`);
      solving.push(s.seconds);
      log(`round ${r + 1}: train_model ${t.seconds.toFixed(2)} s; paths ${p.seconds.toFixed(2)} s, counting ${(c.seconds - p.seconds).toFixed(2)} s, solving ${s.seconds.toFixed(3)} s`);
    }
    const result: MarkovBenchResult = {
      setup: {
        customers, touchpoints: counts!.touches as number, events: counts!.events as number,
        paths: Number(trained.path_count), conversions: Number(trained.conversion_count), channels: Number(trained.channel_count),
        repeats, durable,
      },
      train: stat(train), paths: stat(paths), counting: stat(counting), solving: stat(solving),
      goals: [],
    };
    result.goals.push({ name: 'train_model, 1M touchpoints / 200k paths', goal: '<= 10 s', value: result.train.median, met: result.train.median <= 10 });
    return result;
  } finally {
    await sql.end();
  }
}

const sec = (s: Stat, d = 2) => `${s.median.toFixed(d)} (${s.runs.map((x) => x.toFixed(d)).join(', ')})`;

export function markovMarkdown(r: MarkovBenchResult): string {
  const s = r.setup;
  return [
    '### Setup', '',
    `- One tenant: ${s.customers.toLocaleString('en-US')} customers, ${s.touchpoints.toLocaleString('en-US')} touchpoints (5 each, within 20 days), ` +
      `${s.events.toLocaleString('en-US')} events (a customer converts with probability 0.3, or 0.7 with an email touch), ${s.channels} channels.`,
    `- Training window 2025-01-01 to 2025-03-01, lookback 30 days: ${s.paths.toLocaleString('en-US')} paths, ${s.conversions.toLocaleString('en-US')} converting.`,
    `- Each run one transaction as \`apportion_worker\` under the tenant${s.durable ? ' on a durable cluster' : ' (NOT durable)'}; \`train_model\` runs are rolled back (trained state is frozen). ` +
      'The split runs the steps on their own: `markov_paths` (path building, counted), `markov_transition_counts` (building and counting; counting is the difference), `markov_solve` on the counts.',
    `- ${s.repeats} rounds after one warm-up; median (every round).`, '',
    '| step | seconds |', '|---|---|',
    `| train_model, whole (goal <= 10 s) | ${sec(r.train)}${r.train.median <= 10 ? '' : ' (missed)'} |`,
    `| path building | ${sec(r.paths)} |`,
    `| counting transitions | ${sec(r.counting)} |`,
    `| solving (${s.channels} channels, exact) | ${sec(r.solving, 3)} |`,
  ].join('\n');
}
