#!/usr/bin/env -S npx tsx
// npm run bench:peers [-- --shrink N] [--rounds R]
//
// apportion against the queues people would pick instead, on one throwaway
// PostgreSQL (durable settings: fsync and synchronous_commit on), in one
// invocation, same workloads for all:
//   (a) no-op burn-down: N jobs enqueued in one batch call, then drained;
//   (b) idle latency: jobs enqueued one at a time ~10 ms apart while the
//       worker listens, the systems alternating in blocks of 100 jobs;
//       enqueue to handler start;
//   (c) tenant-scoped transactional work: each job, for one of 50 tenants,
//       inserts one row into a table under RLS and completes;
//   (d) noisy neighbour: tenant A enqueues a backlog of (c) jobs in
//       5,000-job calls while tenant B enqueues one every 20 ms; B's enqueue
//       to handler start, and A's rate; each system configured for fairness
//       across tenants as it suggests;
//   plus the raw SQL bound (pgbench: claim 100 with SKIP LOCKED + delete)
//   and, per system, a SIGKILL halfway through a (c) run, a restart, and a
//   count of jobs whose row and completion disagree.
// Systems run one after another (but (b), alternating in blocks), each round
// starting one system later (A B C, B C A, C A B, ...), for R rounds; figures are
// medians with min..max and the ratio apportion / peer per round.
// Writes bench-results/peers.json, the `peers` section of docs/benchmarks.md
// and docs/benchmarks-peers.svg; --shrink N (smoke run) writes only
// bench-results/peers.shrinkN.json and .svg (ignored by git).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { loginRoleUrl } from '../../lib/roles.js';
import { bareTableBound } from '../lib/pgbench.js';
import { machine, machineMarkdown, RESULTS, ROOT, writeDocSection, writeResults, type Machine } from '../lib/report.js';
import { numberFlag, runOnBenchDatabase } from '../lib/run.js';
import { fmt, percentile, r0, sleep, stat, type Stat } from '../lib/stats.js';
import { registerBenchTask } from './apportion.js';
import { renderChart, type ChartRow } from './chart.js';
import { NOISY_A, NOISY_B, NOISY_RUN_PREFIX, tenantJobs, wallMs, type QueueSystem } from './system.js';
import { makeSystem, SYSTEM_KEYS, type BenchUrls } from './systems.js';

const CHART = path.join(ROOT, 'docs', 'benchmarks-peers.svg');
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'child.ts');

// ---- arguments -------------------------------------------------------------
const args = process.argv.slice(2);
const shrink = numberFlag(args, '--shrink', 1);
const ROUNDS = numberFlag(args, '--rounds', 3);
const N = Math.max(1000, Math.round(50_000 / shrink));
const LATENCY = Math.max(50, Math.round(500 / shrink));
const LATENCY_BLOCK = Math.max(10, Math.round(100 / shrink));
const TENANT_JOBS = Math.max(500, Math.round(10_000 / shrink));
const KILL_JOBS = Math.max(1000, Math.round(10_000 / shrink));
const NOISY_JOBS = Math.max(2000, Math.round(20_000 / shrink));
const NOISY_CALL = 5000;
const NOISY_B_EVERY_MS = 20;
const NOISY_LIMIT_MS = 120_000;
const PGBENCH_CLIENTS = 4;

// ---- results ---------------------------------------------------------------
interface SystemResult {
  key: string;
  label: string;
  settings: string;
  enqueuePerSecond?: Stat;
  drainPerSecond?: Stat;
  latencyMs?: { p50: Stat; p95: Stat; p99: Stat; max: Stat; samples: number };
  tenantDrainPerSecond?: Stat;
  noisy?: { bP50: Stat; bP99: Stat; bSamples: number[]; aPerSecond: Stat };
  fairness?: string;
  tenantRowCheck: string[];
  kill?: KillResult;
}

interface KillResult {
  jobs: number;
  rowsAtKill: number;
  completedAtKill: number;
  recovery: string;
  finishSeconds: number;
  finished: boolean;
  completed: number;
  rows: number;
  /** completed, but no row */
  lost: number;
  /** jobs with more than one row */
  duplicated: number;
  extraRows: number;
  /** not completed at the end, though a row was written */
  rowWithoutCompletion: number;
  /** not completed at the end */
  notCompleted: number;
}

const ms2 = (x: number) => x.toFixed(2);

