// The whole path with a real orchestrator process: the parity vector's three
// executions through recompute_window jobs, readiness,
// automatic allocation on ingest, and bad jobs that must not hurt anything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import postgres from 'postgres';
import { connect, withTenant, type Sql } from '../orchestrator/db.js';
import { testDatabase, type TestDatabase } from './helpers/db.js';
import { startOrchestrator, waitFor, type RunningOrchestrator } from './helpers/orchestrator.js';

const TENANT = '00000000-0000-0000-0000-000000000001';
const EVENT_A = '00000000-0000-0000-0000-0000000000a1';
const EVENT_B = '00000000-0000-0000-0000-0000000000b2';
const WINDOW = { window_start: '2025-06-01T00:00:00Z', window_end: '2025-06-02T00:00:00Z', model_version: '1.0.0' };

let db: TestDatabase;
let admin: postgres.Sql;
let ingest: Sql;
let workerUrl: string;
let orchestrator: RunningOrchestrator;

async function waitForJob(jobId: bigint | string, tenant: string | null = TENANT) {
  return waitFor(`job ${jobId} to finish`, async () => {
    const [s] = await withTenant(ingest, tenant, (tx) => tx`select * from apportion.job_status(${String(jobId)}::bigint)`);
    return s && (s.state === 'succeeded' || s.state === 'failed') ? s : undefined;
  });
}

async function enqueueAs(tenant: string, task: string, payload: unknown, correlationId: string | null = null): Promise<bigint> {
  const [row] = await withTenant(ingest, tenant, (tx) =>
    tx`select apportion.enqueue('attribution', ${task}, ${tx.json(payload as never)}, ${correlationId}::uuid) as id`);
  return row!.id as bigint;
}

// Read as the superuser (which bypasses RLS), so filter by tenant explicitly.
async function allocations(tenant: string) {
  return admin`select event_id, model_version, channel, allocated_revenue_cents::text as cents, allocation_ratio::text as ratio,
                      touchpoint_count, correlation_id, computed_at
                 from apportion.attribution_allocations where tenant_id = ${tenant}
                order by event_id, model_version, channel`;
}

beforeAll(async () => {
  db = await testDatabase('queue_e2e');
  admin = postgres(db.url, { max: 2, onnotice: () => {} });
  await admin`select apportion.create_tenant('parity', ${TENANT})`;
  await admin`select apportion.register_model('1.0.0', 'fixed_split', '{"channels": ["direct", "email", "google_search"]}')`;
  ingest = connect(await db.urlAs('apportion_ingest'), { max: 4 });
  await withTenant(ingest, TENANT, (tx) => tx`
    insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency) values
      (${EVENT_A}, 'customer-a', '2025-06-01T10:00:00Z', 10000, 'USD'),
      (${EVENT_B}, 'customer-b', '2025-06-01T15:00:00Z', 15000, 'USD')`);
  workerUrl = await db.urlAs('apportion_worker');
  orchestrator = await startOrchestrator(workerUrl);
});

afterAll(async () => {
  await orchestrator?.stop();
  await ingest?.end();
  await admin?.end();
  await db?.drop();
});

describe('the parity vector end to end', () => {
  let firstRun: Awaited<ReturnType<typeof allocations>>;

  it('execution A: recompute_window through the queue writes the 6 parity allocations', async () => {
    const id = await enqueueAs(TENANT, 'recompute_window', WINDOW);
    const status = await waitForJob(id);
    expect(status.state).toBe('succeeded');
    expect(status.result).toEqual({ event_count: 2, allocation_count: 6 });
    firstRun = await allocations(TENANT);
    expect(firstRun).toHaveLength(6);
    const byEvent = (e: string) => firstRun.filter((r) => r.event_id === e).map((r) => r.cents).sort();
    expect(byEvent(EVENT_B)).toEqual(['5000', '5000', '5000']);
    expect(byEvent(EVENT_A)).toEqual(['3333', '3333', '3334']);
    expect(new Set(firstRun.map((r) => r.ratio))).toEqual(new Set(['0.333333']));
    // The extra cent goes to the smallest md5(event_id || ':' || channel).
    const [spare] = await admin`select c from unnest(array['direct','email','google_search']) c
                                 order by md5(${EVENT_A} || ':' || c) limit 1`;
    expect(firstRun.find((r) => r.event_id === EVENT_A && r.cents === '3334')!.channel).toBe(spare!.c);
  });

  it('execution B: running it again gives identical rows', async () => {
    const id = await enqueueAs(TENANT, 'recompute_window', WINDOW);
    expect((await waitForJob(id)).state).toBe('succeeded');
    expect(await allocations(TENANT)).toEqual(firstRun);
  });

  it('execution C: an invalid window fails once, recorded with its correlation id; nothing else changes', async () => {
    const correlationId = '7d9f4d8e-0c4f-4f57-9a39-6a3b0b6c2c11';
    const before = await allocations(TENANT);
    const id = await enqueueAs(TENANT, 'recompute_window', { ...WINDOW, window_start: '2025-06-02T00:00:00Z', window_end: '2025-06-01T00:00:00Z' }, correlationId);
    const status = await waitForJob(id);
    expect(status.state).toBe('failed');
    expect(status.attempts).toBe(1);
    expect(status.correlation_id).toBe(correlationId);
    const failures = await admin`select * from apportion.worker_failed_jobs where correlation_id = ${correlationId}`;
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ job_id: String(id), tenant_id: TENANT, queue: 'attribution', task: 'recompute_window', error_code: '22023', attempts: 1, status: 'open' });
    expect(failures[0]!.error_message).toMatch(/window_end .* must be after window_start/);
    expect(await allocations(TENANT)).toEqual(before);
    // The orchestrator logged it with the correlation id and is still up.
    await waitFor('failure log line', async () => orchestrator.logs.find((l) => l.correlation_id === correlationId && l.error_code === '22023'));
    expect(orchestrator.proc.exitCode).toBeNull();
    expect((await orchestrator.health('/livez')).status).toBe(200);
  });
});

