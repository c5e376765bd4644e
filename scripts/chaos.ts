#!/usr/bin/env -S npx tsx
// npm run chaos [-- --minutes N] [--seed S]
//
// Faults against a real deployment in miniature, then every invariant
// checked. A throwaway cluster on loopback (durable: fsync and
// synchronous_commit on; the installed server binaries, since it is
// crashed), apportion migrated, 20 tenants with linear and time_decay
// active, two orchestrators (`apportion worker` processes). For N minutes
// (default 10) ingest never stops (one tenant's batch of 20..300 events and
// their touchpoints every ~100 ms, each row with an external id and inserted
// with ON CONFLICT DO NOTHING, so a batch whose commit was lost in a fault is
// simply sent again) while, every 2..6 s, one fault is injected at random:
//   - SIGKILL an orchestrator, start a new one;
//   - SIGTERM an orchestrator, start a new one;
//   - pg_terminate_backend of every orchestrator connection;
//   - PostgreSQL crashed (pg_ctl -m immediate) and started again 1 s later
//     (at most once a minute).
// Then ingest stops, the orchestrators drain, and the invariants are
// checked: every acknowledged event is stored; every event of every active
// model is allocated and its parts sum to its revenue; the stored
// allocations equal a from-scratch computation; no job is left queued or
// running, and every job that failed for good is in worker_failed_jobs.
// Prints the figures; with --minutes 10 or more also writes them to
// docs/reliability.md. Exits 1 if any invariant fails.
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { isDriverWriteBug } from '../orchestrator/db.js';
import { migrate } from '../orchestrator/migrate.js';
import { recreateDatabase, startCluster } from './lib/cluster.js';
import { startOrchestrator, type RunningOrchestrator } from './lib/orchestrator-process.js';
import { loginRoleUrl } from './lib/roles.js';
import { numberFlag } from './bench/lib/run.js';
import { ROOT } from './bench/lib/report.js';

