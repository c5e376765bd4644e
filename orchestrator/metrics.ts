// Prometheus metrics of one orchestrator (GET /metrics on the health
// server), with prom-client. Counters and histograms are this process's
// own since it started; the queue and backlog gauges are read from the
// database at scrape time (queue_overview, pending_allocations_overview:
// cross-tenant aggregates, no tenant ids or payloads), once per scrape.
import client from 'prom-client';
import type { ClaimedJob, JobOutcome, PendingAllocations, QueueDepth } from './queue.js';

export interface MetricsSources {
  queueDepths(): Promise<QueueDepth[]>;
  pendingAllocations(): Promise<PendingAllocations[]>;
  listenerConnected(): boolean;
  ready(): boolean;
  /** The latest readiness ping's round trip in milliseconds, null before the first. */
  lastPingMs(): number | null;
}

const JOB_LABELS = ['queue', 'task'] as const;

export class Metrics {
  readonly registry = new client.Registry();
  private readonly claimed: client.Counter<'queue' | 'task'>;
  private readonly succeeded: client.Counter<'queue' | 'task'>;
  private readonly retried: client.Counter<'queue' | 'task'>;
  private readonly failed: client.Counter<'queue' | 'task'>;
  private readonly runSeconds: client.Histogram<'queue' | 'task'>;
  private readonly claimSeconds: client.Histogram;
  private scrape: Promise<{ queues: QueueDepth[]; pending: PendingAllocations[] } | null> | null = null;

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    const counter = (name: string, help: string) => new client.Counter({ name, help, labelNames: JOB_LABELS, registers });
    this.claimed = counter('apportion_jobs_claimed_total', 'Jobs this orchestrator claimed');
    this.succeeded = counter('apportion_jobs_succeeded_total', 'Job attempts that succeeded');
    this.retried = counter('apportion_jobs_retried_total', 'Job attempts that failed and will be retried');
    this.failed = counter('apportion_jobs_failed_total', 'Job attempts that failed for good (recorded in worker_failed_jobs)');
    this.runSeconds = new client.Histogram({
      name: 'apportion_job_run_duration_seconds',
      help: 'Handler time of each job attempt',
      labelNames: JOB_LABELS,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.claimSeconds = new client.Histogram({
      name: 'apportion_claim_duration_seconds',
      help: 'Round trip of each claim statement (claim_jobs, or claim_and_run_jobs with the jobs it ran), found jobs or not',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });

    const self = this;
    new client.Gauge({
      name: 'apportion_queue_jobs',
      help: 'Jobs per queue and state (queued, queued_runnable: queued and due, running)',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const q of (await self.read())?.queues ?? []) {
          this.set({ queue: q.queue, state: 'queued' }, Number(q.queued));
          this.set({ queue: q.queue, state: 'queued_runnable' }, Number(q.queued_runnable));
          this.set({ queue: q.queue, state: 'running' }, Number(q.running));
        }
      },
    });
    new client.Gauge({
      name: 'apportion_queue_oldest_runnable_seconds',
      help: 'Age of the oldest job that is due and waiting, per queue (0 when none)',
      labelNames: ['queue'],
      registers,
      async collect() {
        this.reset();
        for (const q of (await self.read())?.queues ?? []) this.set({ queue: q.queue }, Number(q.oldest_runnable_seconds ?? 0));
      },
    });
    new client.Gauge({
      name: 'apportion_open_failures',
      help: 'Open failures (worker_failed_jobs) per queue',
      labelNames: ['queue'],
      registers,
      async collect() {
        this.reset();
        for (const q of (await self.read())?.queues ?? []) this.set({ queue: q.queue }, Number(q.open_failures));
      },
    });
    new client.Gauge({
      name: 'apportion_pending_allocations',
      help: 'Events waiting for the live path, per model version, across tenants',
      labelNames: ['model_version'],
      registers,
      async collect() {
        this.reset();
        for (const p of (await self.read())?.pending ?? []) this.set({ model_version: p.model_version }, Number(p.pending));
      },
    });
    new client.Gauge({
      name: 'apportion_database_scrape_ok',
      help: '1 when this scrape could read the queue from the database, else 0',
      registers,
      async collect() {
        this.set((await self.read()) ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'apportion_listener_connected',
      help: '1 while the LISTEN connection is up',
      registers,
      collect() {
        this.set(sources.listenerConnected() ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'apportion_ready',
      help: '1 while /readyz says ready',
      registers,
      collect() {
        this.set(sources.ready() ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'apportion_last_ping_round_trip_seconds',
      help: 'Round trip of the latest readiness ping through the queue',
      registers,
      collect() {
        const ms = sources.lastPingMs();
        if (ms === null) this.reset();
        else this.set(ms / 1000);
      },
    });
  }

  /** The database side of one scrape, shared by the gauges that need it; null if it failed. */
  private read(): Promise<{ queues: QueueDepth[]; pending: PendingAllocations[] } | null> {
    if (!this.scrape) {
      this.scrape = Promise.all([this.sources.queueDepths(), this.sources.pendingAllocations()]).then(
        ([queues, pending]) => ({ queues, pending }),
        () => null,
      );
    }
    return this.scrape;
  }

  /** The Prometheus text exposition. */
  async text(): Promise<string> {
    try {
      return await this.registry.metrics();
    } finally {
      this.scrape = null;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  jobsClaimed(jobs: readonly Pick<ClaimedJob, 'queue' | 'task'>[], seconds: number): void {
    for (const j of jobs) this.claimed.inc({ queue: j.queue, task: j.task });
    this.claimSeconds.observe(seconds);
  }

  jobFinished(job: Pick<ClaimedJob, 'queue' | 'task'>, o: JobOutcome): void {
    const labels = { queue: job.queue, task: job.task };
    if (o.outcome === 'succeeded') this.succeeded.inc(labels);
    else if (o.outcome === 'retry') this.retried.inc(labels);
    else this.failed.inc(labels);
    this.runSeconds.observe(labels, Number(o.ms) / 1000);
  }
}