// ---- setup -------------------------------------------------------------------
async function setupBenchSchema(admin: postgres.Sql, url: string): Promise<BenchUrls> {
  const worker = await loginRoleUrl(url, 'apportion_worker', 'apportion_worker_peers_bench');
  // The peers' role: not superuser (so RLS applies to it), in no apportion group.
  const peer = await loginRoleUrl(url, null, 'bench_peer');
  const db = decodeURIComponent(new URL(url).pathname.slice(1));
  await admin.unsafe(`grant create on database "${db}" to bench_peer`);
  // The tenant table of workload (c): RLS forced, the tenant read from the
  // transaction-local app.tenant_id, as apportion's own tables.
  await admin.unsafe(`
    create schema if not exists bench_peers;
    create table if not exists bench_peers.tenant_rows (
      id bigint generated always as identity primary key,
      tenant_id uuid not null,
      run text not null,
      ref text not null,
      written_at timestamptz not null default clock_timestamp()
    );
    create index if not exists tenant_rows_run_ref on bench_peers.tenant_rows (run, ref);
    alter table bench_peers.tenant_rows enable row level security;
    alter table bench_peers.tenant_rows force row level security;
    drop policy if exists tenant_isolation on bench_peers.tenant_rows;
    create policy tenant_isolation on bench_peers.tenant_rows to apportion_worker, bench_peer
      using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
      with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
    -- apportion_owner resolves the handler name whenever the registry regenerates run_task.
    grant usage on schema bench_peers to apportion_owner, apportion_worker, bench_peer;
    grant insert on bench_peers.tenant_rows to apportion_worker, bench_peer;
    create table if not exists bench_peers.raw (id bigserial primary key, payload jsonb not null default '{}');`);
  await registerBenchTask(admin);
  return { admin: url, worker, peer };
}

// ---- workloads -----------------------------------------------------------------
const TIMEOUT = 600_000;

/** Poll `done` every `everyMs` until it returns true or `timeoutMs` passes. */
async function until(done: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await done()) return true;
    await sleep(everyMs);
  }
  return done();
}

async function waitDone(s: QueueSystem, w: { handled(k: 'noop' | 'tenant_row'): number }, kind: 'noop' | 'tenant_row', n: number, what: string): Promise<void> {
  // Handler count first (no database load), then the database's word that
  // every job is recorded as completed.
  const ok = (await until(() => w.handled(kind) >= n, TIMEOUT, 1)) && (await until(async () => (await s.remaining(kind)) === 0, TIMEOUT, 2));
  if (!ok) throw new Error(`${s.label}: ${what} did not finish within ${TIMEOUT / 1000} s (handled ${w.handled(kind)} of ${n}, ${await s.remaining(kind)} not completed)`);
}

async function burnDown(admin: postgres.Sql, s: QueueSystem): Promise<[number, number]> {
  await admin`vacuum analyze`;
  const w = await s.startWorker();
  await sleep(300);
  const t0 = performance.now();
  await s.enqueueNoops(N);
  const t1 = performance.now();
  await waitDone(s, w, 'noop', N, 'burn-down');
  const t2 = performance.now();
  await w.stop();
  return [N / ((t1 - t0) / 1000), N / ((t2 - t1) / 1000)];
}

/** The systems in this round's turn: round r starts with the r-th. */
function inTurn<T>(xs: T[], round: number): T[] {
  return xs.map((_, i) => xs[(i + round - 1) % xs.length]!);
}

/**
 * Workload (b), the systems in alternating blocks: each system in turn (this
 * round's order) starts its worker, takes a block of LATENCY_BLOCK jobs
 * enqueued one at a time ~10 ms apart, and stops; then the next system; until
 * every system has had LATENCY jobs. Each system is measured alone, as an
 * idle worker, and all of them over the same stretch of the machine's time,
 * so a slow spell on this shared 2-core machine lands on every system instead
 * of on whichever one happened to be measured then.
 */
async function latencyInBlocks(admin: postgres.Sql, systems: QueueSystem[], run: string): Promise<Map<string, number[]>> {
  // Settled first, as every workload after (a): otherwise the first blocks
  // share the cores with autovacuum and the checkpoint that the drains and
  // the raw bound before them left behind.
  await admin`vacuum analyze`;
  await admin`checkpoint`;
  const lat = new Map<string, number[]>(systems.map((s) => [s.key, []]));
  for (let first = 0; first < LATENCY; first += LATENCY_BLOCK) {
    for (const s of systems) {
      const w = await s.startWorker();
      await sleep(300);
      const enqueuedAt = new Map<number, number>();
      const end = Math.min(LATENCY, first + LATENCY_BLOCK);
      for (let seq = first; seq < end; seq++) {
        enqueuedAt.set(seq, wallMs());
        await s.enqueueNoop(seq, run);
        await sleep(10);
      }
      await waitDone(s, w, 'noop', end - first, 'latency block');
      const starts = await w.starts(run);
      await w.stop();
      for (const [seq, t] of enqueuedAt) {
        const st = starts.get(seq);
        if (st !== undefined) lat.get(s.key)!.push(st - t);
      }
    }
  }
  for (const s of systems) {
    const xs = lat.get(s.key)!;
    if (xs.length !== LATENCY) throw new Error(`${s.label}: handler start known for ${xs.length} of ${LATENCY} latency jobs`);
    xs.sort((a, b) => a - b);
  }
  return lat;
}

