// The claimer and its runners. One claimer fills a small local queue of
// tenant groups; up to `concurrency` of them run at once, each group one
// transaction. A single claimer means concurrent claims never collide on the
// head of the runnable index (with several claiming loops, each had to skip
// the others' locked rows, and throughput swung wildly from run to run).
//
// When every runner is idle the claim itself runs what it finds, if it is at
// most inlineRunMax jobs, in the claim's transaction (claim_and_run_jobs):
// one round trip from a job's arrival to its handler instead of two. Such a
// claim holds a runner slot while it runs; the claimer does not wait for it
// when a new wake-up arrives meanwhile.
//
// The claimer is in one ClaimerState at a time ("a claim" below is
// claiming_inline when every runner is idle and nothing waits locally,
// claiming otherwise):
//
//   from                  to                  when
//   stopped               a claim             start()
//   any but stopped       waiting_for_space   a batch of claimed jobs waits for the runners
//   waiting_for_space     a claim             the runners took some of them
//   claiming(_inline)     a claim             the claim found jobs, or (inline) a wake came first
//   claiming(_inline)     waiting_for_wake    the claim found nothing
//   claiming(_inline)     backing_off         the claim failed (200 ms, doubling up to 5 s)
//   backing_off           a claim             the backoff is over
//   waiting_for_wake      a claim             a notification, the backstop poll, a listener (re)connect
//   waiting_for_wake      coalescing_wakes    woken sooner than the pause after claims that found nothing
//   coalescing_wakes      a claim             the pause is over (1 ms, doubling per empty claim in a row up to 50 ms)
//   any                   stopped             stop(), once the step under way ends
import type { MaybeRow, PendingQuery } from 'postgres';
import type { Config } from './config.js';
import type { Sql } from './db.js';
import { jobFields, type Logger } from './log.js';
import { claimAndRunJobs, claimJobs, releaseJobs, runJobs, type ClaimedJob, type JobOutcome } from './queue.js';

export type ClaimerState = 'claiming' | 'claiming_inline' | 'waiting_for_space' | 'waiting_for_wake' | 'coalescing_wakes' | 'backing_off' | 'stopped';

export interface JobCounts {
  succeeded: number;
  retried: number;
  failed: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The longest pause between claims woken right after claims that found nothing. */
const MAX_EMPTY_CLAIM_PAUSE_MS = 50;

/** How long inline claims use the work pool after one failed on their own connection. */
const INLINE_CONNECTION_RETRY_MS = 30_000;

export class Dispatcher {
  /** Called with every outcome, run by a runner or inline by a claim. */
  onJobOutcome: (o: JobOutcome, job: ClaimedJob) => void = () => {};
  /** Called after every claim that returned, with the jobs it claimed (none, or run inline too) and its round trip. */
  onClaimed: (jobs: readonly ClaimedJob[], seconds: number) => void = () => {};
  /** Called when a statement is abandoned at its deadline (the driver lost it). */
  onAbandoned: (what: string) => void = () => {};
  private sql!: Sql;
  /** Where inline claims go (see Worker.start). */
  private inlineSql!: Sql;
  /** When an inline claim last failed on inlineSql (performance.now()). */
  private inlineSqlFailedAt = -Infinity;
  private stopping = false;
  private claimerState: ClaimerState = 'stopped';
  private claimerLoop: Promise<void> = Promise.resolve();
  private pollTimer?: NodeJS.Timeout;
  private staleTimer?: NodeJS.Timeout;
  /** When each ready group was claimed (performance.now()). */
  private readonly claimedAt = new WeakMap<ClaimedJob[], number>();
  private wakeGeneration = 0;
  private wakeWaiters = new Set<() => void>();
  /** Resumes a claimer waiting for the local queue to drop below a batch. */
  private resumeOnSpace: (() => void) | undefined;
  /** Claimed jobs waiting for a runner, one tenant group per entry. */
  private readyGroups: ClaimedJob[][] = [];
  /** Ready groups that are parts of one tenant's big claim: they may run side by side. */
  private readonly splitGroups = new WeakSet<ClaimedJob[]>();
  /** Groups running now, per tenant (null: system jobs). */
  private readonly runningByTenant = new Map<string | null, number>();
  private readyJobCount = 0;
  /** Runner slots free: groups (and inline claims) running at once <= concurrency. */
  private freeRunnerSlots = 0;
  /** Running groups and inline claims, awaited on stop. */
  private runningWork = new Set<Promise<void>>();
  /** Jobs we hold under our lease: claimed, not yet finished or released. */
  private leasedJobs = new Map<bigint, ClaimedJob>();
  private lastClaim: Date | null = null;
  /** Claims that found nothing since the last one that found jobs. */
  private emptyClaimsInARow = 0;
  private lastClaimEndedAt = 0;
  private claimCount = 0;
  private requestStop: () => void = () => {};
  private readonly stopRequested = new Promise<void>((r) => (this.requestStop = r));
  private counts: JobCounts = { succeeded: 0, retried: 0, failed: 0 };

