// The orchestrator: listen, claim, run one transaction per tenant batch,
// log, report health, shut down cleanly. All queue logic is SQL.
import type { Config } from './config.js';
import { connect, type Sql } from './db.js';
import { Housekeeping } from './housekeeping.js';
import { Listener } from './listener.js';
import { jobFields, type Logger } from './log.js';
import { claimAndRunJobs, claimJobs, queueOverview, releaseJobs, runJobs, type ClaimedJob, type JobOutcome, type QueueDepth } from './queue.js';

export interface WorkerHealth {
  live: boolean;
  ready: boolean;
  worker_id: string;
  listener_connected: boolean;
  last_claim_at: string | null;
  last_ping_ok_at: string | null;
  last_ping_ms: number | null;
  jobs: { succeeded: number; retried: number; failed: number };
  in_flight: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Worker {
  private sql!: Sql;
  private readonly listener: Listener;
  private readonly housekeeping: Housekeeping;
  private stopping = false;
  private loops: Promise<void>[] = [];
  /** Claimed jobs waiting for a runner, grouped by tenant. */
  private ready: ClaimedJob[][] = [];
  private queuedJobs = 0;
  /** Runner slots free: groups (and inline claims) running at once <= concurrency. */
  private freeSlots = 0;
  /** Running groups and inline claims, awaited on stop. */
  private active = new Set<Promise<void>>();
  private spaceWaiter: (() => void) | undefined;
  private timers: NodeJS.Timeout[] = [];
  private wakeGeneration = 0;
  private wakers = new Set<() => void>();
  private inFlight = new Map<bigint, ClaimedJob>();
  private lastClaimAt: Date | null = null;
  private counts = { succeeded: 0, retried: 0, failed: 0 };

  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
  ) {
    this.listener = new Listener(cfg, log);
    this.listener.onWake = () => this.wake();
    this.housekeeping = new Housekeeping(cfg, log);
  }

  async start(): Promise<void> {
    this.sql = connect(this.cfg.databaseUrl, {
      max: this.cfg.concurrency + 2,
      prepare: this.cfg.prepare,
      applicationName: `apportion-worker ${this.cfg.workerId}`,
    });
    await this.sql`select 1`;
    await this.listener.start(this.sql);
    this.freeSlots = this.cfg.concurrency;
    this.loops.push(this.claimer());
    this.timers.push(setInterval(() => this.wake(), this.cfg.pollIntervalMs));
    for (const t of this.timers) t.unref();
    this.log.info({ worker_id: this.cfg.workerId, queues: this.cfg.queues, concurrency: this.cfg.concurrency, batch_size: this.cfg.batchSize }, 'worker started');
    this.housekeeping.start(this.sql);
  }

  private wake(): void {
    this.wakeGeneration++;
    for (const w of this.wakers) w();
    this.wakers.clear();
  }

  private waitForWake(since: number): Promise<void> {
    if (this.wakeGeneration !== since || this.stopping) return Promise.resolve();
    return new Promise((resolve) => this.wakers.add(resolve));
  }