async function rowCheck(admin: postgres.Sql, run: string, n: number): Promise<string | null> {
  const [r] = await admin`select count(*)::int as rows, count(distinct ref)::int as refs from bench_peers.tenant_rows where run = ${run}`;
  return r!.rows === n && r!.refs === n ? null : `${run}: ${r!.rows} rows for ${r!.refs} distinct jobs (expected ${n})`;
}

async function tenantRun(admin: postgres.Sql, s: QueueSystem, run: string): Promise<[number, string | null]> {
  await admin`vacuum analyze`;
  const jobs = tenantJobs(TENANT_JOBS, run);
  const w = await s.startWorker();
  await sleep(300);
  await s.enqueueTenantJobs(jobs);
  const t1 = performance.now();
  await waitDone(s, w, 'tenant_row', TENANT_JOBS, 'tenant run');
  const t2 = performance.now();
  await w.stop();
  return [TENANT_JOBS / ((t2 - t1) / 1000), await rowCheck(admin, run, TENANT_JOBS)];
}

/** Workload (d): A's backlog, B's single jobs; B's latencies (sorted) and A's rate. */
async function noisyNeighbour(admin: postgres.Sql, s: QueueSystem, round: number): Promise<{ b: number[]; aPerSecond: number; problems: string[]; cut: string | null }> {
  await admin`vacuum analyze`;
  const runA = `${NOISY_RUN_PREFIX}${round}-${s.key}-a`;
  const runB = `${NOISY_RUN_PREFIX}${round}-${s.key}-b`;
  const aJobs = Array.from({ length: NOISY_JOBS }, (_, i) => ({ tenant: NOISY_A, ref: String(i), run: runA }));
  const w = await s.startWorker({ fair: true });
  await sleep(300);
  const bSent = new Map<string, number>();
  let stopB = false;
  const bLoop = (async () => {
    for (let i = 0; !stopB; i++) {
      const ref = String(i);
      bSent.set(ref, wallMs());
      await s.enqueueTenantJobs([{ tenant: NOISY_B, ref, run: runB }], { fair: true });
      await sleep(NOISY_B_EVERY_MS);
    }
  })();
  await sleep(100);
  const t0 = performance.now();
  for (let i = 0; i < NOISY_JOBS; i += NOISY_CALL) await s.enqueueTenantJobs(aJobs.slice(i, i + NOISY_CALL), { fair: true });
  // A system that cannot finish A's backlog in NOISY_LIMIT_MS is reported
  // as far as it got, and what it left is discarded.
  const aDone = await until(async () => (await s.pendingRefs(runA)).size === 0, NOISY_LIMIT_MS, 20);
  const aSecs = (performance.now() - t0) / 1000;
  stopB = true;
  await bLoop;
  const bDone = await until(async () => (await s.pendingRefs(runB)).size === 0, aDone ? TIMEOUT : 5000, 5);
  const aLeft = aDone ? 0 : (await s.pendingRefs(runA)).size;
  const bLeft = bDone ? 0 : (await s.pendingRefs(runB)).size;
  const starts = await w.tenantStarts(runB);
  await w.stop();
  const b: number[] = [];
  for (const [ref, t] of bSent) {
    const st = starts.get(ref);
    if (st !== undefined) b.push(st - t);
  }
  const problems: string[] = [];
  if (aDone && bDone) {
    if (b.length !== bSent.size) throw new Error(`${s.label}: handler start known for ${b.length} of ${bSent.size} of B's jobs`);
    for (const p of [await rowCheck(admin, runA, NOISY_JOBS), await rowCheck(admin, runB, bSent.size)]) if (p) problems.push(p);
  } else {
    await s.discard(runA);
    await s.discard(runB);
  }
  const cut = aDone ? null : `cut short after ${NOISY_LIMIT_MS / 1000} s: ${aLeft} of A's ${NOISY_JOBS} jobs and ${bLeft} of B's ${bSent.size} not completed`;
  return { b: b.sort((x, y) => x - y), aPerSecond: (NOISY_JOBS - aLeft) / aSecs, problems, cut };
}

