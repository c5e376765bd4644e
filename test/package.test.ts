// The package as a service installs it: `npm pack`, installed into an empty
// directory, migrates a database that already holds an application's table,
// runs a worker (metrics scraped with the counts of a known workload, SIGTERM
// exits 0), passes `apportion test` there with a worker running, and runs
// the example pgTAP test of an integration with the shipped helpers. Nothing from this checkout is
// used but the tarball.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgEnv } from '../orchestrator/selftest.js';
import { databaseName, recreateDatabase } from '../scripts/lib/cluster.js';
import { testDatabase, type TestDatabase } from './helpers/db.js';
import { startOrchestrator, waitFor } from './helpers/orchestrator.js';

const TENANT = '0a0a0000-0000-4000-8000-00000000000a';

let dir: string;
let bin: string;
let db: TestDatabase;
let appDb: string;
let workerUrl: string;

function run(cmd: string, args: string[], env: Record<string, string> = {}, cwd = dir): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 240_000 });
}

/** As run(), without blocking this process (a worker child runs meanwhile). */
function runAsync(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: dir, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

function ok(res: SpawnSyncReturns<string>, what: string): string {
  if (res.status !== 0) throw new Error(`${what} exited ${res.status ?? res.signal}:\n${res.stdout}\n${res.stderr}`);
  return res.stdout;
}

/** A sample's value from Prometheus text, e.g. sample(text, 'apportion_jobs_failed_total', { task: 'x' }). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apportion-package-'));
  const packed = ok(run('npm', ['pack', '--silent', '--pack-destination', dir], {}, process.cwd()), 'npm pack').trim().split('\n').pop()!;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'a-service', version: '1.0.0', private: true, type: 'module' }));
  ok(run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(dir, packed)]), 'npm install of the tarball');
  bin = path.join(dir, 'node_modules', '.bin', 'apportion');

  // A fresh database (not the suite's migrated template) with the service's own table in it.
  db = await testDatabase('package');
  appDb = await recreateDatabase(db.url, `pkg_${process.pid}`);
  const app = postgres(appDb, { max: 1, onnotice: () => {} });
  await app`create table public.orders (id bigserial primary key, total_cents bigint not null)`;
  await app`insert into public.orders (total_cents) values (1200), (3400)`;
  await app.end();
}, 300_000);

afterAll(async () => {
  if (appDb) {
    const admin = postgres(db.url, { max: 1, onnotice: () => {} });
    await admin`drop database if exists ${admin(databaseName(appDb))} with (force)`;
    await admin.end();
  }
  await db?.drop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the packed package, installed into an empty directory', () => {
  it('ships compiled JavaScript and runtime dependencies only', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules/apportion/package.json'), 'utf8'));
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['chart.js', 'node-pg-migrate', 'pg', 'pino', 'postgres', 'prom-client']);
    expect(fs.existsSync(path.join(dir, 'node_modules/apportion/dashboard/app.js'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'node_modules/apportion/docs/sql-api.md'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'node_modules/tsx'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'node_modules/apportion/dist/orchestrator/cli.js'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'node_modules/apportion/orchestrator'))).toBe(false);
    const usage = run(bin, ['--help']);
    expect(usage.status).toBe(0);
    expect(usage.stdout).toContain('exit codes');
  });

  it('migrates a database that holds an application table, and leaves that table alone', async () => {
    ok(run(bin, ['migrate'], { DATABASE_URL: appDb }), 'apportion migrate');
    const again = JSON.parse(ok(run(bin, ['migrate', '--json'], { DATABASE_URL: appDb }), 'apportion migrate --json'));
    expect(again).toEqual({ migrations: [], sources: [] });
    const sql = postgres(appDb, { max: 1, onnotice: () => {} });
    const [orders] = await sql<{ n: number }[]>`select count(*)::int as n from public.orders`;
    expect(orders!.n).toBe(2);
    workerUrl = await (await testDatabaseAt(appDb)).urlAs('apportion_worker');
    await sql.end();
  });

  it('runs a worker whose /metrics gives the counts of a known workload, and stops with exit 0 on SIGTERM', async () => {
    const sql = postgres(appDb, { max: 1, onnotice: () => {} });
    await sql`select apportion.create_tenant('package shop', ${TENANT}::uuid)`;
    await sql`select apportion.register_model('pkg-linear', 'linear')`;
    await sql.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${TENANT}, true)`;
      await tx`select apportion.activate_model('pkg-linear')`;
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at)
               select 'c' || i, 'email', timestamptz '2026-11-01' + i * interval '1 hour' from generate_series(1, 5) i`;
      await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
               select 'c' || i, timestamptz '2026-11-02' + i * interval '1 hour', 1000 * i, 'USD' from generate_series(1, 5) i`;
      // One job that fails for good on its first attempt: no such event.
      await tx`insert into apportion.jobs (tenant_id, queue, task, payload, max_attempts)
               values (${TENANT}, 'attribution', 'allocate_event',
                       '{"event_id": "00000000-0000-4000-8000-000000000000", "model_version": "pkg-linear"}', 1)`;
    });
    await sql`select apportion.enqueue_many('housekeeping', 'noop', (select jsonb_agg('{}'::jsonb) from generate_series(1, 20)))`;

    // First only housekeeping: the noops run, the attribution work waits.
    const first = await startOrchestrator(workerUrl, { APPORTION_QUEUES: 'housekeeping' }, { command: [bin], cwd: dir });
    await waitFor('20 noops succeeded', async () =>
      sample((await first.get('/metrics')).text, 'apportion_jobs_succeeded_total', { queue: 'housekeeping', task: 'noop' }) === 20 || undefined);
    const waiting = await first.get('/metrics');
    expect(waiting.status).toBe(200);
    expect(waiting.contentType).toContain('text/plain');
    expect(sample(waiting.text, 'apportion_jobs_claimed_total', { queue: 'housekeeping', task: 'noop' })).toBe(20);
    expect(sample(waiting.text, 'apportion_pending_allocations', { model_version: 'pkg-linear' })).toBe(5);
    expect(sample(waiting.text, 'apportion_queue_jobs', { queue: 'attribution', state: 'queued' })).toBeGreaterThanOrEqual(2);
    expect(sample(waiting.text, 'apportion_queue_oldest_runnable_seconds', { queue: 'attribution' })).toBeGreaterThan(0);
    expect(sample(waiting.text, 'apportion_listener_connected')).toBe(1);
    expect(sample(waiting.text, 'apportion_database_scrape_ok')).toBe(1);
    expect(sample(waiting.text, 'apportion_job_run_duration_seconds_count', { queue: 'housekeeping', task: 'noop' })).toBe(20);
    expect(sample(waiting.text, 'apportion_claim_duration_seconds_count')).toBeGreaterThan(0);
    await waitFor('a readiness ping', async () => sample((await first.get('/metrics')).text, 'apportion_last_ping_round_trip_seconds'));
    expect(await first.stop('SIGTERM')).toBe(0);

    // Then every queue: the pending events are allocated, the bad job fails for good.
    const second = await startOrchestrator(workerUrl, {}, { command: [bin], cwd: dir });
    const text = await waitFor('the attribution work done', async () => {
      const t = (await second.get('/metrics')).text;
      return sample(t, 'apportion_jobs_failed_total', { queue: 'attribution', task: 'allocate_event' }) === 1
        && sample(t, 'apportion_pending_allocations', { model_version: 'pkg-linear' }) === undefined ? t : undefined;
    });
    expect(sample(text, 'apportion_jobs_succeeded_total', { queue: 'attribution', task: 'allocate_pending' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'apportion_jobs_retried_total', { queue: 'attribution', task: 'allocate_event' })).toBeUndefined();
    expect(sample(text, 'apportion_open_failures', { queue: 'attribution' })).toBe(1);
    expect(await second.stop('SIGTERM')).toBe(0);

    const [alloc] = await sql<{ n: number; cents: string }[]>`
      select count(*)::int as n, sum(allocated_revenue_cents)::text as cents
        from apportion.attribution_allocations where tenant_id = ${TENANT}::uuid`;
    expect(alloc).toEqual({ n: 5, cents: '15000' });

    // The CLI for people and for machines.
    const status = ok(run(bin, ['status'], { DATABASE_URL: workerUrl }), 'apportion status');
    expect(status).toMatch(/^queue\s+queued\s+queued_runnable/m);
    expect(status).toMatch(/pending allocations:\n\(none\)/);
    const json = JSON.parse(ok(run(bin, ['status', '--json'], { DATABASE_URL: workerUrl }), 'apportion status --json'));
    const attribution = json.queues.find((q: { queue: string }) => q.queue === 'attribution');
    expect(attribution.open_failures).toBe(1);
    expect(json.recent_failures[0].error_code).toBe('22023');
    expect(json.pending_allocations).toEqual([]);
    const noTenant = run(bin, ['enqueue', 'attribution', 'allocate_pending', '{"model_version": "pkg-linear"}'], { DATABASE_URL: workerUrl });
    expect(noTenant.status).toBe(2);
    expect(noTenant.stderr).toContain('pass --tenant <uuid>');
    await sql.end();
  });

  it('passes `apportion test` against that database while a worker runs, and leaves nothing behind', async () => {
    const worker = await startOrchestrator(workerUrl, {}, { command: [bin], cwd: dir });
    await waitFor('the worker ready', async () => (await worker.health('/readyz')).status === 200 || undefined);
    const res = await runAsync(bin, ['test'], { DATABASE_URL: appDb });
    expect(res.status, `${res.stdout}\n${res.stderr}`).toBe(0);
    expect(res.stdout).toContain('All tests successful');
    await waitFor('the worker ready again', async () => (await worker.health('/readyz')).status === 200 || undefined);
    expect(await worker.stop('SIGTERM')).toBe(0);
    const sql = postgres(appDb, { max: 1, onnotice: () => {} });
    const [left] = await sql<{ schemas: number; pgtap: number }[]>`
      select (select count(*)::int from pg_namespace where nspname = 'apportion_test') as schemas,
             (select count(*)::int from pg_extension where extname = 'pgtap') as pgtap`;
    expect(left).toEqual({ schemas: 0, pgtap: 0 });
    await sql.end();
  });

  it('runs the example pgTAP test of an integration with the shipped helpers', () => {
    fs.mkdirSync(path.join(dir, 'test'), { recursive: true });
    fs.copyFileSync(path.join(dir, 'node_modules/apportion/examples/pgtap/attribution_integration_test.sql'),
      path.join(dir, 'test/attribution_integration_test.sql'));
    const sql = spawnSync('psql', [appDb, '-qAtc', 'create extension if not exists pgtap'], { encoding: 'utf8' });
    expect(sql.status, sql.stderr).toBe(0);
    const res = run('pg_prove', ['--verbose', 'test/attribution_integration_test.sql'], pgEnv(appDb));
    expect(res.status, `${res.stdout}\n${res.stderr}`).toBe(0);
    expect(res.stdout).toContain('ok 5 - another tenant sees none of it');
  });
});

/** urlAs() for a database other than the one testDatabase() made. */
async function testDatabaseAt(url: string): Promise<Pick<TestDatabase, 'urlAs'>> {
  const { loginRoleUrl } = await import('../scripts/lib/roles.js');
  return { urlAs: (group) => loginRoleUrl(url, group, `${group}_pkg_login`, `test-only-${group}`) };
}
