// The worker's own schedule of system jobs: housekeeping.ping proves
// readiness by a round trip through the real queue; housekeeping.prune goes
// in under one job key, so a prune still queued is reused, not doubled.
import type { Config } from './config.js';
import type { Sql } from './db.js';
import type { Logger } from './log.js';
import { enqueue, jobStatus, type JobOutcome } from './queue.js';

export class Housekeeping {
  private sql!: Sql;
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  /** Pings waiting for their job to finish, by job id. */
  private pingWaiters = new Map<bigint, (ok: boolean) => void>();
  private lastOkAt: Date | null = null;
  private lastMs: number | null = null;
  /** Whether the latest ping made the round trip (false until one has). */
  private lastPingOk = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    private readonly cfg: Pick<Config, 'pingIntervalMs' | 'pruneIntervalMs' | 'retention'>,
    private readonly log: Logger,
  ) {}

  /** Whether the latest ping made the round trip: part of readiness. */
  get pingOk(): boolean {
    return this.lastPingOk;
  }

  /** When the last ping made the round trip, and how long it took. */
  get lastPingOkAt(): Date | null {
    return this.lastOkAt;
  }

  get lastPingMs(): number | null {
    return this.lastMs;
  }

  /** Ping and schedule a prune now, then every interval. */
  start(sql: Sql): void {
    this.sql = sql;
    this.timers.push(setInterval(() => void this.scheduledPing(), this.cfg.pingIntervalMs));
    this.timers.push(setInterval(() => void this.schedulePrune(), this.cfg.pruneIntervalMs));
    for (const t of this.timers) t.unref();
    void this.schedulePrune();
    void this.scheduledPing();
  }

  /**
   * A ping of the schedule. One that fails (the database gone, the queue
   * stuck) makes the worker not ready, and is tried again every second
   * until one succeeds, so readiness comes back soon after the database.
   */
  private async scheduledPing(): Promise<void> {
    clearTimeout(this.retryTimer);
    try {
      await this.ping();
    } catch (err) {
      if (this.stopped) return;
      if (this.lastPingOk || this.lastOkAt === null) this.log.warn({ err: String(err) }, 'readiness ping failed; retrying every second');
      this.lastPingOk = false;
      this.retryTimer = setTimeout(() => void this.scheduledPing(), Math.min(1000, this.cfg.pingIntervalMs));
      this.retryTimer.unref();
    }
  }

  /** No more pings or prunes; a ping still waiting fails at once. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.retryTimer);
    for (const resolve of this.pingWaiters.values()) resolve(false);
  }

  /** Every outcome this worker reports: a ping it ran finishes its wait. */
  jobFinished(o: JobOutcome): void {
    this.pingWaiters.get(o.job_id)?.(o.outcome === 'succeeded');
  }

  /** Readiness: a ping job's round trip through the real queue. */
  async ping(timeoutMs = 5000): Promise<number> {
    const started = performance.now();
    const id = await enqueue(this.sql, 'housekeeping', 'ping', {});
    const ok = await new Promise<boolean>((resolve) => {
      const finish = (v: boolean) => {
        clearInterval(poll);
        clearTimeout(timer);
        this.pingWaiters.delete(id);
        resolve(v);
      };
      // We usually run it ourselves (see jobFinished); another worker may run
      // it instead, so look at its status too.
      const poll = setInterval(() => {
        void jobStatus(this.sql, id).then((s) => {
          if (s?.state === 'succeeded') finish(true);
          else if (s?.state === 'failed') finish(false);
        }).catch(() => {});
      }, 100);
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.pingWaiters.set(id, finish);
    });
    this.pingWaiters.delete(id);
    const ms = performance.now() - started;
    if (!ok) throw new Error(`ping job ${id} did not succeed within ${timeoutMs} ms`);
    this.lastOkAt = new Date();
    this.lastMs = ms;
    this.lastPingOk = true;
    return ms;
  }

  private async schedulePrune(): Promise<void> {
    if (this.stopped) return;
    await enqueue(this.sql, 'housekeeping', 'prune', { retention: this.cfg.retention }, { jobKey: 'prune' }).catch((err) =>
      this.log.warn({ err: String(err) }, 'could not schedule housekeeping.prune'),
    );
  }
}
