// What tenant bindings cost: every tenant policy checks, once per statement,
// that the session's login may act for the tenant it set
// (apportion.current_tenant_allowed(), an uncorrelated subquery in the
// policy). Measured against the same policies (as migrate installed them,
// read back from the catalog) without that term, switched in this bench
// database only, alternating in one run (A B, B A, A B):
//   (e) engine: recompute_window over 20,000 events (linear), as an
//       apportion_allocator login bound to the tenant;
//   (i) ingest: 20 transactions of 500 events, as an apportion_ingest login
//       bound to the tenant (no model active: the inserts and their checks);
//   (q) queue: 20,000 jobs of a bench-only tenant task (handler does
//       nothing) drained by the orchestrator (the Worker class, 2 runners,
//       1000 per claim) as an apportion_worker login bound to the tenant,
//       started and idle first, timed from the enqueue's commit.
// Bound logins are the worst case: the check's second probe runs too.
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { loginRoleUrl } from '../lib/roles.js';
import { loadTenant, WINDOW_END, WINDOW_START } from './engine.js';
import { sleep, stat, type Stat } from './lib/stats.js';
import { benchWorker } from './lib/worker.js';

const TENANT = '0b1d0000-0000-4000-8000-00000000000a';
const MODEL = 'bench-bindings-linear';
const ROUNDS = 3;

type Variant = 'without' | 'with';

export interface BindingsBenchResult {
  setup: { events: number; ingestTransactions: number; ingestEventsPerTransaction: number; jobs: number; rounds: number };
  /** Seconds per round, per workload and variant. */
  rounds: Record<'engine' | 'ingest' | 'queue', Record<Variant, number[]>>;
  /** with / without per round (time ratio: above 1 costs). */
  ratios: Record<'engine' | 'ingest' | 'queue', number[]>;
  stats: Record<'engine' | 'ingest' | 'queue', Record<Variant, Stat>>;
}

interface ShippedPolicy {
  table: string;
  roles: string;
  qual: string | null;
  withCheck: string | null;
}

// The binding term as PostgreSQL prints a policy expression back.
const BINDING_TERM = /\s+AND\s+\(\s*SELECT apportion\.current_tenant_allowed\(\) AS current_tenant_allowed\)/g;

/** The tenant_isolation policies as migrate installed them. */
async function shippedPolicies(admin: postgres.Sql): Promise<ShippedPolicy[]> {
  const rows = await admin<ShippedPolicy[]>`
    select format('%I.%I', schemaname, tablename) as table, array_to_string(roles, ', ') as roles,
           qual, with_check as "withCheck"
      from pg_policies where policyname = 'tenant_isolation' and schemaname = 'apportion'`;
  for (const p of rows) {
    if (!(p.qual ?? '').match(BINDING_TERM)) throw new Error(`${p.table}: tenant_isolation has no binding term to measure: ${p.qual}`);
  }
  return rows;
}

/**
 * Every tenant_isolation policy as shipped ('with'), or the same with the
 * binding term taken out ('without'). Bench database only.
 */
async function setPolicies(admin: postgres.Sql, shipped: ShippedPolicy[], variant: Variant): Promise<void> {
  const expr = (e: string) => (variant === 'with' ? e : e.replace(BINDING_TERM, ''));
  await admin.begin(async (tx) => {
    for (const p of shipped) {
      await tx.unsafe(`drop policy tenant_isolation on ${p.table}`);
      await tx.unsafe(`create policy tenant_isolation on ${p.table} to ${p.roles}` +
        (p.qual ? ` using (${expr(p.qual)})` : '') + (p.withCheck ? ` with check (${expr(p.withCheck)})` : ''));
    }
  });
}

