// The orchestrator under failure: a killed listener, a SIGKILL mid-batch,
// two orchestrators at once, a graceful SIGTERM, a flood of forged
// notifications, and the inline claims' connection refused. Real
// processes, a real database, nothing mocked.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { loginRoleUrl } from '../scripts/lib/roles.js';
import { testDatabase, type TestDatabase } from './helpers/db.js';
import { startOrchestrator, waitFor, type RunningOrchestrator } from './helpers/orchestrator.js';
import { allocationWorkload, type Workload } from './helpers/workload.js';

// Four tenants, jobs interleaved in chunks: a claimed batch spans several
// tenants, each run in its own transaction one after another, so a SIGKILL
// lands between a batch's claim and the run of some of its tenants.
const TENANTS = [1, 2, 3, 4].map((i) => `00000000-0000-0000-0000-00000000e00${i}`);
const CHUNK = 50;
const MODEL = 'linear-resilience';

let db: TestDatabase;
let admin: postgres.Sql;
let workerUrl: string;
let work: Workload;
const running: RunningOrchestrator[] = [];

async function orchestrator(env: Record<string, string> = {}) {
  const o = await startOrchestrator(workerUrl, env);
  running.push(o);
  return o;
}

beforeAll(async () => {
  db = await testDatabase('queue_resilience');
  admin = postgres(db.url, { max: 3, onnotice: () => {} });
  work = allocationWorkload(admin, TENANTS, MODEL, CHUNK);
  await work.setup();
  workerUrl = await db.urlAs('apportion_worker');
});

// Every test starts with no orchestrator running.
beforeEach(async () => {
  for (const o of running.splice(0)) await o.stop('SIGKILL');
});

afterAll(async () => {
  for (const o of running) await o.stop('SIGKILL');
  await admin?.end();
  await db?.drop();
});

describe('a killed listener', () => {
  it('re-listens, catches up, and loses no job enqueued meanwhile', async () => {
    // Poll only once a minute: completion within seconds proves the re-listen catch-up.
    const o = await orchestrator({ APPORTION_POLL_INTERVAL_MS: '60000', APPORTION_PING_INTERVAL_MS: '60000' });
    await waitFor('ready', async () => (await o.health('/readyz')).status === 200);
    const killed = await admin`select pg_terminate_backend(pid) as ok from pg_stat_activity
                                  where datname = current_database() and application_name like 'apportion-listener%'`;
    expect(killed.length).toBe(1);
    const jobs = await work.enqueueAllocations(300);
    await work.allSucceeded(jobs, 20_000);
    expect(o.logs.filter((l) => l.msg === 'listener connected; catching up').length).toBeGreaterThanOrEqual(2);
    await work.expectExactlyOneRunOfAllocations(jobs);
    expect(await o.stop()).toBe(0);
  });
});

describe('SIGKILL mid-batch', () => {
  it('loses nothing: after a restart every job completes once, attempts recorded', async () => {
    const jobs = await work.enqueueAllocations(5000);
    const first = await orchestrator({ APPORTION_BATCH_SIZE: '200' });
    await waitFor('work in flight', async () => {
      const s = await work.states(jobs);
      return (s.succeeded ?? 0) > 0 && (s.running ?? 0) > 0 ? true : undefined;
    }, 30_000, 2);
    first.proc.kill('SIGKILL');
    await first.exited;
    const afterKill = await work.states(jobs);
    expect(afterKill.running ?? 0).toBeGreaterThan(0); // claimed by the dead worker, leased
    expect(afterKill.succeeded ?? 0).toBeLessThan(jobs.length);

    await orchestrator();
    await work.allSucceeded(jobs);
    await work.expectExactlyOneRunOfAllocations(jobs);
    const [log] = await admin`
      select count(*) filter (where attempts > 1)::int as retried,
             count(*) filter (where jsonb_array_length(attempt_log) <> attempts)::int as unrecorded,
             count(*) filter (where attempts > 1 and not attempt_log @> '[{"outcome": "lease_expired"}]')::int as unexplained
        from apportion.jobs where id = any(${jobs}::bigint[])`;
    expect(log!.retried).toBeGreaterThan(0);
    expect(log!.unrecorded).toBe(0);
    expect(log!.unexplained).toBe(0);
  });
});

