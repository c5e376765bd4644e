// The orchestrator's one config loader: environment variables with defaults.
import os from 'node:os';

export interface Config {
  /** Work connections (may go through a transaction pooler). */
  databaseUrl: string;
  /** The LISTEN connection: must be direct, never through a transaction pooler. */
  listenUrl: string;
  queues: string[];
  /** Runners: tenant groups run at once, each one transaction. */
  concurrency: number;
  /** Jobs claimed per round trip; also the size of the local queue. */
  batchSize: number;
  /** A claim made while every runner is idle runs up to this many jobs itself (0: never). */
  inlineRunMax: number;
  /** Backstop poll when no notification arrives. */
  pollIntervalMs: number;
  /** How long a claimed job stays ours if we die before running it. */
  leaseSeconds: number;
  /** How long one run statement (a tenant group, or an inline claim) may take before it is canceled; 0: no limit. */
  jobTimeoutMs: number;
  /** How long SIGTERM waits for in-flight work. */
  shutdownTimeoutMs: number;
  /** Health endpoint; port 0 picks a free port, -1 turns it off. */
  healthHost: string;
  healthPort: number;
  /** How often readiness is re-proved by a ping through the queue. */
  pingIntervalMs: number;
  /** How often housekeeping.prune is scheduled, and what it keeps. */
  pruneIntervalMs: number;
  retention: string;
  /** Server-side prepared statements (turn off behind PgBouncer in transaction mode). */
  prepare: boolean;
  workerId: string;
  logLevel: string;
  /** Start even as a role that bypasses row-level security (development only). */
  allowPrivilegedRole: boolean;
  /** The operator dashboard at /dashboard on the health server (off by default). */
  dashboard: boolean;
  /** Required by every dashboard request when set; required to be set when the health server is not on loopback. Replays always need it. */
  dashboardToken: string | null;
  /** How often the dashboard samples the queue for its charts. */
  dashboardSampleMs: number;
}

/** A missing or invalid setting: nothing to retry until it changes (exit code 78). */
export class ConfigError extends Error {}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

export const QUEUES = ['attribution', 'housekeeping', 'maintenance', 'llm'] as const;
/** Queues with handlers; llm jobs are accepted and kept waiting. */
export const RUNNABLE_QUEUES = ['attribution', 'housekeeping', 'maintenance'];

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max} (got '${raw}')`);
  }
  return n;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) throw new ConfigError('DATABASE_URL is not set (postgres://user:password@host:port/database)');
  const queues = (env.APPORTION_QUEUES ?? RUNNABLE_QUEUES.join(','))
    .split(',')
    .map((q) => q.trim())
    .filter(Boolean);
  for (const q of queues) {
    if (!(QUEUES as readonly string[]).includes(q)) throw new ConfigError(`APPORTION_QUEUES: unknown queue '${q}' (queues: ${QUEUES.join(', ')})`);
    if (!RUNNABLE_QUEUES.includes(q)) throw new ConfigError(`APPORTION_QUEUES: queue '${q}' has no handlers yet; its jobs wait until one exists`);
  }
  if (queues.length === 0) throw new ConfigError('APPORTION_QUEUES names no queue');
  const healthHost = env.APPORTION_HEALTH_HOST || '127.0.0.1';
  const dashboard = env.APPORTION_DASHBOARD === 'true';
  const dashboardToken = env.APPORTION_DASHBOARD_TOKEN || null;
  if (dashboardToken !== null && !/^[\x21-\x7e]{16,}$/.test(dashboardToken)) {
    throw new ConfigError('APPORTION_DASHBOARD_TOKEN must be at least 16 printable characters without spaces');
  }
  if (dashboard && !LOOPBACK_HOSTS.has(healthHost) && dashboardToken === null) {
    throw new ConfigError(`APPORTION_DASHBOARD=true with APPORTION_HEALTH_HOST=${healthHost} (not loopback) needs APPORTION_DASHBOARD_TOKEN`);
  }
  return {
    databaseUrl,
    listenUrl: env.APPORTION_LISTEN_URL || databaseUrl,
    queues,
    concurrency: int(env, 'APPORTION_CONCURRENCY', 2, 1, 64),
    batchSize: int(env, 'APPORTION_BATCH_SIZE', 100, 1, 10000),
    inlineRunMax: int(env, 'APPORTION_INLINE_RUN_MAX', 1, 0, 10000),
    pollIntervalMs: int(env, 'APPORTION_POLL_INTERVAL_MS', 2000, 10, 3_600_000),
    leaseSeconds: int(env, 'APPORTION_LEASE_SECONDS', 15, 1, 86_400),
    jobTimeoutMs: int(env, 'APPORTION_JOB_TIMEOUT_MS', 60_000, 0, 86_400_000),
    shutdownTimeoutMs: int(env, 'APPORTION_SHUTDOWN_TIMEOUT_MS', 10_000, 0, 3_600_000),
    healthHost,
    healthPort: int(env, 'APPORTION_HEALTH_PORT', 8787, -1, 65535),
    pingIntervalMs: int(env, 'APPORTION_PING_INTERVAL_MS', 30_000, 100, 86_400_000),
    pruneIntervalMs: int(env, 'APPORTION_PRUNE_INTERVAL_MS', 3_600_000, 1000, 86_400_000),
    retention: env.APPORTION_RETENTION || '7 days',
    prepare: (env.APPORTION_PREPARE ?? 'true') !== 'false',
    workerId: env.APPORTION_WORKER_ID || `${os.hostname()}:${process.pid}`,
    logLevel: env.LOG_LEVEL || 'info',
    allowPrivilegedRole: env.APPORTION_ALLOW_PRIVILEGED_ROLE === 'true',
    dashboard,
    dashboardToken,
    dashboardSampleMs: int(env, 'APPORTION_DASHBOARD_SAMPLE_MS', 5000, 100, 3_600_000),
  };
}