  constructor(
    private readonly cfg: Pick<Config, 'workerId' | 'queues' | 'concurrency' | 'batchSize' | 'inlineRunMax' | 'leaseSeconds' | 'pollIntervalMs' | 'jobTimeoutMs'>,
    private readonly log: Logger,
  ) {}

  get state(): ClaimerState {
    return this.claimerState;
  }

  get lastClaimAt(): Date | null {
    return this.lastClaim;
  }

  get leasedJobCount(): number {
    return this.leasedJobs.size;
  }

  get jobCounts(): JobCounts {
    return { ...this.counts };
  }

  /** Claims made since start (found jobs or not). */
  get claims(): number {
    return this.claimCount;
  }

  /** Start claiming through `sql`, inline claims through `inlineSql`. */
  start(sql: Sql, inlineSql: Sql = sql): void {
    this.sql = sql;
    this.inlineSql = inlineSql;
    this.freeRunnerSlots = this.cfg.concurrency;
    this.claimerLoop = this.claimLoop();
    // The backstop when no notification arrives.
    this.pollTimer = setInterval(() => this.wake(), this.cfg.pollIntervalMs);
    this.pollTimer.unref();
    // Claimed jobs that no runner could start within a third of their lease
    // go back well before it expires (see releaseStaleGroups).
    this.staleTimer = setInterval(() => void this.releaseStaleGroups(), Math.max(50, (this.cfg.leaseSeconds * 1000) / 6));
    this.staleTimer.unref();
  }

  /**
   * Give back the ready groups that have waited for a runner for a third
   * of their lease (runners held by slow or lost statements): released, their
   * attempt is not counted, and they are claimed again when a runner can
   * take them. Left waiting, their lease would expire, and every expiry
   * counts an attempt of a job that never ran: a job could fail for good
   * without ever starting.
   */
  private async releaseStaleGroups(): Promise<void> {
    const cutoff = performance.now() - (this.cfg.leaseSeconds * 1000) / 3;
    const stale = this.readyGroups.filter((g) => (this.claimedAt.get(g) ?? Infinity) < cutoff);
    if (stale.length === 0) return;
    this.readyGroups = this.readyGroups.filter((g) => !stale.includes(g));
    const jobs = stale.flat();
    this.readyJobCount -= jobs.length;
    const released = await this.release(jobs);
    this.log.info({ worker_id: this.cfg.workerId, waited: jobs.length, released }, 'released claimed jobs no runner started within a third of their lease');
    this.startReadyGroups();
  }

  /** Jobs may be waiting: a claimer waiting for a wake claims again. */
  wake(): void {
    this.wakeGeneration++;
    for (const w of this.wakeWaiters) w();
    this.wakeWaiters.clear();
  }