describe('readiness', () => {
  it('/readyz reports ready once a ping made the round trip, with queue depths in /status', async () => {
    const ready = await waitFor('readiness', async () => {
      const h = await orchestrator.health('/readyz');
      return h.status === 200 ? h.body : undefined;
    });
    expect(ready).toMatchObject({ ready: true, listener_connected: true });
    expect(ready.last_ping_ms).toBeGreaterThan(0);
    const status = await orchestrator.health('/status');
    expect(status.body.queues.map((q: { queue: string }) => q.queue).sort()).toEqual(['attribution', 'housekeeping', 'llm', 'maintenance']);
    // With nothing to claim, the claimer waits for a notification or the poll.
    await waitFor('an idle claimer', async () => (await orchestrator.health('/status')).body.claimer_state === 'waiting_for_wake');
  });

  it('`apportion ping --json` makes a round trip through the real queue and a real worker', async () => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', path.resolve('orchestrator/cli.ts'), 'ping', '--json'], {
      env: { ...process.env, DATABASE_URL: workerUrl }, encoding: 'utf8',
    });
    expect(res.status, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.status).toBe('ok');
    expect(out.result).toMatchObject({ status: 'ok', database_user: 'apportion_worker_test_login' });
    expect(out.round_trip_ms).toBeLessThan(1000);
  });
});

describe('ingest', () => {
  it('allocates new events for every active model with nobody enqueuing by hand', async () => {
    const tenant = '00000000-0000-0000-0000-0000000000c3';
    await admin`select apportion.create_tenant('auto', ${tenant})`;
    await admin`select apportion.register_model('lt-1', 'last_touch', '{}')`;
    await admin`select apportion.register_model('lin-1', 'linear', '{}')`;
    await withTenant(ingest, tenant, async (tx) => {
      await tx`select apportion.activate_model('lt-1'), apportion.activate_model('lin-1')`;
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values
                 ('c1', 'email', '2025-07-01T09:00Z'), ('c1', 'display', '2025-07-01T10:00Z'), ('c2', 'referral', '2025-07-02T08:00Z')`;
      await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
               select 'c' || (g % 3 + 1), '2025-07-03T00:00Z'::timestamptz + g * interval '1 minute', 1000 + g, 'EUR'
                 from generate_series(1, 30) g`;
    });
    const rows = await waitFor('allocations for 30 events x 2 models', async () => {
      const r = await allocations(tenant);
      const done = new Set(r.map((x) => `${x.event_id}/${x.model_version}`));
      return done.size === 60 ? r : undefined;
    });
    // Conservation per event and model.
    const [bad] = await admin`select count(*)::int as n from (
                  select a.event_id, a.model_version, sum(a.allocated_revenue_cents) s, max(e.revenue_cents) r
                    from apportion.attribution_allocations a
                    join apportion.attribution_events e on e.tenant_id = a.tenant_id and e.id = a.event_id
                   where a.tenant_id = ${tenant}
                   group by 1, 2) x where s <> r`;
    expect(bad!.n).toBe(0);
    expect(rows.filter((r) => r.model_version === 'lt-1' && r.channel === 'unattributed')).toHaveLength(10); // c3 has no touches
  });

  it('holds a markov version\'s events until attribution.train_model trains it, then allocates them', async () => {
    const tenant = '00000000-0000-0000-0000-0000000000c4';
    await admin`select apportion.create_tenant('markov live', ${tenant})`;
    await admin`select apportion.register_model('mk-live', 'markov', '{"training_start": "2025-07-01", "training_end": "2025-08-01"}')`;
    await withTenant(ingest, tenant, async (tx) => {
      await tx`select apportion.activate_model('mk-live')`;
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at) values
                 ('c1', 'email', '2025-07-01T09:00Z'), ('c1', 'display', '2025-07-01T10:00Z'),
                 ('c2', 'display', '2025-07-02T08:00Z'), ('c3', 'referral', '2025-07-02T08:00Z')`;
      await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
               select 'c' || (g % 2 + 1), '2025-07-03T00:00Z'::timestamptz + g * interval '1 minute', 1000 + g, 'EUR'
                 from generate_series(1, 20) g`;
    });
    // The live path's job ran and left the events waiting.
    await waitFor('the live job to wait for training', async () => {
      const [j] = await admin`select result from apportion.jobs where tenant_id = ${tenant} and task = 'allocate_pending' and state = 'succeeded'`;
      return j?.result?.waiting_for === 'training' ? true : undefined;
    });
    expect(await allocations(tenant)).toHaveLength(0);
    expect((await admin`select count(*)::int as n from apportion.pending_allocations where tenant_id = ${tenant}`)[0]!.n).toBe(20);

    const trained = await waitForJob(await enqueueAs(tenant, 'train_model', { model_version: 'mk-live' }), tenant);
    expect(trained.state).toBe('succeeded');
    expect(trained.result).toMatchObject({ path_count: 21, conversion_count: 20, p_conversion: '20/21' });
    const rows = await waitFor('allocations of the 20 events', async () => {
      const r = await allocations(tenant);
      return new Set(r.map((x) => x.event_id)).size === 20 ? r : undefined;
    });
    // 21 paths: each event one (c1's on email > display, c2's on display), and c3's referral, which never converts.
    // RE(display) = 1 and RE(email) = 1/2: c1's events split 1 : 2 (email : display).
    const [expected] = await withTenant(ingest, tenant, (tx) => tx`
      select string_agg(channel || ' ' || removal_effect_num || '/' || removal_effect_den, ', ' order by channel) as re from apportion.markov_summary('mk-live')`);
    expect(expected!.re).toBe('display 1/1, email 1/2, referral 0/1');
    const c1 = rows.filter((r) => r.ratio === '0.333333' || r.ratio === '0.666667');
    expect(c1.length).toBe(20);
    expect((await admin`select count(*)::int as n from apportion.pending_allocations where tenant_id = ${tenant}`)[0]!.n).toBe(0);
  });
});

