// Queue benchmark, all in one invocation on one database:
//   1. no-op burn-down: N jobs enqueued in one transaction (enqueue_many), then drained
//      by the orchestrator's Worker (in-process, its real code path: claim
//      transaction, then one run transaction per tenant batch);
//   2. the bounds, driven by pgbench on the same server: the raw SQL bound =
//      apportion's own claim and complete statements without the
//      orchestrator (claim_jobs, then run_tenant_jobs on what it claimed, two
//      transactions as the orchestrator does them), 100 jobs per claim and
//      again at the orchestrator's batch size; and, for scale, a bare table's
//      claim 100 with SKIP LOCKED + delete (a queue that keeps no lease, no
//      attempt log and no history);
//   3. idle latency: jobs enqueued one at a time ~10 ms apart while workers
//      listen; enqueue (created_at) to handler start (attempt_log started_at);
//   4. ingest -> allocated for one model: idle p50/p99 from the event insert
//      to the commit of its allocation (commit to commit), and sustained events/s with
//      allocation keeping up;
//   5. burn-down again after a million jobs have passed through the queue.
import postgres from 'postgres';
import { loginRoleUrl } from '../lib/roles.js';
import type { Worker } from '../../orchestrator/worker.js';
import { bareTableBound, pgbench } from './lib/pgbench.js';
import { fmt, percentile, r0, sleep, stat, type Stat } from './lib/stats.js';
import { BATCH, benchWorker, CONCURRENCY } from './lib/worker.js';

export interface QueueBenchResult {
  setup: { jobs: number; rounds: number; concurrency: number; batchSize: number; historyJobs: number; pgbenchClients: number };
  enqueuePerSecond: Stat;
  drainPerSecond: Stat;
  /** apportion's claim_jobs + run_tenant_jobs via pgbench, 100 per claim: the raw SQL bound. */
  boundPerSecond: Stat | null;
  /** The same at the orchestrator's batch size. */
  boundAtBatchPerSecond: Stat | null;
  /** A bare table: claim 100 with SKIP LOCKED and delete them. */
  bareTablePerSecond: Stat | null;
  drainOverBound: number | null;
  drainOverBoundAtBatch: number | null;
  drainOverBareTable: number | null;
  latencyMs: { p50: number; p95: number; p99: number; max: number; samples: number };
  ingest: { idle: { p50: number; p99: number; samples: number }; sustainedEventsPerSecond: number; events: number; ingestSeconds: number; totalSeconds: number };
  afterHistory: { jobsPassed: number; drainPerSecond: Stat; historyDrainPerSecond: number } | null;
}

export interface QueueBenchOptions {
  shrink?: number;
  log?: (line: string) => void;
}

const ROUNDS = 3;

/** Enqueue n no-op jobs in one transaction (enqueue_many calls of at most 10,000); returns seconds. */
async function enqueueNoops(admin: postgres.Sql, n: number): Promise<number> {
  const t0 = performance.now();
  await admin.begin(async (tx) => {
    for (let done = 0; done < n; done += 10_000) {
      await tx`select count(*) from apportion.enqueue_many('housekeeping', 'noop',
                 (select jsonb_agg('{}'::jsonb) from generate_series(1, ${Math.min(10_000, n - done)})))`;
    }
  });
  return (performance.now() - t0) / 1000;
}

/**
 * Enqueue n no-op jobs in one call while `w` is running and idle; returns
 * [enqueue seconds, drain seconds from the enqueue's commit to the last
 * completion].
 */
async function burnDown(admin: postgres.Sql, w: Worker, n: number): Promise<[number, number]> {
  const before = w.health().jobs.succeeded;
  const enq = await enqueueNoops(admin, n);
  const t0 = performance.now();
  while (w.health().jobs.succeeded - before < n) await sleep(1);
  return [enq, (performance.now() - t0) / 1000];
}

/**
 * The raw SQL bound: apportion's own claim and complete statements driven by
 * pgbench with no orchestrator, `batch` jobs per claim. Each pgbench
 * transaction is the orchestrator's pair: claim_jobs commits, then
 * run_tenant_jobs runs and completes what it claimed in a second
 * transaction. Returns jobs/s, or null without pgbench.
 */