  // One claimer fills a small local queue of tenant groups; up to
  // `concurrency` of them run at once, each group one transaction. A single
  // claimer means concurrent claims never collide on the head of the runnable
  // index (with several claiming loops, each had to skip the others' locked
  // rows, and throughput swung wildly from run to run).
  //
  // When every runner is idle the claim itself runs what it finds, if it is
  // at most inlineRunMax jobs, in the claim's transaction
  // (claim_and_run_jobs): one round trip from a job's arrival to its handler
  // instead of two. Such a claim holds a runner slot while it runs; the
  // claimer does not wait for it when a new wake-up arrives meanwhile.
  private async claimer(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      if (this.queuedJobs >= this.cfg.batchSize) {
        await new Promise<void>((resolve) => (this.spaceWaiter = resolve));
        continue;
      }
      const generation = this.wakeGeneration;
      let claimed: number | null;
      if (this.cfg.inlineRunMax > 0 && this.freeSlots === this.cfg.concurrency && this.ready.length === 0) {
        this.freeSlots--;
        const inline = this.claim(true);
        this.track(inline.finally(() => this.freeSlot()));
        const first = await Promise.race([inline, this.waitForWake(generation).then(() => 'woken' as const)]);
        if (first === 'woken') continue;
        claimed = first;
      } else {
        claimed = await this.claim(false);
      }
      if (claimed === null) {
        failures++;
        await sleep(Math.min(5000, 100 * 2 ** failures));
        continue;
      }
      failures = 0;
      if (claimed === 0) await this.waitForWake(generation);
    }
  }

  /**
   * One claim of a full batch (claims are made while fewer than a batch of
   * jobs wait locally; smaller claims would split into ever smaller run
   * transactions). Inline: jobs the claim ran itself are reported, the rest
   * queued for the runners. Returns how many jobs were claimed, or null when
   * the claim failed (logged).
   */
  private async claim(inline: boolean): Promise<number | null> {
    const limit = this.cfg.batchSize;
    let claimed: ClaimedJob[];
    try {
      if (inline) {
        const rows = await claimAndRunJobs(this.sql, this.cfg.workerId, this.cfg.queues, limit, this.cfg.leaseSeconds, this.cfg.inlineRunMax);
        claimed = [];
        for (const r of rows) {
          if (r.outcome === null) claimed.push(r);
          else this.report(r, r);
        }
        if (rows.length > 0) this.lastClaimAt = new Date();
        if (claimed.length === 0) return rows.length;
      } else {
        claimed = await claimJobs(this.sql, this.cfg.workerId, this.cfg.queues, limit, this.cfg.leaseSeconds);
        if (claimed.length === 0) return 0;
        this.lastClaimAt = new Date();
      }
    } catch (err) {
      this.log.error({ err: String(err) }, 'claim failed');
      return null;
    }
    for (const j of claimed) this.inFlight.set(j.job_id, j);
    if (this.stopping) {
      // Claimed while we were asked to stop: give them straight back.
      await this.release(claimed);
      return claimed.length;
    }
    // Group by tenant; split big groups so every runner has work.
    const chunk = Math.max(1, Math.ceil(claimed.length / this.cfg.concurrency));
    const groups = new Map<string | null, ClaimedJob[]>();
    for (const j of claimed) {
      const g = groups.get(j.tenant_id);
      if (g) g.push(j);
      else groups.set(j.tenant_id, [j]);
    }
    for (const jobs of groups.values()) {
      for (let i = 0; i < jobs.length; i += chunk) this.ready.push(jobs.slice(i, i + chunk));
    }
    this.queuedJobs += claimed.length;
    this.dispatch();
    return claimed.length;
  }

  /** Start ready groups while runner slots are free. */
  private dispatch(): void {
    while (!this.stopping && this.freeSlots > 0 && this.ready.length > 0) {
      const jobs = this.ready.shift()!;
      this.queuedJobs -= jobs.length;
      this.freeSlots--;
      this.track(this.runGroup(jobs).finally(() => this.freeSlot()));
    }
    if (this.queuedJobs < this.cfg.batchSize) {
      this.spaceWaiter?.();
      this.spaceWaiter = undefined;
    }
  }

  private freeSlot(): void {
    this.freeSlots++;
    this.dispatch();
  }

  private track(work: Promise<unknown>): void {
    const p = work.then(() => {}, () => {});
    this.active.add(p);
    void p.then(() => this.active.delete(p));
  }

  /** One tenant's jobs: one transaction, each job in its own savepoint. */
  private async runGroup(jobs: ClaimedJob[]): Promise<void> {
    const tenantId = jobs[0]!.tenant_id;
    try {
      const outcomes = await runJobs(this.sql, this.cfg.workerId, tenantId, jobs.map((j) => j.job_id));
      const byId = new Map(jobs.map((j) => [j.job_id, j]));
      for (const o of outcomes) this.report(byId.get(o.job_id)!, o);
    } catch (err) {
      // The transaction rolled back: nothing happened. Give the jobs back.
      for (const j of jobs) {
        this.log.error({ ...jobFields(j), err: String(err) }, 'job batch transaction failed; releasing');
      }
      await this.release(jobs);
    } finally {
      for (const j of jobs) this.inFlight.delete(j.job_id);
    }
  }

  /** Give claimed jobs back to the queue (best effort: else their lease expires). */
  private async release(jobs: ClaimedJob[]): Promise<number> {
    const n = await releaseJobs(this.sql, this.cfg.workerId, jobs.map((j) => j.job_id)).catch(() => 0);
    for (const j of jobs) this.inFlight.delete(j.job_id);
    return n;
  }

  private report(job: ClaimedJob, o: JobOutcome): void {
    const level = o.outcome === 'succeeded' ? 'debug' : o.outcome === 'retry' ? 'warn' : 'error';
    if (o.outcome === 'succeeded') this.counts.succeeded++;
    else if (o.outcome === 'retry') this.counts.retried++;
    else this.counts.failed++;
    if (this.log.isLevelEnabled(level)) {
      const fields = { ...jobFields(job), attempt: o.attempt, ms: Number(o.ms) };
      if (o.outcome === 'succeeded') this.log.debug(fields, 'job succeeded');
      else {
        const failure = { ...fields, error_code: o.error_code, error_message: o.error_message };
        if (o.outcome === 'retry') this.log.warn(failure, 'job failed; will retry');
        else this.log.error(failure, 'job failed for good');
      }
    }
    this.housekeeping.jobFinished(o);
  }

  /** Readiness: a ping job's round trip through the real queue. */
  ping(timeoutMs?: number): Promise<number> {
    return this.housekeeping.ping(timeoutMs);
  }

  health(): WorkerHealth {
    const ready = !this.stopping && this.listener.connected && this.housekeeping.lastPingOkAt !== null;
    return {
      live: !this.stopping,
      ready,
      worker_id: this.cfg.workerId,
      listener_connected: this.listener.connected,
      last_claim_at: this.lastClaimAt?.toISOString() ?? null,
      last_ping_ok_at: this.housekeeping.lastPingOkAt?.toISOString() ?? null,
      last_ping_ms: this.housekeeping.lastPingMs,
      jobs: { ...this.counts },
      in_flight: this.inFlight.size,
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
    this.log.info({ worker_id: this.cfg.workerId, signal, in_flight: this.inFlight.size }, 'stopping: finishing in-flight work');
    for (const t of this.timers) clearInterval(t);
    this.listener.stopHeartbeat();
    this.housekeeping.stop();
    this.wake();
    this.spaceWaiter?.();
    let timer: NodeJS.Timeout | undefined;
    const finished = async () => {
      await Promise.all(this.loops);
      while (this.active.size > 0) await Promise.all([...this.active]);
      return true;
    };
    const drained = await Promise.race([
      finished(),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.cfg.shutdownTimeoutMs))),
    ]);
    clearTimeout(timer);
    // Claimed but never started: back to the queue, the attempt not counted.
    const unstarted = this.ready.splice(0).flat();
    if (unstarted.length > 0) {
      const released = await this.release(unstarted);
      this.log.info({ worker_id: this.cfg.workerId, released }, 'released claimed jobs that were not started');
    }
    if (!drained) {
      const inFlight = [...this.inFlight.values()];
      const released = await this.release(inFlight);
      this.log.warn({ worker_id: this.cfg.workerId, in_flight: inFlight.length, released }, 'shutdown timeout: released unstarted jobs; the rest return when their lease expires');
    }
    await this.listener.stop();
    await this.sql.end({ timeout: drained ? 5 : 0 }).catch(() => {});
    this.log.info({ worker_id: this.cfg.workerId, drained, ...this.counts }, 'stopped');
  }
}
