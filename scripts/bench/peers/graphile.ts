// graphile-worker, in two modes:
//   default: library defaults (no local queue, no completion batching) with
//            the concurrency of its performance page, concurrentJobs 24 and
//            maxPoolSize 25 (its default of 1 job at a time would only
//            measure round trips);
//   batched: its documented high-throughput preset (performance page):
//            concurrentJobs 24, maxPoolSize 25, localQueue.size 500,
//            completeJobBatchDelay 0, failJobBatchDelay 0.
// Each mode installs its own schema (graphile_worker, graphile_worker_batched),
// so the two never share a job table: jobs one mode left behind (a kill
// test's, a run cut off at its time limit) are never taken by the other.
// The (c) handler opens its own transaction on the worker's pool
// (helpers.withPgClient), sets the tenant locally, inserts the row and
// commits; graphile-worker then completes the job in a separate statement.
import { Logger, makeWorkerUtils, run, type Task, type WorkerUtils } from 'graphile-worker';
import postgres from 'postgres';
import { NOISY_RUN_PREFIX, TENANT_ROW_INSERT, wallMs, type Kind, type QueueSystem, type RunningWorker, type TenantJob } from './system.js';

export type GraphileMode = 'default' | 'batched';

const quiet = new Logger(() => (level, message) => {
  if (level === 'error') console.error(`graphile-worker: ${message}`);
});

const schemaOf = (mode: GraphileMode) => (mode === 'default' ? 'graphile_worker' : 'graphile_worker_batched');

function workerOptions(url: string, mode: GraphileMode) {
  return {
    connectionString: url,
    schema: schemaOf(mode),
    concurrentJobs: 24,
    maxPoolSize: 25,
    ...(mode === 'batched' ? { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } : {}),
  };
}

export function graphileSystem(adminUrl: string, peerUrl: string, mode: GraphileMode): QueueSystem {
  const admin = postgres(adminUrl, { max: 2, onnotice: () => {} });
  let utils: WorkerUtils | undefined;
  const schema = schemaOf(mode);
  const jobs = admin(schema + '._private_jobs');
  const tasks = admin(schema + '._private_tasks');
  const getUtils = async () => (utils ??= await makeWorkerUtils({ connectionString: peerUrl, schema, logger: quiet }));
  return {
    key: `graphile-${mode}`,
    label: `graphile-worker ${mode}`,
    settings: mode === 'default'
      ? 'defaults (pollInterval 2 s, LISTEN/NOTIFY, no local queue, no completion batching) except concurrentJobs 24 and maxPoolSize 25 as on its performance page (its default concurrentJobs is 1); schema graphile_worker'
      : 'documented batched preset: concurrentJobs 24, maxPoolSize 25, localQueue { size: 500 }, completeJobBatchDelay 0, failJobBatchDelay 0; its own schema, graphile_worker_batched',
    workloads: { noop: true, latency: true, tenant: true, noisy: true },
    fairness: 'none available: jobs are taken by priority, run_at and id whatever their tenant; a named queue per tenant (job queue_name) would run each tenant\'s jobs one at a time, A\'s backlog included, so it is not used',
    async setup() {
      await (await getUtils()).migrate();
    },
    async startWorker(): Promise<RunningWorker> {
      const handled = { noop: 0, tenant_row: 0 };
      const starts = new Map<string, Map<number, number>>();
      const tenantStarts = new Map<string, Map<string, number>>();
      const noop: Task = async (payload) => {
        const t = wallMs();
        const p = payload as { seq?: number; run?: string };
        if (p.seq !== undefined && p.run) {
          let m = starts.get(p.run);
          if (!m) starts.set(p.run, (m = new Map()));
          m.set(p.seq, t);
        }
        handled.noop++;
      };
      const tenantRow: Task = async (payload, helpers) => {
        const t = wallMs();
        const p = payload as { tenant: string; run: string; ref: string };
        if (p.run.startsWith(NOISY_RUN_PREFIX)) {
          let m = tenantStarts.get(p.run);
          if (!m) tenantStarts.set(p.run, (m = new Map()));
          m.set(p.ref, t);
        }
        await helpers.withPgClient(async (client) => {
          await client.query('begin');
          try {
            await client.query(`select set_config('app.tenant_id', $1, true)`, [p.tenant]);
            await client.query(TENANT_ROW_INSERT, [p.tenant, p.run, p.ref]);
            await client.query('commit');
          } catch (err) {
            await client.query('rollback').catch(() => {});
            throw err;
          }
        });
        handled.tenant_row++;
      };
      const runner = await run({
        preset: { worker: workerOptions(peerUrl, mode) },
        taskList: { noop, tenant_row: tenantRow },
        noHandleSignals: true,
        logger: quiet,
      });
      return {
        handled: (kind: Kind) => handled[kind],
        starts: async (run) => starts.get(run) ?? new Map(),
        tenantStarts: async (run) => tenantStarts.get(run) ?? new Map(),
        stop: () => runner.stop(),
      };
    },
    async enqueueNoops(n) {
      await (await getUtils()).addJobs(Array.from({ length: n }, () => ({ identifier: 'noop', payload: {} })));
    },
    async enqueueNoop(seq, run) {
      await (await getUtils()).addJob('noop', { seq, run });
    },
    async enqueueTenantJobs(jobs: TenantJob[]) {
      await (await getUtils()).addJobs(jobs.map((j) => ({ identifier: 'tenant_row', payload: j })));
    },
    async remaining(kind) {
      const [r] = await admin`select count(*)::int as n from ${jobs} j
                               join ${tasks} t on t.id = j.task_id where t.identifier = ${kind}`;
      return r!.n;
    },
    async pendingRefs(run) {
      // A completed job is deleted; whatever is left is not completed.
      const rows = await admin<{ ref: string }[]>`
        select j.payload->>'ref' as ref from ${jobs} j
          join ${tasks} t on t.id = j.task_id
         where t.identifier = 'tenant_row' and j.payload->>'run' = ${run}`;
      return new Set(rows.map((r) => r.ref));
    },
    async discard(run) {
      await admin`delete from ${jobs} where payload->>'run' = ${run}`;
    },
    async recoverAfterKill() {
      // Jobs locked by a dead worker stay locked for 4 hours; the documented
      // remedy when you know a worker is dead is forceUnlockWorkers.
      const rows = await admin<{ locked_by: string; n: number }[]>`
        select locked_by, count(*)::int as n from ${jobs} where locked_by is not null group by locked_by`;
      const locked = rows.reduce((a, r) => a + r.n, 0);
      if (rows.length > 0) await (await getUtils()).forceUnlockWorkers(rows.map((r) => r.locked_by));
      return `${locked} jobs were locked by the killed process's ${rows.length} worker id(s) (they would wait 4 h); released with workerUtils.forceUnlockWorkers()`;
    },
    async close() {
      await utils?.release();
      await admin.end();
    },
  };
}