  /**
   * No new claims; running groups get timeoutMs to finish; claimed jobs not
   * started go back to the queue, and after a timeout so does every job
   * still leased. Resolves whether everything running finished in time.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    this.requestStop();
    clearInterval(this.pollTimer);
    clearInterval(this.staleTimer);
    this.wake();
    this.resumeOnSpace?.();
    let timer: NodeJS.Timeout | undefined;
    const finished = async () => {
      await this.claimerLoop;
      while (this.runningWork.size > 0) await Promise.all([...this.runningWork]);
      return true;
    };
    const drained = await Promise.race([
      finished(),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    // Claimed but never started: back to the queue, the attempt not counted.
    const unstarted = this.readyGroups.splice(0).flat();
    if (unstarted.length > 0) {
      const released = await this.release(unstarted);
      this.log.info({ worker_id: this.cfg.workerId, released }, 'released claimed jobs that were not started');
    }
    if (!drained) {
      const leased = [...this.leasedJobs.values()];
      const released = await this.release(leased);
      this.log.warn({ worker_id: this.cfg.workerId, in_flight: leased.length, released }, 'shutdown timeout: released unstarted jobs; the rest return when their lease expires');
    }
    return drained;
  }

  private waitForWake(since: number): Promise<void> {
    if (this.wakeGeneration !== since || this.stopping) return Promise.resolve();
    return new Promise((resolve) => this.wakeWaiters.add(resolve));
  }

  private async claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      if (this.readyJobCount >= this.cfg.batchSize) {
        this.claimerState = 'waiting_for_space';
        await new Promise<void>((resolve) => (this.resumeOnSpace = resolve));
        continue;
      }
      const generation = this.wakeGeneration;
      let claimed: number | null;
      if (this.cfg.inlineRunMax > 0 && this.freeRunnerSlots === this.cfg.concurrency && this.readyGroups.length === 0) {
        this.claimerState = 'claiming_inline';
        this.freeRunnerSlots--;
        const inline = this.claimBatch(true);
        this.trackRunning(inline.finally(() => this.freeRunnerSlot()));
        const first = await Promise.race([inline, this.waitForWake(generation).then(() => 'woken' as const)]);
        if (first === 'woken') continue;
        claimed = first;
      } else {
        this.claimerState = 'claiming';
        claimed = await this.claimBatch(false);
      }
      if (claimed === null) {
        this.claimerState = 'backing_off';
        failures++;
        await sleep(Math.min(5000, 100 * 2 ** failures));
        continue;
      }
      failures = 0;
      if (claimed > 0) {
        this.emptyClaimsInARow = 0;
        continue;
      }
      this.emptyClaimsInARow++;
      this.claimerState = 'waiting_for_wake';
      await this.waitForWake(generation);
      // Woken again right after claims that found nothing: wait a little
      // before the next claim (1 ms, doubling per empty claim in a row up to
      // 50 ms), so that a flood of notifications (anyone may NOTIFY the
      // channel) costs a few claims a second instead of one per
      // notification. A claim that finds jobs ends the wait for the next.
      const pause = Math.min(MAX_EMPTY_CLAIM_PAUSE_MS, 2 ** (this.emptyClaimsInARow - 1));
      const since = performance.now() - this.lastClaimEndedAt;
      if (since < pause) {
        this.claimerState = 'coalescing_wakes';
        await this.pauseUnlessStopping(pause - since);
      }
    }
    this.claimerState = 'stopped';
  }

  /** Resolves after ms, or at once when stop() is called. */
  private pauseUnlessStopping(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([new Promise<void>((r) => (timer = setTimeout(r, ms))), this.stopRequested]).finally(() => clearTimeout(timer));
  }