describe('two orchestrators at once', () => {
  it('share the work and never run a job twice', async () => {
    const jobs = await work.enqueueAllocations(4000);
    await Promise.all([orchestrator({ APPORTION_WORKER_ID: 'twin-a' }), orchestrator({ APPORTION_WORKER_ID: 'twin-b' })]);
    await work.allSucceeded(jobs);
    const [r] = await admin`
      select count(*) filter (where attempts <> 1 or jsonb_array_length(attempt_log) <> 1)::int as repeated,
             count(distinct attempt_log->0->>'worker')::int as workers
        from apportion.jobs where id = any(${jobs}::bigint[])`;
    expect(r!.repeated).toBe(0);
    expect(r!.workers).toBe(2);
    await work.expectExactlyOneRunOfAllocations(jobs);
  });
});

describe('SIGTERM', () => {
  it('drains in-flight work, leaves nothing running, exits 0', async () => {
    const jobs = await work.enqueueAllocations(5000);
    const o = await orchestrator({ APPORTION_SHUTDOWN_TIMEOUT_MS: '20000' });
    await waitFor('work in flight', async () => ((await work.states(jobs)).succeeded ?? 0) > 0 ? true : undefined, 30_000, 2);
    expect(await o.stop('SIGTERM')).toBe(0);
    const after = await work.states(jobs);
    expect(after.running ?? 0).toBe(0);
    expect(o.logs.find((l) => l.msg === 'stopped')).toMatchObject({ drained: true });
    // Whatever was not started waits for the next worker, attempts untouched.
    await orchestrator();
    await work.allSucceeded(jobs);
    const [r] = await admin`select count(*) filter (where attempts <> 1)::int as n from apportion.jobs where id = any(${jobs}::bigint[])`;
    expect(r!.n).toBe(0);
    await work.expectExactlyOneRunOfAllocations(jobs);
  });
});

describe('a flood of notifications', () => {
  it('from an unrelated login neither multiplies claims nor holds up a real job', async () => {
    const o = await orchestrator({ APPORTION_PING_INTERVAL_MS: '3600000' });
    await waitFor('readiness', async () => (await o.health('/readyz')).status === 200);
    // Any login may NOTIFY any channel: this one is in no apportion role.
    const flooder = postgres(await loginRoleUrl(db.url, null, 'notify_flooder_test_login', 'test-only-flooder'), { max: 4, onnotice: () => {} });
    const worker = postgres(workerUrl, { max: 1, onnotice: () => {} });
    try {
      await flooder`select 1`;
      const claimsBefore = (await o.health('/status')).body.claims as number;
      let sent = 0;
      const floodFor = 2000;
      const t0 = Date.now();
      // Each statement its own transaction, so none is folded into another.
      const flood = (async () => {
        while (Date.now() - t0 < floodFor) {
          await Promise.all(Array.from({ length: 400 }, () => flooder`select pg_notify('apportion_jobs', 'attribution')`.execute()));
          sent += 400;
        }
      })();
      // A real job in the middle of it.
      await new Promise((r) => setTimeout(r, floodFor / 2));
      const enqueuedAt = Date.now();
      const [job] = await worker`select apportion.enqueue('housekeeping', 'ping', '{}') as id`;
      await waitFor('the ping to succeed', async () => {
        const [s] = await admin`select state from apportion.jobs where id = ${job!.id}`;
        return s?.state === 'succeeded';
      }, 5000, 2);
      const pingMs = Date.now() - enqueuedAt;
      await flood;
      const seconds = (Date.now() - t0) / 1000;
      await new Promise((r) => setTimeout(r, 200));
      const claims = ((await o.health('/status')).body.claims as number) - claimsBefore;
      expect(sent / seconds).toBeGreaterThan(2000); // the flood was one
      // Without coalescing each notification is a claim (thousands here);
      // with it a few dozen a second at most, whatever the flood's rate.
      expect(claims).toBeLessThan(40 * seconds + 10);
      expect(pingMs).toBeLessThan(1000);
      expect((await o.health('/readyz')).status).toBe(200);
    } finally {
      await flooder.end();
      await worker.end();
    }
  });
});

