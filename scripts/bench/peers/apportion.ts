// apportion: the orchestrator's Worker class in-process (the code `npm start`
// runs), with the queue bench's concurrency and batch (../lib/worker.ts),
// connected as a login role in apportion_worker. Workload (c) uses a bench-only task,
// attribution.bench_tenant_row, registered in the bench database only (see
// registerBenchTask): its handler inserts the row under RLS inside run_jobs'
// transaction, which also marks the job succeeded.
import postgres from 'postgres';
import { BATCH, benchWorker, CONCURRENCY } from '../lib/worker.js';
import type { Kind, QueueSystem, RunningWorker, TenantJob } from './system.js';

/**
 * Register attribution.bench_tenant_row in this (throwaway) database only;
 * the registry's trigger regenerates apportion.run_task with it. Nothing in
 * db/ or migrations/ changes.
 */
export async function registerBenchTask(admin: postgres.Sql): Promise<void> {
  await admin.unsafe(`
    create or replace function bench_peers.task_tenant_row(p_payload jsonb)
    returns jsonb
    language plpgsql
    set search_path = pg_catalog, pg_temp
    as $$
    begin
      insert into bench_peers.tenant_rows (tenant_id, run, ref)
      values (apportion.require_tenant(), p_payload->>'run', p_payload->>'ref');
      return null;
    end
    $$;
    revoke all on function bench_peers.task_tenant_row(jsonb) from public;
    grant execute on function bench_peers.task_tenant_row(jsonb) to apportion_worker;
    insert into apportion.queue_tasks (queue, task, handler, tenant_scope, max_attempts, description)
    values ('attribution', 'bench_tenant_row', 'bench_peers.task_tenant_row', 'tenant', 5,
            'Bench only (npm run bench:peers): insert one row into bench_peers.tenant_rows. Payload {"run", "ref"}.')
    on conflict (queue, task) do nothing;`);
  const [r] = await admin`select position('bench_tenant_row' in prosrc) > 0 as ok from pg_proc where oid = 'apportion.run_task(text, text, jsonb)'::regprocedure`;
  if (!r?.ok) throw new Error('apportion.run_task was not regenerated with attribution.bench_tenant_row');
}

export function apportionSystem(adminUrl: string, workerUrl: string): QueueSystem {
  const admin = postgres(adminUrl, { max: 2, onnotice: () => {} });
  // Two connections: a tenant's single job (workload d) is not queued behind
  // another tenant's bulk enqueue transaction on the client side.
  const enq = postgres(workerUrl, { max: 2, onnotice: () => {} });
  let workers = 0;
  return {
    key: 'apportion',
    label: 'apportion',
    settings: `orchestrator Worker in-process: one claimer (${BATCH} jobs per claim transaction, lease 15 s) feeding ${CONCURRENCY} runners, one run transaction per tenant group, each job in a savepoint, completion in the same transaction as the work; a claim made while both runners are idle runs a lone job in its own transaction (APPORTION_INLINE_RUN_MAX 1, the default); LISTEN/NOTIFY + 2 s backstop poll`,
    workloads: { noop: true, latency: true, tenant: true, noisy: true },
    fairness: 'nothing to configure: the orchestrator takes turns across tenants by default',
    async setup() {},
    async startWorker(): Promise<RunningWorker> {
      const w = benchWorker(workerUrl, { APPORTION_WORKER_ID: `bench-peers-${process.pid}-${++workers}` });
      await w.start();
      // The worker's own readiness ping is a succeeded job too: let it pass.
      await new Promise((r) => setTimeout(r, 300));
      const succeededAtStart = w.health().jobs.succeeded;
      return {
        // The worker counts succeeded jobs of every task; each run uses one kind.
        handled: (_kind: Kind) => w.health().jobs.succeeded - succeededAtStart,
        async starts(run) {
          const rows = await admin<{ seq: number; ms: number }[]>`
            select (payload->>'seq')::int as seq,
                   (extract(epoch from (attempt_log->0->>'started_at')::timestamptz) * 1000)::float8 as ms
              from apportion.jobs where task = 'noop' and payload->>'run' = ${run}`;
          return new Map(rows.map((r) => [r.seq, r.ms]));
        },
        async tenantStarts(run) {
          const rows = await admin<{ ref: string; ms: number }[]>`
            select payload->>'ref' as ref,
                   (extract(epoch from (attempt_log->0->>'started_at')::timestamptz) * 1000)::float8 as ms
              from apportion.jobs where task = 'bench_tenant_row' and payload->>'run' = ${run}`;
          return new Map(rows.map((r) => [r.ref, r.ms]));
        },
        stop: () => w.stop('bench'),
      };
    },
    async enqueueNoops(n) {
      // One transaction; enqueue_many takes at most 10,000 payloads a call.
      await enq.begin(async (tx) => {
        for (let done = 0; done < n; done += 10_000) {
          await tx`select count(*) from apportion.enqueue_many('housekeeping', 'noop', ${tx.json(Array.from({ length: Math.min(10_000, n - done) }, () => ({})))})`;
        }
      });
    },
    async enqueueNoop(seq, run) {
      await enq`select apportion.enqueue('housekeeping', 'noop', ${enq.json({ seq, run })})`;
    },
    async enqueueTenantJobs(jobs: TenantJob[]) {
      // Tenancy is enforced at enqueue: each job is enqueued under its own
      // tenant, in the given order, in one transaction; a run of one
      // tenant's jobs goes in enqueue_many calls (at most 10,000 a call).
      await enq.begin(async (tx) => {
        const pending: Promise<unknown>[] = [];
        for (let i = 0; i < jobs.length; ) {
          let end = i + 1;
          while (end < jobs.length && end - i < 10_000 && jobs[end]!.tenant === jobs[i]!.tenant) end++;
          pending.push(tx`select set_config('app.tenant_id', ${jobs[i]!.tenant}, true)`.execute());
          if (end - i === 1) {
            pending.push(tx`select apportion.enqueue('attribution', 'bench_tenant_row', ${tx.json({ run: jobs[i]!.run, ref: jobs[i]!.ref })})`.execute());
          } else {
            const payloads = jobs.slice(i, end).map((j) => ({ run: j.run, ref: j.ref }));
            pending.push(tx`select count(*) from apportion.enqueue_many('attribution', 'bench_tenant_row', ${tx.json(payloads)})`.execute());
          }
          i = end;
        }
        await Promise.all(pending);
      });
    },
    async remaining(kind) {
      const task = kind === 'noop' ? 'noop' : 'bench_tenant_row';
      const [r] = await admin`select count(*)::int as n from apportion.jobs_live where task = ${task}`;
      return r!.n;
    },
    async pendingRefs(run) {
      const rows = await admin<{ ref: string }[]>`
        select payload->>'ref' as ref from apportion.jobs
         where task = 'bench_tenant_row' and state <> 'succeeded' and payload->>'run' = ${run}`;
      return new Set(rows.map((r) => r.ref));
    },
    async discard(run) {
      await admin`delete from apportion.jobs where task = 'bench_tenant_row' and state <> 'succeeded' and payload->>'run' = ${run}`;
    },
    async recoverAfterKill() {
      return 'nothing: leases expire after 15 s and the next claim takes the jobs back';
    },
    async close() {
      await enq.end();
      await admin.end();
    },
  };
}
