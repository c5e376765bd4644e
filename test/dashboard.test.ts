// The operator dashboard in a real browser (Debian's chromium, driven by
// puppeteer-core) against a real orchestrator: the page loads, shows a
// failure caused just before with its code, message and correlation id, and
// draws a tenant's revenue by channel with two models side by side; replay
// works behind the token. The screenshot is saved to test-results/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import postgres from 'postgres';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase, type TestDatabase } from './helpers/db.js';
import { startOrchestrator, waitFor, type RunningOrchestrator } from './helpers/orchestrator.js';

const TENANT = '0d0d0000-0000-4000-8000-00000000000d';
const CORRELATION = '0d0d0000-0000-4000-8000-0000000000cc';
const TOKEN = 'dashboard-test-token-0123456789';
export const SCREENSHOT = path.resolve('test-results/dashboard.png');

let db: TestDatabase;
let admin: postgres.Sql;
let orchestrator: RunningOrchestrator;
let browser: Browser;
let failedJob: string;

function chromium(): string {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
    if (found) return found;
  }
  throw new Error('the dashboard test needs a Chromium (Debian: apt-get install chromium)');
}

beforeAll(async () => {
  db = await testDatabase('dashboard');
  admin = postgres(db.url, { max: 2, onnotice: () => {} });
  await admin`select apportion.create_tenant('dashboard shop', ${TENANT}::uuid)`;
  await admin`select apportion.register_model('dash-linear', 'linear')`;
  await admin`select apportion.register_model('dash-last', 'last_touch')`;
  await admin.begin(async (tx) => {
    await tx`select set_config('app.tenant_id', ${TENANT}, true)`;
    await tx`select apportion.activate_model('dash-linear')`;
    await tx`select apportion.activate_model('dash-last')`;
    await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at)
             select 'c' || i, (array['email', 'display', 'google_search'])[1 + i % 3], timestamptz '2026-11-01' + i * interval '1 minute'
               from generate_series(1, 30) i
             union all
             select 'c' || i, 'email', timestamptz '2026-11-01 12:00' + i * interval '1 minute' from generate_series(1, 30) i`;
    await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency)
             select 'c' || i, timestamptz '2026-11-02', 1000 + i, 'USD' from generate_series(1, 30) i`;
  });
  orchestrator = await startOrchestrator(await db.urlAs('apportion_worker'), {
    APPORTION_DASHBOARD: 'true',
    APPORTION_DASHBOARD_TOKEN: TOKEN,
    APPORTION_DASHBOARD_SAMPLE_MS: '200',
  });
  await waitFor('every event allocated under both models', async () => {
    const [r] = await admin<{ n: number }[]>`select count(distinct (event_id, model_version))::int as n
                                              from apportion.attribution_allocations where tenant_id = ${TENANT}::uuid`;
    return r!.n === 60 || undefined;
  });
  // A failure, just caused: a job for an event that does not exist, one attempt.
  const [job] = await admin<{ id: string }[]>`
    insert into apportion.jobs (tenant_id, queue, task, payload, max_attempts, correlation_id)
    values (${TENANT}, 'attribution', 'allocate_event',
            '{"event_id": "00000000-0000-4000-8000-000000000000", "model_version": "dash-linear"}', 1, ${CORRELATION})
    returning id::text`;
  failedJob = job!.id;
  await waitFor('the failure recorded', async () =>
    (await admin`select 1 from apportion.worker_failed_jobs where job_id = ${failedJob}::bigint`).length > 0 || undefined);
  browser = await puppeteer.launch({
    executablePath: chromium(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await orchestrator?.stop();
  await admin?.end();
  await db?.drop();
});

describe('the operator dashboard', () => {
  it('needs its token for every API call (the page itself holds no data)', async () => {
    const base = `http://127.0.0.1:${orchestrator.port}`;
    expect((await fetch(`${base}/dashboard`)).status).toBe(200);
    expect((await fetch(`${base}/dashboard/api/overview`)).status).toBe(401);
    expect((await fetch(`${base}/dashboard/api/revenue?tenant=${TENANT}`)).status).toBe(401);
    expect((await fetch(`${base}/dashboard/api/overview`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
    expect((await fetch(`${base}/dashboard/api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const replay = await fetch(`${base}/dashboard/api/failures/${failedJob}/replay`, { method: 'POST' });
    expect(replay.status).toBe(401);
  });

  it('loads in a browser, shows the failure just caused and the revenue chart with models side by side', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.setViewport({ width: 1280, height: 1100 });
    await page.goto(`http://127.0.0.1:${orchestrator.port}/dashboard?tenant=${TENANT}#token=${TOKEN}`, { waitUntil: 'load' });

    const row = await page.waitForSelector(`tr[data-correlation-id="${CORRELATION}"]`, { timeout: 15_000 }).catch(async (err) => {
      throw new Error(`${err}\npage: ${await page.evaluate(() => document.body.innerText)}\nerrors: ${problems.join('\n')}`);
    });
    const cells = await row!.$$eval('td', (tds) => tds.map((td) => td.textContent));
    expect(cells[0]).toBe(failedJob);
    expect(cells[1]).toBe(TENANT);
    expect(cells[2]).toBe('attribution.allocate_event');
    expect(cells[3]).toBe('22023');
    expect(cells[4]).toMatch(/\S/);

    await page.waitForFunction(() => {
      const s = (window as unknown as { apportionDashboard: { revenueCharts: { data: { datasets: unknown[] } }[] } }).apportionDashboard;
      return s.revenueCharts.length === 1 && s.revenueCharts[0]!.data.datasets.length === 2;
    }, { timeout: 15_000 });
    const chart = await page.evaluate(() => {
      const c = (window as unknown as { apportionDashboard: { revenueCharts: { data: { labels: string[]; datasets: { label: string; data: number[] }[] } }[] } })
        .apportionDashboard.revenueCharts[0]!;
      return { labels: c.data.labels, datasets: c.data.datasets.map((d) => ({ label: d.label, total: d.data.reduce((a, b) => a + b, 0) })) };
    });
    expect(chart.labels).toEqual(['display', 'email', 'google_search']);
    // 30 events of 1001..1030 cents: 304.65 USD under each model.
    expect(chart.datasets.map((d) => d.label)).toEqual(['dash-last', 'dash-linear']);
    for (const d of chart.datasets) expect(d.total).toBeCloseTo(304.65, 6);
    // The queue chart has samples.
    await page.waitForFunction(() =>
      (window as unknown as { apportionDashboard: { depthChart: { data: { labels: unknown[] } } | null } }).apportionDashboard.depthChart!.data.labels.length > 1);

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(fs.statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    expect(problems).toEqual([]);

    // Replay from the page, behind the token.
    await page.click(`tr[data-correlation-id="${CORRELATION}"] button`);
    await page.waitForFunction((id) => document.querySelector(`tr[data-job-id="${id}"] .ok`)?.textContent?.startsWith('job '), {}, failedJob);
    const replayed = await admin`select 1 from apportion.jobs where payload ->> 'model_version' = 'dash-linear'
                                   and correlation_id = ${CORRELATION}::uuid and id <> ${failedJob}::bigint`;
    expect(replayed.length).toBe(1);
    await page.close();
  }, 60_000);

  it('without a token: read-only, and only for requests addressed to a loopback name', async () => {
    const open = await startOrchestrator(await db.urlAs('apportion_worker'), { APPORTION_DASHBOARD: 'true' });
    try {
      const get = (host: string, method = 'GET', p = '/dashboard/api/overview') =>
        new Promise<number>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: open.port, path: p, method, headers: { host } }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          });
          req.on('error', reject);
          req.end();
        });
      expect(await get(`127.0.0.1:${open.port}`)).toBe(200);
      expect(await get(`localhost:${open.port}`)).toBe(200);
      expect(await get('rebound.example:80')).toBe(403);
      expect(await get(`127.0.0.1:${open.port}`, 'POST', `/dashboard/api/failures/${failedJob}/replay`)).toBe(403);
    } finally {
      await open.stop();
    }
  });

  it('refuses to start bound beyond loopback without a token (exit 78)', () => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', path.resolve('orchestrator/cli.ts'), 'worker'], {
      env: { ...process.env, DATABASE_URL: db.url, APPORTION_DASHBOARD: 'true', APPORTION_HEALTH_HOST: '0.0.0.0' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(res.status).toBe(78);
    expect(res.stderr).toContain('needs APPORTION_DASHBOARD_TOKEN');
  });
});