async function statementBound(admin: postgres.Sql, workerUrl: string, n: number, batch: number, clients: number): Promise<number | null> {
  const perClient = Math.ceil(n / batch / clients);
  const total = perClient * batch * clients;
  await enqueueNoops(admin, total);
  await admin`vacuum analyze apportion.jobs_live`;
  // pgbench substitutes :ids as text, so it is gset as an array expression.
  const secs = pgbench(workerUrl, `select 'array[' || coalesce(string_agg(job_id::text, ','), '') || ']::bigint[]' as ids from apportion.claim_jobs('pgbench-' || :client_id, array['housekeeping'], ${batch}, 60) \\gset
select count(*) from apportion.run_tenant_jobs('pgbench-' || :client_id, null, :ids);
`, clients, perClient);
  const [left] = await admin<{ n: number }[]>`select count(*)::int as n from apportion.jobs_live`;
  if (left!.n !== 0) throw new Error(`statement bound left ${left!.n} jobs unfinished`);
  return secs === null ? null : total / secs;
}

export async function benchQueue(url: string, opts: QueueBenchOptions = {}): Promise<QueueBenchResult> {
  const shrink = opts.shrink ?? 1;
  const log = opts.log ?? (() => {});
  const N = Math.max(1000, Math.round(50_000 / shrink));
  const HISTORY = Math.max(10_000, Math.round(1_000_000 / shrink));
  const LATENCY_SAMPLES = Math.max(50, Math.round(500 / shrink));
  const INGEST_EVENTS = Math.max(1000, Math.round(20_000 / shrink));
  const PGBENCH_CLIENTS = 4;
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  try {
    const workerUrl = await loginRoleUrl(url, 'apportion_worker', 'apportion_worker_bench');
    const ingestUrl = await loginRoleUrl(url, 'apportion_ingest', 'apportion_ingest_bench');

    // 1 + 2: burn-down and bounds, interleaved per round.
    log(`burn-down: ${N} no-op jobs per round, ${ROUNDS} rounds, worker concurrency ${CONCURRENCY}, batch ${BATCH}`);
    await admin`create table if not exists public.apportion_bench_raw (id bigserial primary key, payload jsonb not null default '{}')`;
    const enqueueRates: number[] = [];
    const drainRates: number[] = [];
    const boundRates: number[] = [];
    const boundAtBatchRates: number[] = [];
    const bareRates: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      await admin`vacuum analyze apportion.jobs_live`;
      const w = benchWorker(workerUrl);
      await w.start();
      await sleep(300);
      const [enq, dr] = await burnDown(admin, w, N);
      await w.stop('bench');
      enqueueRates.push(N / enq);
      drainRates.push(N / dr);

      const bound = await statementBound(admin, workerUrl, N, 100, PGBENCH_CLIENTS);
      if (bound !== null) boundRates.push(bound);
      const atBatch = await statementBound(admin, workerUrl, N, BATCH, PGBENCH_CLIENTS);
      if (atBatch !== null) boundAtBatchRates.push(atBatch);
      const bare = await bareTableBound(admin, url, 'public.apportion_bench_raw', N, PGBENCH_CLIENTS);
      if (bare !== null) bareRates.push(bare);
      const rate = (x: number | null) => (x === null ? 'n/a (no pgbench)' : `${r0(x)}/s`);
      log(`  round ${round}: enqueue ${r0(N / enq)}/s, drain ${r0(N / dr)}/s; raw SQL bound (apportion's statements, 100 per claim) ${rate(bound)}, at ${BATCH} per claim ${rate(atBatch)}; bare table ${rate(bare)}`);
    }
    await admin`drop table public.apportion_bench_raw`;

    // 3: idle latency, enqueue to handler start.
    log(`latency: ${LATENCY_SAMPLES} jobs enqueued one at a time ~10 ms apart, workers idle and listening`);
    const w = benchWorker(workerUrl);
    await w.start();
    await sleep(300);
    const enq = postgres(workerUrl, { max: 1, onnotice: () => {} });
    const ids: string[] = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const [row] = await enq`select apportion.enqueue('housekeeping', 'noop') as id`;
      ids.push(String(row!.id));
      await sleep(10);
    }
    while (w.health().jobs.succeeded < LATENCY_SAMPLES) await sleep(5);
    const lat = await admin<{ ms: number }[]>`
      select (extract(epoch from (attempt_log->0->>'started_at')::timestamptz - created_at) * 1000)::float8 as ms
        from apportion.jobs where id = any(${ids}::bigint[])`;
    const latSorted = lat.map((r) => r.ms).sort((a, b) => a - b);

    // 4: ingest -> allocated, one model.
    const tenant = '0c0c0000-0000-4000-8000-000000000001';
    await admin`select apportion.create_tenant('queue bench', ${tenant}) where not exists (select from apportion.tenants where id = ${tenant})`;
    await admin`select apportion.register_model('bench-linear', 'linear', '{}')`;
    const ingest = postgres(ingestUrl, { max: 2, onnotice: () => {} });
    await ingest.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${tenant}, true)`;
      await tx`select apportion.activate_model('bench-linear')`;
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at)
               select 'c' || (g % 5000), (array['email','display','referral','google_search','direct'])[1 + g % 5],
                      now() - (g % 20) * interval '1 day' - g * interval '1 second'
                 from generate_series(1, 20000) g`;
    });
    const idleSamples = Math.max(50, Math.round(300 / shrink));
    log(`ingest -> allocated: ${idleSamples} single-event inserts ~10 ms apart, then ${INGEST_EVENTS} events in 200-event transactions`);
    const idleEvents: string[] = [];
    for (let i = 0; i < idleSamples; i++) {
      const [e] = await ingest.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenant}, true)`;
        return tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
                  values (${'c' + (i % 5000)}, now(), ${1000 + i}, 'USD') returning id`;
      });
      idleEvents.push(String(e!.id));
      await sleep(10);
    }
    // Allocated = the commit of the transaction that wrote the event's
    // allocation rows, measured from the commit of its ingest.
    const idleDone = async () => {
      const [r] = await admin`select count(distinct event_id)::int as n from apportion.attribution_allocations
                               where tenant_id = ${tenant} and event_id = any(${idleEvents}::uuid[])`;
      return r!.n;
    };
    while ((await idleDone()) < idleSamples) await sleep(20);
    const idle = await admin<{ ms: number }[]>`
      select (extract(epoch from min(pg_xact_commit_timestamp(a.xmin)) - pg_xact_commit_timestamp(e.xmin)) * 1000)::float8 as ms
        from apportion.attribution_events e
        join apportion.attribution_allocations a on a.tenant_id = e.tenant_id and a.event_id = e.id
       where e.tenant_id = ${tenant} and e.id = any(${idleEvents}::uuid[])
       group by e.id, e.xmin`;
    const idleSorted = idle.map((r) => r.ms).sort((a, b) => a - b);

    const t0 = performance.now();
    for (let done = 0; done < INGEST_EVENTS; done += 200) {
      await ingest.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenant}, true)`;
        await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
                 select 'c' || ((${done} + g) % 5000), now(), 1000 + g, 'USD' from generate_series(1, 200) g`;
      });
    }
    const ingestSeconds = (performance.now() - t0) / 1000;
    const pendingLeft = async () => {
      const [r] = await admin`select count(*)::int as n from apportion.pending_allocations where tenant_id = ${tenant}`;
      return r!.n;
    };
    while ((await pendingLeft()) > 0) await sleep(10);
    const totalSeconds = (performance.now() - t0) / 1000;
    await w.stop('bench');
    await enq.end();
    await ingest.end();

    // 5: after a million jobs.
    log(`history: pushing ${HISTORY} no-op jobs through the queue, then burn-down again`);
    await admin`vacuum analyze apportion.jobs_live`;
    const hw = benchWorker(workerUrl);
    await hw.start();
    let historySecs = 0;
    for (let passed = 0; passed < HISTORY; passed += 100_000) {
      historySecs += (await burnDown(admin, hw, Math.min(100_000, HISTORY - passed)))[1];
    }
    const after: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      await admin`vacuum analyze apportion.jobs_live`;
      after.push(N / (await burnDown(admin, hw, N))[1]);
    }
    await hw.stop('bench');
    const [hist] = await admin`select count(*)::int as n from apportion.jobs_done`;

    const drainStat = stat(drainRates);
    const orNull = (runs: number[]) => (runs.length ? stat(runs) : null);
    const over = (b: Stat | null) => (b ? drainStat.median / b.median : null);
    const bound = orNull(boundRates);
    const boundAtBatch = orNull(boundAtBatchRates);
    const bare = orNull(bareRates);
    return {
      setup: { jobs: N, rounds: ROUNDS, concurrency: CONCURRENCY, batchSize: BATCH, historyJobs: hist!.n, pgbenchClients: PGBENCH_CLIENTS },
      enqueuePerSecond: stat(enqueueRates),
      drainPerSecond: drainStat,
      boundPerSecond: bound,
      boundAtBatchPerSecond: boundAtBatch,
      bareTablePerSecond: bare,
      drainOverBound: over(bound),
      drainOverBoundAtBatch: over(boundAtBatch),
      drainOverBareTable: over(bare),
      latencyMs: { p50: percentile(latSorted, 50), p95: percentile(latSorted, 95), p99: percentile(latSorted, 99), max: latSorted[latSorted.length - 1]!, samples: latSorted.length },
      ingest: {
        idle: { p50: percentile(idleSorted, 50), p99: percentile(idleSorted, 99), samples: idleSorted.length },
        sustainedEventsPerSecond: INGEST_EVENTS / totalSeconds,
        events: INGEST_EVENTS,
        ingestSeconds,
        totalSeconds,
      },
      afterHistory: { jobsPassed: hist!.n, drainPerSecond: stat(after), historyDrainPerSecond: HISTORY / historySecs },
    };
  } finally {
    await admin.end();
  }
}