describe('bad jobs', () => {
  it('are refused or failed with clear errors while good jobs go on and the orchestrator stays up', async () => {
    // Unknown task: refused at enqueue.
    await expect(enqueueAs(TENANT, 'no_such_task', {})).rejects.toMatchObject({ code: '22023', message: expect.stringMatching(/unknown task attribution.no_such_task/) });
    // A 1 MB payload: refused at enqueue.
    await expect(enqueueAs(TENANT, 'allocate_event', { event_id: EVENT_A, model_version: '1.0.0', blob: 'x'.repeat(1 << 20) }))
      .rejects.toMatchObject({ code: '22023', message: expect.stringMatching(/payload too large/) });
    // Malformed payloads and a missing event: accepted, then failed at once.
    const bad = {
      malformed: await enqueueAs(TENANT, 'allocate_event', { event_id: 'not-a-uuid', model_version: '1.0.0' }),
      missingField: await enqueueAs(TENANT, 'allocate_event', { model_version: '1.0.0' }),
      extraField: await enqueueAs(TENANT, 'recompute_window', { ...WINDOW, surprise: true }),
      noSuchEvent: await enqueueAs(TENANT, 'allocate_event', { event_id: '00000000-0000-0000-0000-00000000dead', model_version: '1.0.0' }),
      unknownModel: await enqueueAs(TENANT, 'allocate_event', { event_id: EVENT_A, model_version: '9.9.9' }),
    };
    const good = await enqueueAs(TENANT, 'allocate_event', { event_id: EVENT_B, model_version: '1.0.0' });
    const expected: Record<keyof typeof bad, RegExp> = {
      malformed: /payload.event_id must be a uuid/,
      missingField: /payload.event_id is required/,
      extraField: /unexpected payload field\(s\) surprise/,
      noSuchEvent: /event 00000000-0000-0000-0000-00000000dead does not exist/,
      unknownModel: /model version '9.9.9' is not registered/,
    };
    for (const [name, id] of Object.entries(bad) as [keyof typeof bad, bigint][]) {
      const s = await waitForJob(id);
      expect(s.state, name).toBe('failed');
      expect(s.attempts, name).toBe(1);
      expect(s.error_code, name).toBe('22023');
      expect(s.error_message, name).toMatch(expected[name]);
      const [f] = await admin`select count(*)::int as n from apportion.worker_failed_jobs where job_id = ${String(id)}`;
      expect(f!.n, name).toBe(1);
    }
    expect((await waitForJob(good)).state).toBe('succeeded');
    expect(orchestrator.proc.exitCode).toBeNull();
    expect((await orchestrator.health('/livez')).status).toBe(200);
  });

  it('keeps llm jobs waiting, visible in status, never dropped', async () => {
    const [row] = await withTenant(ingest, TENANT, (tx) => tx`select apportion.enqueue('llm', 'complete', '{"prompt": "hi"}') as id`);
    await new Promise((r) => setTimeout(r, 1000));
    const [s] = await withTenant(ingest, TENANT, (tx) => tx`select * from apportion.job_status(${row!.id})`);
    expect(s!.state).toBe('queued');
    const status = await orchestrator.health('/status');
    expect(status.body.queues.find((q: { queue: string }) => q.queue === 'llm').queued).toBeGreaterThanOrEqual(1);
  });
});