describe("the inline claims' own connection refused", () => {
  it('sends them through the work pool meanwhile: a job that arrives while the worker is idle still runs', async () => {
    // A login of its own: the connection limit below is the role's, cluster-wide.
    const login = 'inline_refused_test_login';
    const o = await startOrchestrator(await loginRoleUrl(db.url, 'apportion_worker', login, 'test-only-inline'), { APPORTION_PING_INTERVAL_MS: '3600000' });
    running.push(o);
    await waitFor('readiness', async () => (await o.health('/readyz')).status === 200);
    const connections = async (inline: boolean) => {
      const [r] = await admin<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
         where usename = ${login} and application_name like ${inline ? 'apportion-worker % inline' : 'apportion-worker %'}`;
      return r!.n;
    };
    await waitFor('the inline connection', async () => (await connections(true)) === 1 || undefined);
    // Cut it, and let the login open no new connection (as a server at
    // max_connections would): the work pool keeps the ones it has.
    await admin.unsafe(`alter role ${login} connection limit ${(await connections(false)) - 1}`);
    try {
      await admin`select pg_terminate_backend(pid) from pg_stat_activity
                   where usename = ${login} and application_name like 'apportion-worker % inline'`;
      await waitFor('the inline connection gone', async () => (await connections(true)) === 0 || undefined);
      const [job] = await admin`select apportion.enqueue('housekeeping', 'ping', '{}') as id`;
      await waitFor('the job to succeed', async () => {
        const [s] = await admin`select state from apportion.jobs where id = ${job!.id}`;
        return s?.state === 'succeeded' || undefined;
      }, 10_000);
      // (The first inline claim after the cut finds its connection closed.)
      expect(o.logs.some((l) => l.msg === 'claim failed' && /CONNECTION_CLOSED|too many connections/.test(String(l.err)))).toBe(true);
      expect((await o.health('/readyz')).status).toBe(200);
    } finally {
      await admin.unsafe(`alter role ${login} connection limit -1`);
    }
  });
});

describe('a handler that hangs', () => {
  it('is canceled at the job timeout, retried, then failed; the rest of its batch runs and the runner is free', async () => {
    // A test-only task whose handler sleeps for an hour when told to.
    await admin.unsafe(`
      create schema if not exists hang_test;
      create or replace function hang_test.task_maybe_hang(p_payload jsonb) returns jsonb
      language plpgsql set search_path = pg_catalog, pg_temp as $$
      begin
        if (p_payload->>'hang')::boolean then perform pg_sleep(3600); end if;
        return jsonb_build_object('ran', p_payload->>'n');
      end $$;
      grant usage on schema hang_test to apportion_worker;
      grant execute on function hang_test.task_maybe_hang(jsonb) to apportion_worker;
      insert into apportion.queue_tasks (queue, task, handler, tenant_scope, max_attempts, description)
      values ('maintenance', 'maybe_hang', 'hang_test.task_maybe_hang', 'tenant', 2, 'test only: sleeps an hour when payload.hang')
      on conflict (queue, task) do nothing;`);
    const o = await orchestrator({ APPORTION_JOB_TIMEOUT_MS: '1000', APPORTION_CONCURRENCY: '1' });
    const tenant = TENANTS[0]!;
    const enqueue = (payloads: object[]) => admin.begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${tenant}, true)`;
      const rows = await tx`select apportion.enqueue_many('maintenance', 'maybe_hang', ${tx.json(payloads as never)}) as id`;
      return rows.map((r) => String(r.id));
    });
    // One statement: the hanging job and three after it, claimed as one batch.
    const [hung, ...after] = await enqueue([{ hang: true, n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);
    await work.allSucceeded(after, 15_000);
    const [failed] = await waitFor('the hung job to fail for good', async () => {
      const rows = await admin`select state, attempts, error_code from apportion.jobs where id = ${hung!}`;
      return rows[0]?.state === 'failed' ? rows : undefined;
    }, 20_000, 50);
    expect(failed).toMatchObject({ state: 'failed', attempts: 2, error_code: '57014' });
    const [recorded] = await admin`select error_code, attempts from apportion.worker_failed_jobs where job_id = ${hung!}`;
    expect(recorded).toMatchObject({ error_code: '57014', attempts: 2 });
    // The only runner is free: a new job runs at once.
    const fresh = await enqueue([{ n: 4 }]);
    await work.allSucceeded(fresh, 5000);
    expect(o.logs.filter((l) => l.msg === 'job timeout: canceling it').length).toBeGreaterThanOrEqual(2);
    const [running] = await admin`select count(*)::int as n from pg_stat_activity where query like '%pg_sleep(3600)%' and state = 'active' and pid <> pg_backend_pid()`;
    expect(running!.n).toBe(0);
  });
});
