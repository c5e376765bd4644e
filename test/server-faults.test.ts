// The orchestrator when the server itself misbehaves: PostgreSQL crashed and
// started again mid-drain, work connections terminated over and over, and a
// server that refuses connections (max_connections reached) at start and
// mid-run. It must get through each by itself, without a restart, and leave
// every job completed once. This file runs its own throwaway cluster (the
// installed server binaries), so that crashing it disturbs no other test.
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../orchestrator/migrate.js';
import { recreateDatabase, startCluster, type Server } from '../scripts/lib/cluster.js';
import { loginRoleUrl } from '../scripts/lib/roles.js';
import { startOrchestrator, waitFor, type RunningOrchestrator } from './helpers/orchestrator.js';
import { allocationWorkload, type Workload } from './helpers/workload.js';

const TENANTS = [1, 2, 3, 4].map((i) => `00000000-0000-4000-8000-00000000fa0${i}`);
const MAX_CONNECTIONS = 30;
// Each test waits for several recoveries in turn (each bounded on its own).
const FAULT_TEST_TIMEOUT = 300_000;

let server: Server;
let admin: postgres.Sql;
let workerUrl: string;
let dbUrl: string;
let work: Workload;
const running: RunningOrchestrator[] = [];

async function orchestrator(env: Record<string, string> = {}) {
  // A 5 s job timeout: a run whose query the driver lost is abandoned after
  // it and the lease (2 s here), not after the default minute.
  const o = await startOrchestrator(workerUrl, { APPORTION_BATCH_SIZE: '100', APPORTION_JOB_TIMEOUT_MS: '5000', ...env });
  running.push(o);
  return o;
}

const readyz = async (o: RunningOrchestrator) => (await o.health('/readyz').catch(() => ({ status: 0 }))).status;

beforeAll(async () => {
  // Durable (fsync and synchronous_commit on): a crash must not lose a
  // commit the orchestrator was told about.
  server = await startCluster({ settings: { max_connections: MAX_CONNECTIONS, superuser_reserved_connections: 3 } });
  if (!server.crash || !server.startAgain) throw new Error('the server fault tests need the installed PostgreSQL server binaries (postgresql-15)');
  const url = (dbUrl = await recreateDatabase(server.adminUrl, 'apportion_faults'));
  await migrate(url);
  // Reconnects across the crash: admin is used before and after it.
  admin = postgres(url, { max: 2, onnotice: () => {} });
  work = allocationWorkload(admin, TENANTS, 'linear-faults');
  await work.setup();
  workerUrl = await loginRoleUrl(url, 'apportion_worker', 'faults_worker_login', 'test-only-faults-worker');
});

beforeEach(async () => {
  for (const o of running.splice(0)) await o.stop('SIGKILL');
});

afterAll(async () => {
  for (const o of running) await o.stop('SIGKILL');
  await admin?.end({ timeout: 1 });
  await server?.stop();
});

describe('PostgreSQL crashes mid-drain (pg_ctl -m immediate) and comes back', () => {
  it('the orchestrator reconnects, /readyz goes false then true, every job completes once', async () => {
    const jobs = await work.enqueueAllocations(3000);
    const o = await orchestrator({ APPORTION_PING_INTERVAL_MS: '1000' });
    await waitFor('work under way', async () => ((await work.states(jobs)).succeeded ?? 0) >= 300, 30_000, 5);
    expect(await readyz(o)).toBe(200);
    server.crash!();
    await waitFor('/readyz to say not ready', async () => (await readyz(o)) === 503, 15_000, 50);
    await new Promise((r) => setTimeout(r, 1000)); // down for a while
    server.startAgain!();
    await waitFor('/readyz to say ready again', async () => (await readyz(o)) === 200, 30_000, 50);
    await work.allSucceeded(jobs, 60_000).catch(async (e: Error) => {
      const status = await o.health('/status').catch(() => null);
      throw new Error(`${e.message} (${JSON.stringify(await work.states(jobs))}; status ${JSON.stringify(status?.body)}; last log lines ${JSON.stringify(o.logs.slice(-6))})`);
    });
    await work.expectExactlyOneRunOfAllocations(jobs);
    expect(o.proc.exitCode).toBeNull(); // the same process, never restarted
    const [r] = await admin`select count(*) filter (where state <> 'succeeded')::int as not_done,
                                   count(*) filter (where jsonb_array_length(attempt_log) <> attempts)::int as unrecorded
                              from apportion.jobs where id = any(${jobs}::bigint[])`;
    expect(r).toEqual({ not_done: 0, unrecorded: 0 });
  }, FAULT_TEST_TIMEOUT);
});

