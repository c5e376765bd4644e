// What the peer benchmark needs from each queue it measures. One adapter per
// system (apportion.ts, graphile.ts, pgboss.ts); the same workloads drive all.
import type { TenantJob } from './common.js';

export type Kind = 'noop' | 'tenant_row';

export interface RunningWorker {
  /** Jobs of `kind` this worker has finished (handler returned). */
  handled(kind: Kind): number;
  /** Handler start (wall-clock ms) of latency job `seq`, for jobs of run `run`. */
  starts(run: string): Promise<Map<number, number>>;
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
  workloads: { noop: boolean; latency: boolean; tenant: boolean };
  /** Install (the system installs its own schema) and create queues; idempotent. */
  setup(): Promise<void>;
  /** A worker in this process, listening. `afterKill`: the worker that finishes a killed run. */
  startWorker(opts?: { afterKill?: boolean }): Promise<RunningWorker>;
  /** Enqueue n no-op jobs in one batch call. */
  enqueueNoops(n: number): Promise<void>;
  /** Enqueue one no-op job carrying its sequence number (latency). */
  enqueueNoop(seq: number, run: string): Promise<void>;
  /** Enqueue the tenant jobs, in the given order. */
  enqueueTenantJobs(jobs: TenantJob[]): Promise<void>;
  /** Jobs of `kind` not yet completed, per the database. */
  remaining(kind: Kind): Promise<number>;
  /** Refs of tenant jobs of run `run` not recorded as completed (queued, running, retrying or failed). */
  pendingRefs(run: string): Promise<Set<string>>;
  /** Make the work a dead process held runnable again, the way the system documents it (or nothing). */
  recoverAfterKill(): Promise<string>;
  close(): Promise<void>;
}