  /**
   * One claim of a full batch (claims are made while fewer than a batch of
   * jobs wait locally; smaller claims would split into ever smaller run
   * transactions). Inline: jobs the claim ran itself are reported, the rest
   * queued for the runners. Returns how many jobs were claimed, or null when
   * the claim failed (logged).
   */
  private async claimBatch(inline: boolean): Promise<number | null> {
    const limit = this.cfg.batchSize;
    let claimed: ClaimedJob[];
    this.claimCount++;
    // The leases start with the claim's transaction: count from before it
    // (an inline claim may have run for a while before its leftovers queue).
    const claimStarted = performance.now();
    let usedInlineSql = false;
    try {
      if (inline) {
        // Its own connection, unless that one failed lately: the server may
        // refuse it alone (max_connections, a role's connection limit) while
        // the work pool's connections are open.
        usedInlineSql = performance.now() - this.inlineSqlFailedAt >= INLINE_CONNECTION_RETRY_MS;
        const rows = await this.withDeadline(claimAndRunJobs(usedInlineSql ? this.inlineSql : this.sql, this.cfg.workerId, this.cfg.queues, limit, this.cfg.leaseSeconds, this.cfg.inlineRunMax), this.cfg.jobTimeoutMs, 'inline claim and run', null);
        this.onClaimed(rows, (performance.now() - claimStarted) / 1000);
        claimed = [];
        for (const r of rows) {
          if (r.outcome === null) claimed.push(r);
          else this.report(r, r);
        }
        if (rows.length > 0) this.lastClaim = new Date();
        if (claimed.length === 0) return rows.length;
      } else {
        // A claim that has not returned within the lease is worth nothing: the
        // leases it took have expired by then.
        claimed = await this.withDeadline(claimJobs(this.sql, this.cfg.workerId, this.cfg.queues, limit, this.cfg.leaseSeconds), this.cfg.leaseSeconds * 1000, 'claim', null);
        this.onClaimed(claimed, (performance.now() - claimStarted) / 1000);
        if (claimed.length === 0) return 0;
        this.lastClaim = new Date();
      }
    } catch (err) {
      this.log.error({ err: String(err) }, 'claim failed');
      if (usedInlineSql && this.inlineSql !== this.sql) this.inlineSqlFailedAt = performance.now();
      return null;
    } finally {
      this.lastClaimEndedAt = performance.now();
    }
    for (const j of claimed) this.leasedJobs.set(j.job_id, j);
    if (this.stopping) {
      // Claimed while we were asked to stop: give them straight back.
      await this.release(claimed);
      return claimed.length;
    }
    // Group by tenant; split big groups so every runner has work. A handful
    // of one tenant's jobs stays one group (see startReadyGroups).
    const chunk = Math.max(1, Math.ceil(claimed.length / this.cfg.concurrency));
    const splitAbove = 4 * this.cfg.concurrency;
    const groups = new Map<string | null, ClaimedJob[]>();
    for (const j of claimed) {
      const g = groups.get(j.tenant_id);
      if (g) g.push(j);
      else groups.set(j.tenant_id, [j]);
    }
    const fresh: ClaimedJob[][] = [];
    for (const jobs of groups.values()) {
      if (jobs.length <= splitAbove) {
        fresh.push(jobs);
        continue;
      }
      for (let i = 0; i < jobs.length; i += chunk) {
        const part = jobs.slice(i, i + chunk);
        this.splitGroups.add(part);
        fresh.push(part);
      }
    }
    for (const g of fresh) this.claimedAt.set(g, claimStarted);
    this.readyGroups = this.fairOrder([...this.readyGroups, ...fresh]);
    this.readyJobCount += claimed.length;
    this.startReadyGroups();
    return claimed.length;
  }

  /**
   * Ready groups in turns across tenants: system jobs first, then each
   * tenant's next group, tenants with fewer groups running first, so one
   * tenant's backlog waits behind another tenant's fresh job for at most the
   * groups already running, not for the backlog.
   */
  private fairOrder(ready: ClaimedJob[][]): ClaimedJob[][] {
    const byTenant = new Map<string | null, ClaimedJob[][]>();
    for (const g of ready) {
      const key = g[0]!.tenant_id;
      const list = byTenant.get(key);
      if (list) list.push(g);
      else byTenant.set(key, [g]);
    }
    const running = (t: string | null) => this.runningByTenant.get(t) ?? 0;
    const tenants = [...byTenant.keys()].sort((a, b) => (a === null ? -1 : b === null ? 1 : running(a) - running(b)));
    const ordered: ClaimedJob[][] = [];
    for (let turn = 0; ordered.length < ready.length; turn++) {
      for (const t of tenants) {
        const g = byTenant.get(t)![turn];
        if (g) ordered.push(g);
      }
    }
    return ordered;
  }