export function queueMarkdown(r: QueueBenchResult): string {
  const s = r.setup;
  const out: string[] = [];
  out.push('### Setup', '');
  out.push(`- Orchestrator: the Worker class in-process (same code as \`npm start\`), connected as a login role in \`apportion_worker\`, concurrency ${s.concurrency}, batch ${s.batchSize}; every batch is one claim transaction and one run transaction per tenant, each job in its own savepoint, completion in the same transaction as the work; a claim made while every runner is idle runs a lone job in its own transaction (APPORTION_INLINE_RUN_MAX 1, the default).`);
  out.push(`- Burn-down: ${r0(s.jobs)} \`housekeeping.noop\` jobs enqueued in one transaction (\`enqueue_many\` calls of 10,000), then drained; ${s.rounds} rounds, median (min..max).`);
  out.push(`- Raw SQL bound (pgbench, ${s.pgbenchClients} clients, same server, same rounds): apportion's own claim and complete statements with no orchestrator: \`claim_jobs\` for 100 jobs, committed, then \`run_tenant_jobs\` on what it claimed (run and complete, as the orchestrator does for a tenant batch), committed; again with ${s.batchSize} jobs per claim, the orchestrator's batch.`);
  out.push(`- For scale, a bare table (id, payload; nothing else): \`claim 100 ... for update skip locked\` + delete, one statement per transaction. That is a queue without a lease, attempt log, history or RLS, so it is not a bound for apportion's work: each apportion job is written three times (claim with lease, run lock, move to jobs_done with its attempt) where the bare table deletes once.`);
  out.push('- Durable cluster settings (fsync and synchronous_commit on), autovacuum_naptime=1s as README recommends for busy queues.', '');
  out.push('| figure | jobs/s |', '|---|---:|');
  out.push(`| enqueue (one batch call) | ${fmt(r.enqueuePerSecond)} |`);
  out.push(`| drain, apportion orchestrator | ${fmt(r.drainPerSecond)} |`);
  if (r.boundPerSecond) out.push(`| raw SQL bound: apportion's claim + complete via pgbench, 100 per claim | ${fmt(r.boundPerSecond)} |`);
  if (r.boundAtBatchPerSecond) out.push(`| the same, ${r0(s.batchSize)} per claim | ${fmt(r.boundAtBatchPerSecond)} |`);
  if (r.bareTablePerSecond) out.push(`| bare table claim 100 + delete via pgbench (for scale) | ${fmt(r.bareTablePerSecond)} |`);
  if (r.afterHistory) out.push(`| drain after ${r0(r.afterHistory.jobsPassed)} jobs passed (history kept in jobs_done) | ${fmt(r.afterHistory.drainPerSecond)} |`);
  out.push('');
  if (r.drainOverBound !== null) {
    const parts = [`apportion drain / raw SQL bound (100 per claim) = **${r.drainOverBound.toFixed(2)}** (goal >= 0.5)`];
    if (r.drainOverBoundAtBatch !== null) parts.push(`/ the same at ${r0(s.batchSize)} per claim = ${r.drainOverBoundAtBatch.toFixed(2)}`);
    if (r.drainOverBareTable !== null) parts.push(`/ bare table = ${r.drainOverBareTable.toFixed(2)}`);
    out.push(parts.join('; ') + '.', '');
  }
  const l = r.latencyMs;
  out.push(`Idle latency, enqueue to handler start (${l.samples} jobs ~10 ms apart): p50 **${l.p50.toFixed(2)} ms**, p95 ${l.p95.toFixed(2)} ms, p99 **${l.p99.toFixed(2)} ms**, max ${l.max.toFixed(2)} ms (goals: p50 <= 2 ms, p99 < 10 ms).`, '');
  const i = r.ingest;
  out.push(`Ingest -> allocated, one model (linear), idle: p50 ${i.idle.p50.toFixed(2)} ms, p99 ${i.idle.p99.toFixed(2)} ms over ${i.idle.samples} single-event inserts (ingest commit to allocation commit).`);
  out.push(`Sustained: ${r0(i.events)} events in 200-event transactions, ingested in ${i.ingestSeconds.toFixed(1)} s, all allocated ${i.totalSeconds.toFixed(1)} s after the first insert: **${r0(i.sustainedEventsPerSecond)} events/s** allocated end to end.`);
  return out.join('\n');
}
