// The queue's SQL, one call per state change; the logic lives in
// db/40_queue.sql and the orchestrator only drives it.
import type postgres from 'postgres';
import { pgArray, withTenant, type Sql } from './db.js';

/** A row of claim_jobs: a job now running under this worker's lease. */
export interface ClaimedJob {
  job_id: bigint;
  tenant_id: string | null;
  queue: string;
  task: string;
  correlation_id: string | null;
  attempt: number;
}

/** A row of run_tenant_jobs (apportion.job_outcome): how one attempt ended. */
export interface JobOutcome {
  job_id: bigint;
  outcome: 'succeeded' | 'retry' | 'failed';
  attempt: number;
  /** Handler time in milliseconds. */
  ms: string;
  error_code: string | null;
  error_message: string | null;
}

export function claimJobs(sql: Sql, workerId: string, queues: string[], limit: number, leaseSeconds: number): postgres.PendingQuery<ClaimedJob[]> {
  return sql<ClaimedJob[]>`
    select * from apportion.claim_jobs(${workerId}, ${pgArray(queues)}::text[], ${limit}, ${leaseSeconds})`;
}

/**
 * A row of claim_and_run_jobs: a job claimed under the lease and still to
 * run (null outcome), or one the claim ran in its own transaction.
 */
export type ClaimedOrRun =
  | (ClaimedJob & { outcome: null; ms: null; error_code: null; error_message: null })
  | (ClaimedJob & JobOutcome);

/**
 * Claim, and when the claim found at most runMax jobs, run the first
 * tenant's of them in the same transaction (the idle path: one round trip
 * from arrival to handler). Jobs with a null outcome are for the runners.
 */
export function claimAndRunJobs(sql: Sql, workerId: string, queues: string[], limit: number, leaseSeconds: number, runMax: number): postgres.PendingQuery<ClaimedOrRun[]> {
  return sql<ClaimedOrRun[]>`
    select * from apportion.claim_and_run_jobs(${workerId}, ${pgArray(queues)}::text[], ${limit}, ${leaseSeconds}, ${runMax})`;
}

/**
 * Run one tenant's claimed jobs as one transaction under that tenant: a
 * single statement, so one round trip. run_tenant_jobs sets app.tenant_id
 * transaction-locally before running them (null tenant: system jobs). The
 * query can be canceled (the job timeout): the running job is retried, the
 * rest given back unstarted.
 */
export function runJobs(sql: Sql, workerId: string, tenantId: string | null, jobIds: bigint[]): postgres.PendingQuery<JobOutcome[]> {
  return sql<JobOutcome[]>`
    select * from apportion.run_tenant_jobs(${workerId}, ${tenantId}::uuid, ${pgArray(jobIds)}::bigint[])`;
}

export async function releaseJobs(sql: Sql, workerId: string, jobIds: bigint[]): Promise<number> {
  if (jobIds.length === 0) return 0;
  const [row] = await sql<{ n: number }[]>`select apportion.release_jobs(${workerId}, ${pgArray(jobIds)}::bigint[]) as n`;
  return row?.n ?? 0;
}

export interface EnqueueOptions {
  tenantId?: string | null;
  correlationId?: string | null;
  runAt?: Date;
  priority?: number;
  jobKey?: string;
}

export async function enqueue(sql: Sql, queue: string, task: string, payload: unknown = {}, opts: EnqueueOptions = {}): Promise<bigint> {
  const [row] = await withTenant(sql, opts.tenantId ?? null, (tx) => tx<{ id: bigint }[]>`
    select apportion.enqueue(${queue}, ${task}, ${tx.json(payload as never)}, ${opts.correlationId ?? null}::uuid,
                             ${opts.runAt ?? null}::timestamptz, ${opts.priority ?? 0}, ${opts.jobKey ?? null}) as id`);
  return row!.id;
}

export interface JobStatus {
  state: 'queued' | 'running' | 'succeeded' | 'failed';
  attempts: number;
  result: unknown;
  error_code: string | null;
  error_message: string | null;
  correlation_id: string | null;
}

export async function jobStatus(sql: Sql, jobId: bigint, tenantId: string | null = null): Promise<JobStatus | undefined> {
  const rows = await withTenant(sql, tenantId, (tx) => tx<JobStatus[]>`select * from apportion.job_status(${String(jobId)}::bigint)`);
  return rows[0];
}

export interface QueueDepth {
  queue: string;
  queued: bigint;
  queued_runnable: bigint;
  running: bigint;
  oldest_runnable_seconds: string | null;
  open_failures: bigint;
}

export async function queueOverview(sql: Sql): Promise<QueueDepth[]> {
  return sql<QueueDepth[]>`select * from apportion.queue_overview()`;
}

export interface OpenFailure {
  job_id: bigint;
  tenant_id: string | null;
  queue: string;
  task: string;
  error_code: string;
  error_message: string;
  attempts: number;
  correlation_id: string | null;
  failed_at: Date;
}

export async function openFailures(sql: Sql, correlationId: string | null = null, limit = 50): Promise<OpenFailure[]> {
  return sql<OpenFailure[]>`select * from apportion.open_failures(${correlationId}::uuid, ${limit})`;
}

/** Replay one failed job under its own tenant; returns the new job's id. */
export async function replayFailedJob(sql: Sql, failure: Pick<OpenFailure, 'job_id' | 'tenant_id'>): Promise<bigint> {
  const [row] = await withTenant(sql, failure.tenant_id, (tx) =>
    tx<{ id: bigint }[]>`select apportion.replay_failed_job(${String(failure.job_id)}::bigint) as id`);
  return row!.id;
}

export interface PendingAllocations {
  model_version: string;
  pending: bigint;
  oldest_pending_seconds: string | null;
}

/** The live path's backlog per model version, across tenants (aggregates only). */
export async function pendingAllocationsOverview(sql: Sql): Promise<PendingAllocations[]> {
  return sql<PendingAllocations[]>`select * from apportion.pending_allocations_overview()`;
}