describe('work connections terminated mid-transaction, again and again', () => {
  it('loses nothing and finishes every job once', async () => {
    const jobs = await work.enqueueAllocations(3000);
    const o = await orchestrator();
    await waitFor('work under way', async () => ((await work.states(jobs)).succeeded ?? 0) > 0, 30_000, 5);
    let terminated = 0;
    for (let round = 0; round < 15; round++) {
      // Each round cuts whatever work connections the worker has open by
      // then (it reconnects as it needs them), mid-claim or mid-run.
      const rows = await waitFor('a work connection to cut', async () => {
        const r = await admin`select pg_terminate_backend(pid) as ok from pg_stat_activity
                                where application_name like 'apportion-worker%' and pid <> pg_backend_pid()`;
        return r.length > 0 ? r : undefined;
      }, 10_000, 5).catch((e: Error) => {
        // Say why: a dead process, or a worker that stopped connecting.
        throw new Error(`${e.message} (round ${round}; exit code ${o.proc.exitCode}; last log lines ${JSON.stringify(o.logs.slice(-6))})`);
      });
      terminated += rows.filter((x) => x.ok).length;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(terminated).toBeGreaterThanOrEqual(15);
    expect((await work.states(jobs)).succeeded ?? 0).toBeLessThan(jobs.length); // cut while there was work
    await work.allSucceeded(jobs, 60_000).catch(async (e: Error) => {
      const status = await o.health('/status').catch(() => null);
      const conns = await admin`select application_name, state, wait_event, left(query, 50) as q from pg_stat_activity where application_name like 'apportion%'`;
      throw new Error(`${e.message} (${JSON.stringify(await work.states(jobs))}; status ${JSON.stringify(status?.body)}; connections ${JSON.stringify(conns)}; last log lines ${JSON.stringify(o.logs.slice(-8))})`);
    });
    await work.expectExactlyOneRunOfAllocations(jobs);
    expect(o.proc.exitCode).toBeNull();
    await waitFor('readiness', async () => (await readyz(o)) === 200, 45_000, 50).catch(async (e: Error) => {
      throw new Error(`${e.message} (readyz ${JSON.stringify((await o.health('/readyz').catch(() => null))?.body)}; last log lines ${JSON.stringify(o.logs.slice(-6))})`);
    });
  }, FAULT_TEST_TIMEOUT);
});

describe('the server refuses connections (max_connections reached)', () => {
  it('at start and mid-run: the orchestrator backs off, says so, and recovers when connections free up', async () => {
    // A plain login takes every connection a non-superuser may have.
    const hogUrl = await loginRoleUrl(dbUrl, null, 'faults_hog_login', 'test-only-faults-hog');
    const hogs: postgres.Sql[] = [];
    const hogAll = async () => {
      for (;;) {
        const hog = postgres(hogUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 });
        try {
          await hog`select 1`;
          hogs.push(hog);
        } catch (err) {
          await hog.end({ timeout: 0 });
          expect((err as { code?: string }).code).toBe('53300');
          return;
        }
      }
    };
    const freeAll = async () => {
      for (const h of hogs.splice(0)) await h.end({ timeout: 0 });
    };
    try {
      await hogAll();
      // At start: no connection to be had.
      const jobs = await work.enqueueAllocations(1000);
      const o = await orchestrator({ APPORTION_PING_INTERVAL_MS: '1000' }); // a failing ping is seen within seconds
      await waitFor('the refused start to be logged', async () => o.logs.some((l) => String(l.err ?? l.msg).includes('53300') || String(l.msg).includes('too many')), 15_000, 50);
      expect(o.proc.exitCode).toBeNull();
      expect(await readyz(o)).toBe(503);
      await freeAll();
      await waitFor('readiness', async () => (await readyz(o)) === 200, 30_000, 50);
      await work.allSucceeded(jobs, 60_000);

      // Mid-run: connections taken again and the worker's own cut.
      const more = await work.enqueueAllocations(2000);
      await waitFor('work under way', async () => ((await work.states(more)).succeeded ?? 0) > 0, 30_000, 5);
      await hogAll();
      // The worker's connections cut and their freed slots taken, again until
      // it holds none (on a loaded machine it may reconnect before the hogs
      // take a slot).
      for (let round = 0; round < 20; round++) {
        await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'apportion-%' and pid <> pg_backend_pid()`;
        await hogAll();
        const [left] = await admin<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity where application_name like 'apportion-%'`;
        if (left!.n === 0) break;
      }
      await waitFor('/readyz to say not ready', async () => (await readyz(o)) === 503, 30_000, 50);
      await new Promise((r) => setTimeout(r, 1000));
      await freeAll();
      await work.allSucceeded(more, 60_000);
      await work.expectExactlyOneRunOfAllocations([...jobs, ...more]);
      await waitFor('readiness', async () => (await readyz(o)) === 200, 30_000, 50);
      expect(o.proc.exitCode).toBeNull();
    } finally {
      await freeAll();
    }
  }, FAULT_TEST_TIMEOUT);
});