export async function benchBindings(url: string, opts: { shrink?: number; log?: (l: string) => void } = {}): Promise<BindingsBenchResult> {
  const shrink = opts.shrink ?? 1;
  const log = opts.log ?? (() => {});
  const EVENTS = Math.max(1000, Math.round(20_000 / shrink));
  const INGEST_TX = Math.max(4, Math.round(20 / shrink));
  const INGEST_PER_TX = 500;
  const JOBS = Math.max(2000, Math.round(20_000 / shrink));
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  try {
    await loadTenant(admin, TENANT, 'bindings', EVENTS, 0.41, 0);
    await admin`select apportion.register_model(${MODEL}, 'linear', '{}')`;
    await admin.unsafe(`
      create schema if not exists bench_bindings;
      create or replace function bench_bindings.task_nothing(p_payload jsonb) returns jsonb
        language sql set search_path = pg_catalog, pg_temp as 'select null::jsonb';
      grant usage on schema bench_bindings to apportion_worker;
      grant execute on function bench_bindings.task_nothing(jsonb) to apportion_worker;
      insert into apportion.queue_tasks (queue, task, handler, tenant_scope, max_attempts, description)
      values ('maintenance', 'bench_nothing', 'bench_bindings.task_nothing', 'tenant', 1, 'Bench only (npm run bench -- bindings): does nothing.')
      on conflict (queue, task) do nothing;`);
    const allocatorUrl = await loginRoleUrl(url, 'apportion_allocator', 'apportion_allocator_bench');
    const ingestUrl = await loginRoleUrl(url, 'apportion_ingest', 'apportion_ingest_bench');
    const workerUrl = await loginRoleUrl(url, 'apportion_worker', 'apportion_worker_bench');
    for (const login of ['apportion_allocator_bench', 'apportion_ingest_bench', 'apportion_worker_bench']) {
      await admin`select apportion.bind_login(${login}::regrole, ${TENANT})`;
    }
    const shipped = await shippedPolicies(admin);
    const allocator = postgres(allocatorUrl, { max: 1, onnotice: () => {} });
    const ingest = postgres(ingestUrl, { max: 1, onnotice: () => {} });
    const rounds: BindingsBenchResult['rounds'] = {
      engine: { without: [], with: [] }, ingest: { without: [], with: [] }, queue: { without: [], with: [] },
    };
    try {
      let batch = 0;
      for (let round = 1; round <= ROUNDS; round++) {
        // Each round starts with the other variant: no order favours one.
        for (const variant of (round % 2 === 1 ? ['without', 'with'] : ['with', 'without']) as Variant[]) {
          await setPolicies(admin, shipped, variant);
          await admin`truncate apportion.attribution_allocations`;
          await admin`vacuum analyze`;
          await admin`checkpoint`;
          // (e) engine
          let t0 = performance.now();
          await allocator.begin(async (tx) => {
            await tx`select set_config('app.tenant_id', ${TENANT}, true)`;
            await tx`select * from apportion.recompute_window(${WINDOW_START}, ${WINDOW_END}, ${MODEL})`;
          });
          const engine = (performance.now() - t0) / 1000;
          // (i) ingest
          t0 = performance.now();
          for (let i = 0; i < INGEST_TX; i++, batch++) {
            await ingest.begin(async (tx) => {
              await tx`select set_config('app.tenant_id', ${TENANT}, true)`;
              await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
                       select 'ingest-' || ${batch} || '-' || g, '2025-04-01'::timestamptz + g * interval '1 second', 100 + g, 'USD'
                         from generate_series(1, ${INGEST_PER_TX}::int) g`;
            });
          }
          const ingested = (performance.now() - t0) / 1000;
          // (q) queue: the worker started and idle first; timed from the
          // enqueue's commit to the last job done.
          const w = benchWorker(workerUrl, { APPORTION_QUEUES: 'maintenance', APPORTION_WORKER_ID: `bench-bindings-${round}-${variant}` });
          await w.start();
          await sleep(300);
          await admin.begin(async (tx) => {
            await tx`select set_config('app.tenant_id', ${TENANT}, true)`;
            for (let done = 0; done < JOBS; done += 10_000) {
              await tx`select count(*) from apportion.enqueue_many('maintenance', 'bench_nothing', ${tx.json(Array.from({ length: Math.min(10_000, JOBS - done) }, () => ({})))})`;
            }
          });
          t0 = performance.now();
          for (;;) {
            const [r] = await admin`select count(*)::int as n from apportion.jobs_live where task = 'bench_nothing'`;
            if (r!.n === 0) break;
            await sleep(20);
          }
          const queue = (performance.now() - t0) / 1000;
          await w.stop('bench');
          rounds.engine[variant].push(engine);
          rounds.ingest[variant].push(ingested);
          rounds.queue[variant].push(queue);
          log(`  round ${round}, policies ${variant} the binding check: engine ${(EVENTS / engine).toFixed(0)} events/s, ingest ${((INGEST_TX * INGEST_PER_TX) / ingested).toFixed(0)} events/s, queue ${(JOBS / queue).toFixed(0)} jobs/s`);
        }
      }
    } finally {
      await allocator.end();
      await ingest.end();
      await setPolicies(admin, shipped, 'with');
    }
    const ratio = (k: keyof BindingsBenchResult['rounds']) => rounds[k].with.map((w, i) => w / rounds[k].without[i]!);
    const st = (k: keyof BindingsBenchResult['rounds']) => ({ without: stat(rounds[k].without), with: stat(rounds[k].with) });
    return {
      setup: { events: EVENTS, ingestTransactions: INGEST_TX, ingestEventsPerTransaction: INGEST_PER_TX, jobs: JOBS, rounds: ROUNDS },
      rounds,
      ratios: { engine: ratio('engine'), ingest: ratio('ingest'), queue: ratio('queue') },
      stats: { engine: st('engine'), ingest: st('ingest'), queue: st('queue') },
    };
  } finally {
    await admin.end();
  }
}

export function bindingsMarkdown(r: BindingsBenchResult): string {
  const s = r.setup;
  const f = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(', ');
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rows = (['engine', 'ingest', 'queue'] as const).map((k) => {
    const n = k === 'engine' ? s.events : k === 'ingest' ? s.ingestTransactions * s.ingestEventsPerTransaction : s.jobs;
    const unit = k === 'queue' ? 'jobs/s' : 'events/s';
    return `| ${k} | ${Math.round(n / r.stats[k].without.median).toLocaleString('en-US')} ${unit} | ${Math.round(n / r.stats[k].with.median).toLocaleString('en-US')} ${unit} | ${f(r.ratios[k])} | ${med(r.ratios[k]) <= 1.05 ? 'met' : '**not met**'} |`;
  });
  return [
    `Every tenant policy checks once per statement that the login may act for the tenant it set (\`(select apportion.current_tenant_allowed())\`). Measured against the shipped policies (read back from the catalog) with that term taken out, switched in the bench database, alternating (without then with, then the other way round) for ${s.rounds} rounds, each after a vacuum analyze and a checkpoint; logins bound to the tenant (the check's full path). (e) recompute_window over ${s.events.toLocaleString('en-US')} events (linear) as an apportion_allocator login; (i) ${s.ingestTransactions} transactions of ${s.ingestEventsPerTransaction} events as an apportion_ingest login (no model active); (q) ${s.jobs.toLocaleString('en-US')} jobs of a bench-only tenant task that does nothing, drained by the orchestrator (2 runners, 1000 per claim; started and idle first, timed from the enqueue's commit) as an apportion_worker login.`,
    '',
    '| workload | without (median) | with (median) | time with / without, per round | goal <= 1.05 (median) |',
    '|---|---:|---:|---|---|',
    ...rows,
  ].join('\n');
}
