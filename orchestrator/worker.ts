// The orchestrator: the LISTEN connection (listener.ts) wakes one claimer
// feeding tenant-batch runners (dispatcher.ts), and housekeeping.ts keeps
// readiness pings and prunes going. The worker starts them, reports their
// health and stops them in order. All queue logic is SQL.
import type { Config } from './config.js';
import { replaceablePool, type ReplaceablePool, type Sql } from './db.js';
import { Dashboard } from './dashboard.js';
import { Dispatcher, type ClaimerState, type JobCounts } from './dispatcher.js';
import { Housekeeping } from './housekeeping.js';
import { Listener } from './listener.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { pendingAllocationsOverview, queueOverview, type QueueDepth } from './queue.js';
import { checkRuntimeRole } from './role.js';
import { checkSchemaVersion } from './schema.js';

export interface WorkerHealth {
  live: boolean;
  ready: boolean;
  worker_id: string;
  listener_connected: boolean;
  claimer_state: ClaimerState;
  /** Claims made since start, found jobs or not. */
  claims: number;
  last_claim_at: string | null;
  last_ping_ok_at: string | null;
  last_ping_ms: number | null;
  jobs: JobCounts;
  in_flight: number;
}

export class Worker {
  private sql!: Sql;
  private pool?: ReplaceablePool;
  /** The inline claims' own connection (see start). */
  private inlinePool?: ReplaceablePool;
  private stopping = false;
  private readonly listener: Listener;
  private readonly dispatcher: Dispatcher;
  private readonly housekeeping: Housekeeping;
  /** Prometheus metrics (GET /metrics). */
  readonly metrics: Metrics;
  /** The operator dashboard (/dashboard), when enabled. */
  readonly dashboard: Dashboard | null;

  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
  ) {
    this.listener = new Listener(cfg, log);
    this.dispatcher = new Dispatcher(cfg, log);
    this.housekeeping = new Housekeeping(cfg, log);
    this.listener.onWake = () => this.dispatcher.wake();
    this.metrics = new Metrics({
      queueDepths: () => this.queueDepths(),
      pendingAllocations: () => pendingAllocationsOverview(this.sql),
      listenerConnected: () => this.listener.connected,
      ready: () => this.health().ready,
      lastPingMs: () => this.housekeeping.lastPingMs,
    });
    this.dashboard = cfg.dashboard ? new Dashboard(cfg, () => this.sql, () => this.dispatcher.jobCounts) : null;
    this.dispatcher.onClaimed = (jobs, seconds) => this.metrics.jobsClaimed(jobs, seconds);
    this.dispatcher.onJobOutcome = (o, job) => {
      this.metrics.jobFinished(job, o);
      this.housekeeping.jobFinished(o);
    };
    // A statement abandoned at its deadline was lost by the driver: its
    // connection may lose the next ones too.
    this.dispatcher.onAbandoned = (what) => this.replaceConnections(`a ${what} statement was lost by the driver`);
  }

  async start(): Promise<void> {
    const connection = { prepare: this.cfg.prepare, applicationName: `apportion-worker ${this.cfg.workerId}` };
    this.pool = replaceablePool(this.cfg.databaseUrl, { max: this.cfg.concurrency + 2, ...connection });
    // The idle path (a claim made while every runner is idle, which runs what
    // it finds) goes through a connection of its own, so its plans and
    // caches stay warm in one backend (until the driver recycles the
    // connection, or a transaction pooler sits in between). Through the pool
    // it would take each connection in turn (postgres.js hands out the
    // longest idle one), and every one of them would plan the handlers'
    // statements afresh: the first idle events through each took 20-65 ms
    // instead of about 3 (measured). At most one inline claim runs at a
    // time, so it never waits for this connection; when it fails, inline
    // claims use the work pool for a while (dispatcher.ts).
    this.inlinePool = replaceablePool(this.cfg.databaseUrl, { ...connection, max: 1, applicationName: `${connection.applicationName} inline` });
    this.sql = this.pool.sql;
    try {
      await this.untilConnected(() => checkSchemaVersion(this.sql));
      if (this.stopping) return; // stopped while waiting for the database
      const warning = await checkRuntimeRole(this.sql, this.cfg.allowPrivilegedRole);
      if (warning) this.log.warn({ worker_id: this.cfg.workerId }, warning);
    } catch (err) {
      await this.endConnections(1);
      throw err;
    }
    // Opened now rather than by the first job (best effort: if the server
    // refuses it, inline claims go through the work pool meanwhile).
    this.inlinePool.sql`select 1`.execute().catch(() => {});
    await this.listener.start(this.sql);
    this.dispatcher.start(this.sql, this.inlinePool.sql);
    this.log.info({ worker_id: this.cfg.workerId, queues: this.cfg.queues, concurrency: this.cfg.concurrency, batch_size: this.cfg.batchSize }, 'worker started');
    this.housekeeping.start(this.sql);
    this.dashboard?.start();
  }

  /**
   * Run `first` until the database answers: a server that is down,
   * restarting or out of connections at start is waited for (backoff from
   * 200 ms doubling to 5 s, each refusal logged), not a reason to exit.
   * Other errors (a wrong password, a wrong schema) are thrown at once.
   */
  private async untilConnected(first: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await first();
      } catch (err) {
        if (!isUnavailable(err) || this.stopping) throw err;
        const waitMs = Math.min(5000, 100 * 2 ** attempt);
        this.log.warn({ worker_id: this.cfg.workerId, err: describeError(err), retry_in_ms: waitMs }, 'cannot reach the database yet; retrying');
        await new Promise((r) => setTimeout(r, waitMs));
        if (this.stopping) return;
      }
    }
  }

  /**
   * Replace the work connections (see db.ts, replaceablePool): called when
   * the driver showed it can no longer be trusted with them.
   */
  replaceConnections(reason: string): void {
    if (!this.pool || this.stopping) return;
    this.pool.replace();
    this.inlinePool?.replace();
    this.log.warn({ worker_id: this.cfg.workerId, reason, replacements: this.pool.replacements }, 'replaced the work connections');
  }

  private async endConnections(timeoutSeconds: number): Promise<void> {
    await Promise.all([this.sql, this.inlinePool?.sql].map((sql) => sql?.end({ timeout: timeoutSeconds }).catch(() => {})));
  }

  /** Readiness: a ping job's round trip through the real queue. */
  ping(timeoutMs?: number): Promise<number> {
    return this.housekeeping.ping(timeoutMs);
  }

  health(): WorkerHealth {
    // Ready: the listener is connected, the latest ping made the round trip
    // through the queue, and the claimer's latest claim did not fail.
    const ready = !this.stopping && this.listener.connected && this.housekeeping.pingOk && this.dispatcher.state !== 'backing_off';
    return {
      live: !this.stopping,
      ready,
      worker_id: this.cfg.workerId,
      listener_connected: this.listener.connected,
      claimer_state: this.dispatcher.state,
      claims: this.dispatcher.claims,
      last_claim_at: this.dispatcher.lastClaimAt?.toISOString() ?? null,
      last_ping_ok_at: this.housekeeping.lastPingOkAt?.toISOString() ?? null,
      last_ping_ms: this.housekeeping.lastPingMs,
      jobs: this.dispatcher.jobCounts,
      in_flight: this.dispatcher.leasedJobCount,
    };
  }

  async queueDepths(): Promise<QueueDepth[]> {
    return queueOverview(this.sql);
  }

  /**
   * Graceful stop: no new claims, in-flight batches get shutdownTimeoutMs to
   * finish, jobs claimed but not started are released, connections close.
   */
  async stop(signal = 'stop'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info({ worker_id: this.cfg.workerId, signal, in_flight: this.dispatcher.leasedJobCount }, 'stopping: finishing in-flight work');
    this.listener.stopHeartbeat();
    this.housekeeping.stop();
    this.dashboard?.stop();
    const drained = await this.dispatcher.stop(this.cfg.shutdownTimeoutMs);
    await this.listener.stop();
    await this.endConnections(drained ? 5 : 0);
    this.log.info({ worker_id: this.cfg.workerId, drained, ...this.dispatcher.jobCounts }, 'stopped');
  }
}

// The server cannot take us now but may soon: refused or cut connections,
// too many connections (53300), starting up or shutting down (57P0x),
// connection failures (class 08).
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT']);

function isUnavailable(err: unknown): boolean {
  const code = String((err as { code?: string })?.code ?? '');
  return UNAVAILABLE_CODES.has(code) || code === '53300' || code.startsWith('57P0') || code.startsWith('08');
}

function describeError(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return `${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}`;
}