  /**
   * Start ready groups, in order, while runner slots are free. A tenant runs
   * one group at a time, unless its groups are the parts of one big claim:
   * a tenant's few jobs are often work that takes turns anyway (its
   * allocation batches of one model wait for each other), and run side by
   * side they would hold every runner, one of them waiting, while another
   * tenant's fresh job waits for a runner too.
   */
  private startReadyGroups(): void {
    while (!this.stopping && this.freeRunnerSlots > 0 && this.readyGroups.length > 0) {
      const next = this.readyGroups.findIndex((g) => this.splitGroups.has(g) || !this.runningByTenant.has(g[0]!.tenant_id));
      if (next < 0) break;
      const jobs = this.readyGroups.splice(next, 1)[0]!;
      const tenant = jobs[0]!.tenant_id;
      this.readyJobCount -= jobs.length;
      this.freeRunnerSlots--;
      this.runningByTenant.set(tenant, (this.runningByTenant.get(tenant) ?? 0) + 1);
      this.trackRunning(
        this.runTenantGroup(jobs).finally(() => {
          const left = (this.runningByTenant.get(tenant) ?? 1) - 1;
          if (left > 0) this.runningByTenant.set(tenant, left);
          else this.runningByTenant.delete(tenant);
          this.freeRunnerSlot();
        }),
      );
    }
    if (this.readyJobCount < this.cfg.batchSize) {
      this.resumeOnSpace?.();
      this.resumeOnSpace = undefined;
    }
  }

  private freeRunnerSlot(): void {
    this.freeRunnerSlots++;
    this.startReadyGroups();
  }

  private trackRunning(work: Promise<unknown>): void {
    const p = work.then(() => {}, () => {});
    this.runningWork.add(p);
    void p.then(() => this.runningWork.delete(p));
  }

  /** One tenant's jobs: one transaction, each job in its own savepoint. */
  private async runTenantGroup(jobs: ClaimedJob[]): Promise<void> {
    const tenantId = jobs[0]!.tenant_id;
    try {
      const outcomes = await this.withDeadline(runJobs(this.sql, this.cfg.workerId, tenantId, jobs.map((j) => j.job_id)), this.cfg.jobTimeoutMs, 'job', jobs);
      const byId = new Map(jobs.map((j) => [j.job_id, j]));
      for (const o of outcomes) this.report(byId.get(o.job_id)!, o);
    } catch (err) {
      // The transaction rolled back: nothing happened. Give the jobs back.
      for (const j of jobs) {
        this.log.error({ ...jobFields(j), err: String(err) }, 'job batch transaction failed; releasing');
      }
      await this.release(jobs);
    } finally {
      for (const j of jobs) this.leasedJobs.delete(j.job_id);
    }
  }

  /**
   * A statement with a deadline. At cancelAfterMs it is canceled (57014):
   * for a run, run_jobs turns that into a retry of the job that was running
   * and gives the rest of the batch back unstarted, so a hung handler frees
   * its runner. A query that has not ended a lease later is abandoned (it
   * rejects here): postgres.js can lose a query queued on a connection that
   * was cut while connecting, and nothing else would ever end it. What an
   * abandoned statement claimed comes back when its lease expires.
   */
  private async withDeadline<T extends readonly MaybeRow[]>(query: PendingQuery<T>, cancelAfterMs: number, what: string, jobs: ClaimedJob[] | null): Promise<T> {
    if (cancelAfterMs <= 0) return query;
    const abandonAfterMs = this.cfg.leaseSeconds * 1000;
    let cancelTimer: NodeJS.Timeout | undefined;
    let abandonTimer: NodeJS.Timeout | undefined;
    const abandoned = new Promise<never>((_, reject) => {
      cancelTimer = setTimeout(() => {
        this.log.warn({ worker_id: this.cfg.workerId, timeout_ms: cancelAfterMs, job_ids: jobs?.map((j) => String(j.job_id)) }, `${what} timeout: canceling it`);
        // (Typed void; it returns a promise that rejects if the cancel request fails.)
        Promise.resolve(query.cancel() as unknown).catch(() => {});
        abandonTimer = setTimeout(() => {
          reject(new Error(`${what} did not end ${abandonAfterMs} ms after it was canceled: abandoned (its jobs come back when their lease expires)`));
          this.onAbandoned(what);
        }, abandonAfterMs);
      }, cancelAfterMs);
    });
    try {
      return await Promise.race([query, abandoned]);
    } finally {
      clearTimeout(cancelTimer);
      clearTimeout(abandonTimer);
    }
  }

  /** Give claimed jobs back to the queue (best effort: else their lease expires). */
  private async release(jobs: ClaimedJob[]): Promise<number> {
    const n = await releaseJobs(this.sql, this.cfg.workerId, jobs.map((j) => j.job_id)).catch(() => 0);
    for (const j of jobs) this.leasedJobs.delete(j.job_id);
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
    this.onJobOutcome(o, job);
  }
}