const args = process.argv.slice(2);
const MINUTES = numberFlag(args, '--minutes', 10);
let seed = numberFlag(args, '--seed', 20261201);
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** p, or a rejection after ms (a query the driver lost would otherwise never settle). */
function within<T>(ms: number, p: PromiseLike<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    Promise.resolve(p),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

const TENANTS = Array.from({ length: 20 }, (_, i) => `0c4a0000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`);
const MODELS = ['chaos-linear', 'chaos-time-decay'];
const CHANNELS = ['direct', 'email', 'google_search', 'organic_search', 'paid_social', 'referral', 'display'];
type Fault = 'sigkill' | 'sigterm' | 'terminate_backends' | 'server_crash';

// The driver's write-timer TypeError on a cut connection (orchestrator/db.ts)
// hits this process's own clients too: counted, and the client that failed
// is replaced when its next batch fails; anything else ends the run.
let driverFaults = 0;
process.on('uncaughtException', (err) => {
  if (isDriverWriteBug(err)) {
    driverFaults++;
    return;
  }
  console.error(`chaos: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});

const server = await startCluster();
if (!server.crash || !server.startAgain) {
  console.error('npm run chaos needs the installed PostgreSQL server binaries (it crashes and restarts the server)');
  await server.stop();
  process.exit(2);
}
const started = Date.now();
const faults: Record<Fault, number> = { sigkill: 0, sigterm: 0, terminate_backends: 0, server_crash: 0 };
const recoveries: { fault: Fault; seconds: number }[] = [];
let exitCode = 0;
try {
  const url = await recreateDatabase(server.adminUrl, 'apportion_chaos');
  await migrate(url);
  let admin = postgres(url, { max: 2, onnotice: () => {} });
  const ingestUrl = await loginRoleUrl(url, 'apportion_ingest', 'chaos_ingest');
  const workerUrl = await loginRoleUrl(url, 'apportion_worker', 'chaos_worker');
  await admin`select apportion.register_model(${MODELS[0]!}, 'linear', '{}')`;
  await admin`select apportion.register_model(${MODELS[1]!}, 'time_decay', '{"half_life": "7 days"}')`;
  const ingestClient = () => postgres(ingestUrl, { max: 2, onnotice: () => {}, connect_timeout: 5 });
  let ingest = ingestClient();
  for (const t of TENANTS) {
    await admin`select apportion.create_tenant(${'chaos ' + t.slice(-2)}, ${t})`;
    await ingest.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${t}, true)`;
      for (const m of MODELS) await tx`select apportion.activate_model(${m})`;
    });
  }

  const env = { APPORTION_BATCH_SIZE: '200', APPORTION_JOB_TIMEOUT_MS: '10000', APPORTION_PING_INTERVAL_MS: '1000', LOG_LEVEL: 'info' };
  const workers: RunningOrchestrator[] = [await startOrchestrator(workerUrl, env), await startOrchestrator(workerUrl, env)];
  const ready = async (o: RunningOrchestrator) => (await o.health('/readyz').catch(() => ({ status: 0 }))).status === 200;

  // Ingest: acknowledged batches are counted; a failed one is sent again.
  let acknowledged = 0;
  let batches = 0;
  let retries = 0;
  let stopIngest = false;
  const ingestLoop = (async () => {
    for (let b = 0; !stopIngest; b++) {
      const tenant = pick(TENANTS);
      const n = 20 + Math.floor(random() * 280);
      const day = Math.floor(random() * 30);
      for (;;) {
        try {
          await within(30_000, ingest.begin(async (tx) => {
            await tx`select set_config('app.tenant_id', ${tenant}, true)`;
            await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at, external_id)
                     select 'c-' || ${b} || '-' || g, (${CHANNELS}::text[])[1 + (g * 7 + k) % 7],
                            '2026-01-01'::timestamptz + ${day} * interval '1 day' - (k * 3 + 1) * interval '1 hour', 't-' || ${b} || '-' || g || '-' || k
                       from generate_series(1, ${n}::int) g, generate_series(0, g % 4) k
                     on conflict (tenant_id, external_id) do nothing`;
            await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency, external_event_id)
                     select 'c-' || ${b} || '-' || g, '2026-01-01'::timestamptz + ${day} * interval '1 day', 1 + (g * 7919) % 100000, 'USD', 'e-' || ${b} || '-' || g
                       from generate_series(1, ${n}::int) g
                     on conflict (tenant_id, external_event_id) do nothing`;
          }));
          acknowledged += n;
          batches++;
          break;
        } catch {
          // A fresh client: the old one may have been wedged by the cut.
          retries++;
          void ingest.end({ timeout: 0 }).catch(() => {});
          ingest = ingestClient();
          await sleep(200);
        }
      }
      await sleep(50 + random() * 100);
    }
  })();

  // Faults.
  const deadline = started + MINUTES * 60_000;
  let lastCrash = 0;
  while (Date.now() < deadline) {
    await sleep(2000 + random() * 4000);
    const fault: Fault = Date.now() - lastCrash > 60_000 && random() < 0.3 ? 'server_crash' : pick(['sigkill', 'sigterm', 'terminate_backends'] as const);
    const t0 = Date.now();
    faults[fault]++;
    if (fault === 'sigkill' || fault === 'sigterm') {
      const i = Math.floor(random() * workers.length);
      await workers[i]!.stop(fault === 'sigkill' ? 'SIGKILL' : 'SIGTERM');
      workers[i] = await startOrchestrator(workerUrl, env);
    } else if (fault === 'terminate_backends') {
      // A connection of its own each time: one that lived through a crash
      // may have been wedged by the driver (see orchestrator/db.ts).
      const killer = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
      await within(10_000, killer`select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'apportion-%'`).catch(() => {});
      await killer.end({ timeout: 0 });
    } else {
      lastCrash = Date.now();
      server.crash();
      await sleep(1000);
      server.startAgain();
    }
    // Recovered: every orchestrator ready again (a ping through the queue).
    for (;;) {
      const states = await Promise.all(workers.map(ready));
      if (states.every(Boolean)) break;
      if (Date.now() - t0 > 120_000) throw new Error(`no recovery within 120 s after ${fault}`);
      await sleep(50);
    }
    recoveries.push({ fault, seconds: (Date.now() - t0) / 1000 });
    log(`${fault}: recovered in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${acknowledged} events acknowledged so far`);
  }
  stopIngest = true;
  await ingestLoop;
  // Fresh connections for the drain and the checks (as above).
  void admin.end({ timeout: 0 }).catch(() => {});
  admin = postgres(url, { max: 2, onnotice: () => {} });
  log('drain: connected again');
  log(`ingest stopped: ${acknowledged} events in ${batches} batches (${retries} batches sent again after a fault); draining`);

  // Drain: nothing pending, no job queued or running.
  const drainStart = Date.now();
  let polls = 0;
  for (;;) {
    const [r] = await within(30_000, admin`select (select count(*) from apportion.pending_allocations)::int as pending,
                                   (select count(*) from apportion.jobs_live where queue = 'attribution')::int as live`);
    if (r!.pending === 0 && r!.live === 0) break;
    if (Date.now() - drainStart > 600_000) throw new Error(`not drained after 600 s: ${JSON.stringify(r)}`);
    if (++polls % 50 === 0) log(`draining: ${r!.pending} pending allocations, ${r!.live} attribution jobs queued or running`);
    await sleep(200);
  }
  const drainSeconds = (Date.now() - drainStart) / 1000;
  for (const w of workers) await w.stop('SIGTERM');

  // Invariants.
  const checks: { name: string; violations: number; detail: string }[] = [];
  const [stored] = await admin`select count(*)::int as events from apportion.attribution_events`;
  checks.push({ name: 'every acknowledged event is stored', violations: Math.max(0, acknowledged - stored!.events), detail: `${stored!.events} stored, ${acknowledged} acknowledged` });
  const [sums] = await admin`
    select count(*) filter (where a.total is null)::int as unallocated,
           count(*) filter (where a.total is not null and a.total <> e.revenue_cents)::int as wrong_sum,
           count(*)::int as pairs
      from apportion.attribution_events e
      cross join unnest(${MODELS}::text[]) m (model_version)
      left join (select event_id, model_version, sum(allocated_revenue_cents) as total
                   from apportion.attribution_allocations group by 1, 2) a
        on a.event_id = e.id and a.model_version = m.model_version`;
  checks.push({ name: 'every event of every active model is allocated', violations: sums!.unallocated, detail: `${sums!.pairs} event x model pairs` });
  checks.push({ name: 'parts sum to the revenue', violations: sums!.wrong_sum, detail: `${sums!.pairs} event x model pairs` });
  let mismatched = 0;
  for (const t of TENANTS) {
    for (const m of MODELS) {
      const [d] = await admin.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${t}, true)`;
        return tx`
          with expected as (select c.event_id, c.channel, c.allocated_revenue_cents, c.allocation_ratio
                              from apportion.compute_allocations(${m}, array(select e.id from apportion.attribution_events e where e.tenant_id = ${t})) c),
               stored as (select a.event_id, a.channel, a.allocated_revenue_cents, a.allocation_ratio
                            from apportion.attribution_allocations a where a.tenant_id = ${t} and a.model_version = ${m})
          select ((select count(*) from (table expected except all table stored) x) + (select count(*) from (table stored except all table expected) x))::int as n`;
      });
      mismatched += d!.n;
    }
  }
  checks.push({ name: 'stored allocations equal a from-scratch computation', violations: mismatched, detail: `${TENANTS.length} tenants x ${MODELS.length} models, rows in one and not the other` });
  const [jobs] = await admin`
    select count(*)::int as total,
           count(*) filter (where state in ('queued', 'running'))::int as unfinished,
           count(*) filter (where state = 'failed')::int as failed,
           count(*) filter (where state = 'failed' and not exists (select from apportion.worker_failed_jobs f where f.job_id = j.id))::int as failed_unrecorded,
           count(*) filter (where jsonb_array_length(attempt_log) <> attempts)::int as attempts_unrecorded
      from apportion.jobs j where queue = 'attribution'`;
  checks.push({ name: 'no job left queued or running', violations: jobs!.unfinished, detail: `${jobs!.total} attribution jobs` });
  checks.push({ name: 'every job that failed for good is recorded in worker_failed_jobs', violations: jobs!.failed_unrecorded, detail: `${jobs!.failed} failed` });
  checks.push({ name: 'every attempt is in its job\'s attempt log', violations: jobs!.attempts_unrecorded, detail: `${jobs!.total} jobs` });
  await admin.end();
  await ingest.end();

  const total = checks.reduce((n, c) => n + c.violations, 0);
  exitCode = total === 0 ? 0 : 1;
  const sorted = recoveries.map((r) => r.seconds).sort((a, b) => a - b);
  const q = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(1) : 'n/a');
  const recoveryByFault = (Object.keys(faults) as Fault[]).map((f) => {
    const xs = recoveries.filter((r) => r.fault === f).map((r) => r.seconds);
    return `| ${f} | ${faults[f]} | ${xs.length ? Math.max(...xs).toFixed(1) : 'n/a'} |`;
  });
  const report = [
    `Run ${new Date(started).toISOString().slice(0, 16).replace('T', ' ')} UTC, ${MINUTES} min, seed ${numberFlag(args, '--seed', 20261201)}; 2 orchestrators, 20 tenants, models linear and time_decay; durable cluster on this machine (2 cores).`,
    '',
    `- Ingest: ${acknowledged.toLocaleString('en-US')} events in ${batches} batches; ${retries} batches sent again after a fault (idempotent by external id); the driver's write-timer fault hit this process's own clients ${driverFaults} times.`,
    `- Faults: ${recoveries.length}; recovery (every orchestrator ready again, a ping through the queue) median ${q(0.5)} s, max ${q(1)} s. Drain after ingest stopped: ${drainSeconds.toFixed(1)} s.`,
    `- Jobs: ${jobs!.total.toLocaleString('en-US')} attribution jobs, ${jobs!.failed} failed for good.`,
    '',
    '| fault | injected | slowest recovery (s) |',
    '|---|---:|---:|',
    ...recoveryByFault,
    '',
    '| invariant | violations | checked |',
    '|---|---:|---|',
    ...checks.map((c) => `| ${c.name} | ${c.violations} | ${c.detail} |`),
  ].join('\n');
  console.log(`\n${report}\n`);
  if (MINUTES >= 10) {
    const doc = path.join(ROOT, 'docs', 'reliability.md');
    const text = fs.readFileSync(doc, 'utf8');
    const start = '<!-- chaos:start -->';
    const end = '<!-- chaos:end -->';
    fs.writeFileSync(doc, text.slice(0, text.indexOf(start) + start.length) + '\n' + report + '\n' + text.slice(text.indexOf(end)));
    console.log('updated docs/reliability.md');
  }
  console.log(total === 0 ? 'chaos: every invariant holds' : `chaos: ${total} invariant violation(s)`);
} catch (err) {
  console.error(`chaos: ${(err as Error).stack ?? String(err)}`);
  exitCode = 1;
} finally {
  await server.stop().catch(() => {});
}
process.exit(exitCode);
