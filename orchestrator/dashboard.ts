// The operator dashboard, served by the health server under /dashboard when
// APPORTION_DASHBOARD=true: queue depths and throughput over time (sampled
// by this process), open failures with code, message and correlation id
// (replay needs the token), and one tenant's revenue by channel with its
// models side by side. Static files in dashboard/ and Chart.js, no build step.
//
// Access: with APPORTION_DASHBOARD_TOKEN set every API request needs it
// (header `Authorization: Bearer <token>`; open the page as
// /dashboard#token=<token> and it sends the header, the fragment never
// leaving the browser), the page and its scripts, which hold no data, do
// not; without a token the dashboard is read-only (no replay), only allowed
// on a loopback health host (config.ts), and answers loopback Host names only.
import { timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Config } from './config.js';
import type { Sql } from './db.js';
import type { JobCounts } from './dispatcher.js';
import { PACKAGE_ROOT } from './paths.js';
import { openFailures, queueOverview, replayFailedJob, type QueueDepth } from './queue.js';

export interface DashboardSample {
  at: string;
  queues: Record<string, { queued: number; running: number }>;
  /** Attempts finished by this process since the previous sample. */
  succeeded: number;
  failed: number;
  retried: number;
}

export interface RevenueRow {
  model_version: string;
  currency: string;
  channel: string;
  /** exact, as text */
  revenue_major: string;
  events: number;
}

const HISTORY = 720;
const LOOPBACK_HOST = /^(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?$/i; // an hour at the default 5 s
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The page's files, and Chart.js's browser build (next to the package's main file; its exports do not name it). */
function staticFiles(): Record<string, [file: string, type: string]> {
  const chartDist = path.dirname(createRequire(import.meta.url).resolve('chart.js'));
  return {
    '/dashboard': [path.join(PACKAGE_ROOT, 'dashboard/index.html'), 'text/html; charset=utf-8'],
    '/dashboard/app.js': [path.join(PACKAGE_ROOT, 'dashboard/app.js'), 'text/javascript; charset=utf-8'],
    '/dashboard/style.css': [path.join(PACKAGE_ROOT, 'dashboard/style.css'), 'text/css; charset=utf-8'],
    '/dashboard/chart.js': [path.join(chartDist, 'chart.umd.min.js'), 'text/javascript; charset=utf-8'],
  };
}

export class Dashboard {
  private readonly samples: DashboardSample[] = [];
  private readonly files = staticFiles();
  private timer?: NodeJS.Timeout;
  private last: JobCounts = { succeeded: 0, retried: 0, failed: 0 };

  constructor(
    private readonly cfg: Config,
    private readonly sql: () => Sql,
    private readonly counts: () => JobCounts,
  ) {}

  start(): void {
    const tick = () =>
      void this.sample().catch(() => {
        // A sample the database could not give is a gap in the charts.
      });
    tick();
    this.timer = setInterval(tick, this.cfg.dashboardSampleMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async sample(): Promise<void> {
    const queues = await queueOverview(this.sql());
    const now = this.counts();
    const s: DashboardSample = {
      at: new Date().toISOString(),
      queues: Object.fromEntries(queues.map((q: QueueDepth) => [q.queue, { queued: Number(q.queued), running: Number(q.running) }])),
      succeeded: now.succeeded - this.last.succeeded,
      failed: now.failed - this.last.failed,
      retried: now.retried - this.last.retried,
    };
    this.last = { ...now };
    this.samples.push(s);
    if (this.samples.length > HISTORY) this.samples.shift();
  }

  private authorized(req: http.IncomingMessage): boolean {
    const token = this.cfg.dashboardToken;
    if (token === null) return true;
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : '';
    const a = Buffer.from(given);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Answer a /dashboard request; false when the path is not the dashboard's. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (url.pathname !== '/dashboard' && !url.pathname.startsWith('/dashboard/')) return false;
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)));
    };
    // Without a token the dashboard answers loopback names only: a page on
    // another site cannot reach it through a rebinding DNS name.
    if (this.cfg.dashboardToken === null && !LOOPBACK_HOST.test(req.headers.host ?? '')) {
      send(403, { error: 'without APPORTION_DASHBOARD_TOKEN the dashboard answers only to 127.0.0.1, [::1] or localhost' });
      return true;
    }
    // The page and its scripts hold no data: only the API needs the token.
    const file = this.files[url.pathname];
    if (file && req.method === 'GET') {
      res.writeHead(200, {
        'content-type': file[1],
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'",
        'x-content-type-options': 'nosniff',
      });
      pipeline(fs.createReadStream(file[0]), res).catch(() => res.destroy());
      return true;
    }
    if (!this.authorized(req)) {
      send(401, { error: 'the dashboard API needs its token: Authorization: Bearer <token> (open the page as /dashboard#token=<token>)' });
      return true;
    }
    const fail = (err: unknown) => {
      const e = err as { message?: string; code?: string };
      send(e.code && /^(22|23|42)/.test(e.code) ? 400 : 500, { error: e.message ?? String(err), code: e.code ?? null });
    };
    if (url.pathname === '/dashboard/api/overview' && req.method === 'GET') {
      Promise.all([queueOverview(this.sql()), openFailures(this.sql(), null, 50)]).then(
        ([queues, failures]) => send(200, { samples: this.samples, queues, failures, replay: this.cfg.dashboardToken !== null }),
        fail,
      );
      return true;
    }
    if (url.pathname === '/dashboard/api/revenue' && req.method === 'GET') {
      const tenant = url.searchParams.get('tenant') ?? '';
      if (!UUID.test(tenant)) {
        send(400, { error: 'tenant must be a tenant id (uuid)' });
        return true;
      }
      this.revenue(tenant).then((rows) => send(200, { tenant, rows }), fail);
      return true;
    }
    const replay = /^\/dashboard\/api\/failures\/(\d+)\/replay$/.exec(url.pathname);
    if (replay && req.method === 'POST') {
      if (this.cfg.dashboardToken === null) {
        send(403, { error: 'replaying from the dashboard needs APPORTION_DASHBOARD_TOKEN set on the orchestrator' });
        return true;
      }
      this.replay(BigInt(replay[1]!)).then(
        (id) => (id === null ? send(404, { error: `no open failure for job ${replay[1]}` }) : send(200, { new_job_id: id })),
        fail,
      );
      return true;
    }
    send(404, { error: 'not found' });
    return true;
  }

  /** The tenant's revenue by model, currency and channel, all days, in major units. */
  private async revenue(tenant: string): Promise<RevenueRow[]> {
    return this.sql().begin(async (tx) => {
      await tx`select set_config('app.tenant_id', ${tenant}, true)`;
      return tx<RevenueRow[]>`
        select model_version, currency, channel, sum(revenue_major)::text as revenue_major, sum(event_count)::int as events
          from apportion.daily_channel_revenue
         group by model_version, currency, channel
         order by currency, model_version, channel`;
    });
  }

  private async replay(jobId: bigint): Promise<bigint | null> {
    const failure = (await openFailures(this.sql(), null, 1000)).find((f) => f.job_id === jobId);
    if (!failure) return null;
    return replayFailedJob(this.sql(), failure);
  }
}
