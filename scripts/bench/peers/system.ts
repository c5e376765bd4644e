// What the peer benchmark needs from each queue it measures. One adapter per
// system (apportion.ts, graphile.ts, pgboss.ts); the same workloads drive all,
// and the same clock times them.

/**
 * Milliseconds since the epoch on the host's wall clock, with sub-millisecond
 * resolution. PostgreSQL's clock_timestamp() reads the same clock (one
 * machine), so Node and database timestamps can be compared directly.
 */
export const wallMs = () => performance.timeOrigin + performance.now();

/** The tenants of workload (c); tenant of job i is TENANTS[i % 50]. */
export const TENANT_COUNT = 50;
export const TENANTS = Array.from({ length: TENANT_COUNT }, (_, i) => `0d0d0000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`);

export interface TenantJob {
  tenant: string;
  ref: string;
  run: string;
}

/** Workload (d): tenant A's backlog, tenant B's single jobs. */
export const NOISY_A = TENANTS[0]!;
export const NOISY_B = TENANTS[1]!;

/** Runs of workload (d) start with this; their handler starts are recorded per job. */
export const NOISY_RUN_PREFIX = 'd-';

export function tenantJobs(n: number, run: string): TenantJob[] {
  return Array.from({ length: n }, (_, i) => ({ tenant: TENANTS[i % TENANT_COUNT]!, ref: String(i), run }));
}

/**
 * The insert every (c) handler runs for its job, inside a transaction that
 * has app.tenant_id set locally: RLS on the table checks it.
 */
export const TENANT_ROW_INSERT = 'insert into bench_peers.tenant_rows (tenant_id, run, ref) values ($1::uuid, $2, $3)';

export type Kind = 'noop' | 'tenant_row';

export interface RunningWorker {
  /** Jobs of `kind` this worker has finished (handler returned). */
  handled(kind: Kind): number;
  /** Handler start (wall-clock ms) of latency job `seq`, for jobs of run `run`. */
  starts(run: string): Promise<Map<number, number>>;
  /** Handler start (wall-clock ms) of tenant job `ref`, for jobs of a workload (d) run `run`. */
  tenantStarts(run: string): Promise<Map<string, number>>;
  /** Graceful stop. */
  stop(): Promise<void>;
}

export interface QueueSystem {
  /** Short key (JSON, child processes). */
  key: string;
  /** Label in tables and the chart. */
  label: string;
  /** The settings used, stated in the docs. */
  settings: string;
  /** Which workloads it takes part in. */
  workloads: { noop: boolean; latency: boolean; tenant: boolean; noisy: boolean };
  /** How workload (d) is configured for fairness across tenants, stated in the docs. */
  fairness?: string;
  /** Install (the system installs its own schema) and create queues; idempotent. */
  setup(): Promise<void>;
  /**
   * A worker in this process, listening. `afterKill`: the worker that
   * finishes a killed run; `fair`: configured for fairness across tenants
   * as the system suggests (workload d).
   */
  startWorker(opts?: { afterKill?: boolean; fair?: boolean }): Promise<RunningWorker>;
  /** Enqueue n no-op jobs in one batch call. */
  enqueueNoops(n: number): Promise<void>;
  /** Enqueue one no-op job carrying its sequence number (latency). */
  enqueueNoop(seq: number, run: string): Promise<void>;
  /** Enqueue the tenant jobs, in the given order (`fair`: as workload d enqueues them). */
  enqueueTenantJobs(jobs: TenantJob[], opts?: { fair?: boolean }): Promise<void>;
  /** Jobs of `kind` not yet completed, per the database. */
  remaining(kind: Kind): Promise<number>;
  /** Refs of tenant jobs of run `run` not recorded as completed (queued, running, retrying or failed). */
  pendingRefs(run: string): Promise<Set<string>>;
  /** Delete the jobs of run `run` not completed (a workload cut short), so the next workload starts clean. */
  discard(run: string): Promise<void>;
  /** Make the work a dead process held runnable again, the way the system documents it (or nothing). */
  recoverAfterKill(): Promise<string>;
  close(): Promise<void>;
}