async function killTest(admin: postgres.Sql, s: QueueSystem, urls: BenchUrls, log: (l: string) => void): Promise<KillResult> {
  const run = `kill-${s.key}`;
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    cwd: ROOT,
    env: { ...process.env, BENCH_SYSTEM: s.key, BENCH_URLS: JSON.stringify(urls) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${s.label}: kill-test child exited (${code}) before it was ready`)));
  });
  const rowsOf = async () => (await admin`select count(*)::int as n from bench_peers.tenant_rows where run = ${run}`)[0]!.n as number;
  await s.enqueueTenantJobs(tenantJobs(KILL_JOBS, run));
  const half = await until(async () => (await rowsOf()) >= KILL_JOBS / 2, TIMEOUT, 5);
  child.kill('SIGKILL');
  await exited;
  if (!half) throw new Error(`${s.label}: kill test never reached half way`);
  const rowsAtKill = await rowsOf();
  const completedAtKill = KILL_JOBS - (await s.pendingRefs(run)).size;
  log(`  ${s.label}: SIGKILL at ${rowsAtKill} rows written, ${completedAtKill} jobs recorded completed`);
  const recovery = await s.recoverAfterKill();
  const t0 = performance.now();
  const w = await s.startWorker({ afterKill: true });
  const finished = await until(async () => (await s.remaining('tenant_row')) === 0, 300_000, 100);
  const finishSeconds = (performance.now() - t0) / 1000;
  await w.stop();
  const pending = await s.pendingRefs(run);
  const counts = await admin<{ ref: string; n: number }[]>`select ref, count(*)::int as n from bench_peers.tenant_rows where run = ${run} group by ref`;
  const rowsByRef = new Map(counts.map((c) => [c.ref, c.n]));
  let lost = 0;
  let duplicated = 0;
  let extraRows = 0;
  let rowWithoutCompletion = 0;
  for (let i = 0; i < KILL_JOBS; i++) {
    const ref = String(i);
    const rows = rowsByRef.get(ref) ?? 0;
    if (pending.has(ref)) {
      if (rows > 0) rowWithoutCompletion++;
    } else if (rows === 0) lost++;
    if (rows > 1) {
      duplicated++;
      extraRows += rows - 1;
    }
  }
  return {
    jobs: KILL_JOBS,
    rowsAtKill,
    completedAtKill,
    recovery,
    finishSeconds,
    finished,
    completed: KILL_JOBS - pending.size,
    rows: counts.reduce((a, c) => a + c.n, 0),
    lost,
    duplicated,
    extraRows,
    rowWithoutCompletion,
    notCompleted: pending.size,
  };
}

// ---- report --------------------------------------------------------------------
interface PeersResult {
  setup: Record<string, unknown>;
  systems: SystemResult[];
  rawBoundPerSecond: Stat | null;
  ratios: { round: number; peer: string; drain: number | null; tenant: number | null; p50: number | null; noisyP99?: number | null }[];
  notes: string[];
}

/** The peers bench's goals, checked against this run's medians (and per round). */
function barMarkdown(r: PeersResult): string[] {
  const by = (key: string) => r.systems.find((s) => s.key === key);
  const a = by('apportion');
  const gb = by('graphile-batched');
  const gd = by('graphile-default');
  const pb = by('pgboss');
  if (!a?.drainPerSecond || !gb?.drainPerSecond || !pb?.drainPerSecond || !a.latencyMs || !gb.latencyMs || !gd?.latencyMs) return [];
  const yes = (ok: boolean) => (ok ? 'met' : '**not met**');
  const perRound = (peer: string, f: 'drain' | 'p50', ok: (x: number) => boolean) =>
    r.ratios.filter((x) => x.peer === peer && x[f] !== null).map((x) => (ok(x[f]!) ? 'yes' : 'no')).join(', ');
  const k = a.kill;
  const out = ['### The goals, on this run', ''];
  out.push(`- apportion drain >= graphile-worker batched: ${r0(a.drainPerSecond.median)} vs ${r0(gb.drainPerSecond.median)} jobs/s (median), ${yes(a.drainPerSecond.median >= gb.drainPerSecond.median)}; per round: ${perRound(gb.label, 'drain', (x) => x >= 1)}.`);
  out.push(`- apportion drain >= 1.5 x pg-boss: ${r0(a.drainPerSecond.median)} vs 1.5 x ${r0(pb.drainPerSecond.median)} = ${r0(1.5 * pb.drainPerSecond.median)} jobs/s, ${yes(a.drainPerSecond.median >= 1.5 * pb.drainPerSecond.median)}; per round: ${perRound(pb.label, 'drain', (x) => x >= 1.5)}.`);
  out.push(`- apportion p50 latency <= graphile-worker's: ${ms2(a.latencyMs.p50.median)} ms vs ${ms2(gd.latencyMs.p50.median)} ms (default) and ${ms2(gb.latencyMs.p50.median)} ms (batched), ${yes(a.latencyMs.p50.median <= Math.min(gd.latencyMs.p50.median, gb.latencyMs.p50.median))}; per round vs default: ${perRound(gd.label, 'p50', (x) => x <= 1)}; vs batched: ${perRound(gb.label, 'p50', (x) => x <= 1)}.`);
  if (k) out.push(`- apportion loses or duplicates nothing after SIGKILL: ${k.lost} lost, ${k.duplicated} duplicated, ${k.notCompleted} not completed, ${yes(k.lost === 0 && k.duplicated === 0 && k.notCompleted === 0 && k.rowWithoutCompletion === 0)}.`);
  return out;
}

function markdown(r: PeersResult, m: Machine, date: string): string {
  const out: string[] = [];
  out.push(machineMarkdown(m, date));
  out.push(`The machine has ${m.cores} cores and other sessions were running test suites on it at times during the run (load average ${m.loadAverageAtStart.join(' / ')} at the start): treat single figures with caution; the ratios are taken within each round, where every system saw about the same conditions.`, '');
  out.push('Reproduce with `npm run bench:peers` (scripts/bench/peers/main.ts). One throwaway PostgreSQL with durable settings (fsync and synchronous_commit on); every system in its own schema of the same database, installed by the system itself; all workers in the same Node process as the driver except in the kill test.', '');
  out.push('![throughput and latency per system](benchmarks-peers.svg)', '');
  out.push('### Settings', '');
  for (const s of r.systems) out.push(`- **${s.label}**: ${s.settings}.`);
  out.push('');
  out.push('### Workloads', '');
  const st = r.setup as { jobs: number; latencyJobs: number; latencyBlock: number; tenantJobs: number; killJobs: number; rounds: number; tenants: number };
  out.push(`- (a) no-op burn-down: ${r0(st.jobs)} jobs enqueued in one batch (apportion: one transaction of enqueue_many calls of 10,000; graphile-worker addJobs; pg-boss insert), then drained; enqueue rate = jobs / time of that call; drain rate = jobs / time from the enqueue's return until the database records every job completed.`);
  out.push(`- (b) idle latency: ${st.latencyJobs} jobs per system, enqueued one at a time ~10 ms apart while its worker listens, in blocks of ${st.latencyBlock}: each system in turn starts its worker, takes a block and stops, until every system has had all its jobs (so each system is measured alone, and all of them over the same stretch of the machine's time). Clock basis, the same for all: the host's wall clock; enqueue = taken in the driver just before the enqueue call is sent; handler start = for the peers, the wall clock at handler entry in Node; for apportion, whose handlers run in the database, clock_timestamp() at handler entry (attempt_log->0->>'started_at'). Node and PostgreSQL read the same clock on one machine.`);
  out.push(`- (c) tenant-scoped transactional work: ${r0(st.tenantJobs)} jobs over ${st.tenants} tenants, interleaved (job i belongs to tenant i mod ${st.tenants}, the same order for every system); each job inserts one row into bench_peers.tenant_rows (RLS forced, tenant from the transaction-local app.tenant_id) and completes. apportion: a bench-only task registered in the bench database only, run by run_jobs inside the job's transaction. Peers: the handler opens its own transaction, sets the tenant locally, inserts, commits; the queue then marks the job complete separately. Every run's rows are checked: one row per job.`);
  const sd = r.setup as { noisyJobs?: number; noisyCall?: number; noisyBEveryMs?: number };
  if (sd.noisyJobs) out.push(`- (d) noisy neighbour: tenant A enqueues ${r0(sd.noisyJobs)} (c) jobs in calls of ${r0(sd.noisyCall!)}, one after another, while tenant B enqueues one (c) job every ${sd.noisyBEveryMs} ms until A's are all completed; B's latency from the enqueue call to handler start (clock basis as in (b)); A's rate = A's jobs / time from its first enqueue until the database records all of them completed. Each system as it suggests for fairness across tenants: ${r.systems.filter((x) => x.fairness).map((x) => `${x.label}: ${x.fairness}`).join('; ')}.`);
  out.push(`- Kill test: ${r0(st.killJobs)} (c) jobs; the worker runs in a child process, SIGKILLed once half the rows are written; then recovered as stated, a fresh worker finishes, and every job is checked: completed without its row (lost), more than one row (duplicated), row written but job not completed.`);
  out.push(`- Raw SQL bound: pgbench, ${PGBENCH_CLIENTS} clients, \`claim 100 ... for update skip locked\` + delete, one statement per transaction, on a bare table, once per round.`);
  out.push(`- ${st.rounds} rounds, systems one after another within each workload except (b), each round starting one system later (A B C D, B C D A, ...); (b) alternates them block by block in that order; the idle-latency run starts after a vacuum analyze and a checkpoint; median (min..max) over rounds.`, '');
  out.push('### Figures', '');
  out.push('| system | (a) enqueue, jobs/s | (a) drain, jobs/s | (b) p50 ms | (b) p95 ms | (b) p99 ms | (c) rows + completions, jobs/s |');
  out.push('|---|---:|---:|---:|---:|---:|---:|');
  for (const s of r.systems) {
    out.push(`| ${s.label} | ${fmt(s.enqueuePerSecond)} | ${fmt(s.drainPerSecond)} | ${fmt(s.latencyMs?.p50, ms2)} | ${fmt(s.latencyMs?.p95, ms2)} | ${fmt(s.latencyMs?.p99, ms2)} | ${fmt(s.tenantDrainPerSecond)} |`);
  }
  if (r.rawBoundPerSecond) out.push(`| raw SQL bound (pgbench) | | ${fmt(r.rawBoundPerSecond)} | | | | |`);
  out.push('');
  if (r.systems.some((s) => s.noisy)) {
    out.push('(d) noisy neighbour:', '');
    out.push('| system | B p50 ms | B p99 ms | B jobs per round | A jobs/s |', '|---|---:|---:|---|---:|');
    for (const s of r.systems) {
      if (!s.noisy) continue;
      out.push(`| ${s.label} | ${fmt(s.noisy.bP50, ms2)} | ${fmt(s.noisy.bP99, ms2)} | ${s.noisy.bSamples.join(', ')} | ${fmt(s.noisy.aPerSecond)} |`);
    }
    out.push('');
  }
  out.push('### apportion / peer, per round', '');
  out.push('Throughput ratios above 1 and latency ratios below 1 favour apportion.', '');
  out.push('| peer | (a) drain ratio per round | (c) ratio per round | (b) p50 latency ratio per round | (d) B p99 ratio per round |', '|---|---|---|---|---|');
  const peers = [...new Set(r.ratios.map((x) => x.peer))];
  const list = (peer: string, f: 'drain' | 'tenant' | 'p50' | 'noisyP99') =>
    r.ratios.filter((x) => x.peer === peer).map((x) => (x[f] == null ? 'n/a' : x[f]!.toFixed(2))).join(', ');
  for (const p of peers) out.push(`| ${p} | ${list(p, 'drain')} | ${list(p, 'tenant')} | ${list(p, 'p50')} | ${list(p, 'noisyP99')} |`);
  out.push('');
  out.push(...barMarkdown(r), '');
  out.push('### SIGKILL halfway through (c)', '');
  out.push('| system | rows at kill | completed at kill | recovery | finished after restart | lost (completed, no row) | duplicated jobs (extra rows) | row but not completed | not completed |');
  out.push('|---|---:|---:|---|---:|---:|---:|---:|---:|');
  for (const s of r.systems) {
    const k = s.kill;
    if (!k) continue;
    out.push(`| ${s.label} | ${r0(k.rowsAtKill)} | ${r0(k.completedAtKill)} | ${k.recovery} | ${k.finished ? `${k.finishSeconds.toFixed(1)} s` : `not within ${k.finishSeconds.toFixed(0)} s`} | ${k.lost} | ${k.duplicated} (${k.extraRows}) | ${k.rowWithoutCompletion} | ${k.notCompleted} |`);
  }
  out.push('');
  if (r.notes.length) {
    out.push('### Notes', '');
    for (const n of r.notes) out.push(`- ${n}`);
  }
  return out.join('\n');
}


/** Print the markdown; write the chart and the docs section (full-size runs only). */
async function publish(result: PeersResult, m: Machine, date: string): Promise<void> {
  const md = markdown(result, m, date);
  console.log(`\n${md}\n`);
  const chartRows: ChartRow[] = result.systems.map((s) => ({
    system: s.label,
    drain: s.drainPerSecond ? [s.drainPerSecond.median, s.drainPerSecond.min, s.drainPerSecond.max] : undefined,
    tenant: s.tenantDrainPerSecond ? [s.tenantDrainPerSecond.median, s.tenantDrainPerSecond.min, s.tenantDrainPerSecond.max] : undefined,
    p50: s.latencyMs?.p50.median,
    p95: s.latencyMs?.p95.median,
    p99: s.latencyMs?.p99.median,
  }));
  if (result.rawBoundPerSecond) chartRows.push({ system: 'raw SQL bound', drain: [result.rawBoundPerSecond.median, result.rawBoundPerSecond.min, result.rawBoundPerSecond.max] });
  const svg = await renderChart(chartRows, 'apportion and its peers, same PostgreSQL, same run', `${date}; ${m.cores} cores, shared machine; medians of ${(result.setup as { rounds: number }).rounds} rounds, bars min..max`);
  if (shrink === 1) {
    fs.writeFileSync(CHART, svg);
    writeDocSection('peers', 'apportion against graphile-worker and pg-boss', md);
    console.log('updated docs/benchmarks.md section peers and docs/benchmarks-peers.svg');
  } else {
    const smoke = path.join(RESULTS, `peers.shrink${shrink}.svg`);
    fs.writeFileSync(smoke, svg);
    console.log(`wrote ${path.relative(ROOT, smoke)}`);
  }
}

// ---- main ----------------------------------------------------------------------
const log = (l: string) => console.log(l);
if (args.includes('--from-results')) {
  // Re-render the docs section and the chart from bench-results/peers.json
  // without measuring (e.g. after a change to the report's layout).
  const saved = JSON.parse(fs.readFileSync(path.join(RESULTS, 'peers.json'), 'utf8')) as { date: string; machine: Machine; result: PeersResult };
  await publish(saved.result, saved.machine, saved.date.slice(0, 10));
  process.exit(0);
}
await runOnBenchDatabase('apportion_bench_peers', async (url) => {
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  const m = await machine(url);
  const date = new Date().toISOString().slice(0, 10);
  log(machineMarkdown(m, date));
  log(`load average at start: ${m.loadAverageAtStart.join(' / ')} (${m.cores} cores; other work may be running)`);
  if (shrink !== 1) log(`--shrink ${shrink}: smoke run; docs are left alone`);
  const urls = await setupBenchSchema(admin, url);
  const systems = SYSTEM_KEYS.map((k) => makeSystem(k, urls));
  for (const s of systems) await s.setup();
  const results = new Map<string, SystemResult>(systems.map((s) => [s.key, { key: s.key, label: s.label, settings: s.settings, tenantRowCheck: [] }]));
  const runs = new Map<string, { enq: number[]; drain: number[]; p50: number[]; p95: number[]; p99: number[]; max: number[]; tenant: number[]; bP50: number[]; bP99: number[]; bSamples: number[]; aRate: number[] }>(
    systems.map((s) => [s.key, { enq: [], drain: [], p50: [], p95: [], p99: [], max: [], tenant: [], bP50: [], bP99: [], bSamples: [], aRate: [] }]),
  );
  const raw: number[] = [];
  const notes: string[] = [];
  const t0 = Date.now();
  log(`(a) ${N} no-op jobs, (b) ${LATENCY} latency jobs, (c) ${TENANT_JOBS} tenant jobs, (d) ${NOISY_JOBS} of A's jobs with B's every ${NOISY_B_EVERY_MS} ms; ${ROUNDS} rounds`);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const s of inTurn(systems, round).filter((x) => x.workloads.noop)) {
      const [enq, drain] = await burnDown(admin, s);
      runs.get(s.key)!.enq.push(enq);
      runs.get(s.key)!.drain.push(drain);
      log(`round ${round} (a) ${s.label}: enqueue ${r0(enq)}/s, drain ${r0(drain)}/s`);
    }
    const rb = await bareTableBound(admin, url, 'bench_peers.raw', N, PGBENCH_CLIENTS);
    if (rb !== null) raw.push(rb);
    log(`round ${round} raw SQL bound: ${rb === null ? 'no pgbench' : r0(rb) + '/s'}`);
    const latencies = await latencyInBlocks(admin, inTurn(systems, round).filter((x) => x.workloads.latency), `lat-${round}`);
    for (const s of inTurn(systems, round).filter((x) => x.workloads.latency)) {
      const lat = latencies.get(s.key)!;
      const r = runs.get(s.key)!;
      r.p50.push(percentile(lat, 50));
      r.p95.push(percentile(lat, 95));
      r.p99.push(percentile(lat, 99));
      r.max.push(lat[lat.length - 1]!);
      log(`round ${round} (b) ${s.label}: p50 ${ms2(percentile(lat, 50))} ms, p95 ${ms2(percentile(lat, 95))} ms, p99 ${ms2(percentile(lat, 99))} ms`);
    }
    for (const s of inTurn(systems, round).filter((x) => x.workloads.tenant)) {
      const [rate, problem] = await tenantRun(admin, s, `c-${round}-${s.key}`);
      runs.get(s.key)!.tenant.push(rate);
      if (problem) results.get(s.key)!.tenantRowCheck.push(problem);
      log(`round ${round} (c) ${s.label}: ${r0(rate)} jobs/s${problem ? `; ROW CHECK FAILED: ${problem}` : ''}`);
    }
    for (const s of inTurn(systems, round).filter((x) => x.workloads.noisy)) {
      const n = await noisyNeighbour(admin, s, round);
      const r = runs.get(s.key)!;
      const bp = (q: number) => (n.b.length ? percentile(n.b, q) : Number.NaN);
      r.bP50.push(bp(50));
      r.bP99.push(bp(99));
      r.bSamples.push(n.b.length);
      r.aRate.push(n.aPerSecond);
      for (const p of n.problems) results.get(s.key)!.tenantRowCheck.push(p);
      if (n.cut) notes.push(`${s.label}, round ${round} (d): ${n.cut}; B's figures are over the jobs that started.`);
      log(`round ${round} (d) ${s.label}: B p50 ${ms2(bp(50))} ms, p99 ${ms2(bp(99))} ms over ${n.b.length} jobs; A ${r0(n.aPerSecond)} jobs/s${n.cut ? `; ${n.cut}` : ''}${n.problems.length ? `; ROW CHECK FAILED: ${n.problems.join('; ')}` : ''}`);
    }
    log(`round ${round} done after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  log('kill tests (SIGKILL halfway through workload (c), restart, finish, count)');
  for (const s of systems.filter((x) => x.workloads.tenant)) {
    const k = await killTest(admin, s, urls, log);
    results.get(s.key)!.kill = k;
    log(`  ${s.label}: ${k.recovery}; finished ${k.finished ? `after ${k.finishSeconds.toFixed(1)} s` : 'NOT'}; lost ${k.lost}, duplicated ${k.duplicated} (${k.extraRows} extra rows), row but not completed ${k.rowWithoutCompletion}, not completed ${k.notCompleted}`);
  }
  for (const s of systems) {
    const r = runs.get(s.key)!;
    const res = results.get(s.key)!;
    if (r.enq.length) res.enqueuePerSecond = stat(r.enq);
    if (r.drain.length) res.drainPerSecond = stat(r.drain);
    if (r.p50.length) res.latencyMs = { p50: stat(r.p50), p95: stat(r.p95), p99: stat(r.p99), max: stat(r.max), samples: LATENCY };
    if (r.tenant.length) res.tenantDrainPerSecond = stat(r.tenant);
    if (r.bP50.length) res.noisy = { bP50: stat(r.bP50), bP99: stat(r.bP99), bSamples: r.bSamples, aPerSecond: stat(r.aRate) };
    if (s.workloads.noisy) res.fairness = s.fairness;
    for (const p of res.tenantRowCheck) notes.push(`${s.label}: row check failed in a (c) run: ${p}`);
  }
  const a = runs.get('apportion')!;
  const ratios: PeersResult['ratios'] = [];
  for (const s of systems.filter((x) => x.key !== 'apportion')) {
    const p = runs.get(s.key)!;
    for (let i = 0; i < ROUNDS; i++) {
      ratios.push({
        round: i + 1,
        peer: s.label,
        drain: p.drain[i] ? a.drain[i]! / p.drain[i]! : null,
        tenant: p.tenant[i] ? a.tenant[i]! / p.tenant[i]! : null,
        p50: p.p50[i] ? a.p50[i]! / p.p50[i]! : null,
        noisyP99: p.bP99[i] ? a.bP99[i]! / p.bP99[i]! : null,
      });
    }
  }
  const result: PeersResult = {
    setup: { jobs: N, latencyJobs: LATENCY, latencyBlock: LATENCY_BLOCK, tenantJobs: TENANT_JOBS, killJobs: KILL_JOBS, noisyJobs: NOISY_JOBS, noisyCall: NOISY_CALL, noisyBEveryMs: NOISY_B_EVERY_MS, tenants: 50, rounds: ROUNDS, pgbenchClients: PGBENCH_CLIENTS, durable: true, seconds: Math.round((Date.now() - t0) / 1000) },
    systems: [...results.values()],
    rawBoundPerSecond: raw.length ? stat(raw) : null,
    ratios,
    notes,
  };
  console.log(`wrote ${writeResults('peers', m, shrink, result)}`);
  await publish(result, m, date);
  for (const s of systems) await s.close();
  await admin.end();
});
