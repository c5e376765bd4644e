// The operator dashboard's page: polls the orchestrator's /dashboard/api and
// draws with Chart.js. The token (if the orchestrator has one) comes from this
// page's URL fragment (#token=, never sent to a server) and is sent as a
// bearer header; it is never stored. ?tenant= picks the tenant.
/* global Chart */
'use strict';

const params = new URLSearchParams(location.search);
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const headers = token ? { authorization: `Bearer ${token}` } : {};
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

const state = { depthChart: null, throughputChart: null, revenueCharts: [], tenant: params.get('tenant') || '' };
window.apportionDashboard = state;

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...headers, ...(init.headers || {}) } });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `${res.status}`);
  return body;
}

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value == null ? '' : String(value);
  if (cls) el.className = cls;
  return el;
}

function lineChart(canvas, datasets) {
  return new Chart(canvas, {
    type: 'line',
    data: { labels: [], datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      elements: { point: { radius: 0 } },
    },
  });
}

function drawQueues(samples) {
  const labels = samples.map((s) => new Date(s.at).toLocaleTimeString());
  const queues = [...new Set(samples.flatMap((s) => Object.keys(s.queues)))].sort();
  const depth = queues.flatMap((q, i) => [
    { label: `${q} queued`, data: samples.map((s) => s.queues[q]?.queued ?? null), borderColor: COLORS[i % COLORS.length] },
    { label: `${q} running`, data: samples.map((s) => s.queues[q]?.running ?? null), borderColor: COLORS[i % COLORS.length], borderDash: [4, 3] },
  ]);
  if (!state.depthChart) state.depthChart = lineChart(document.getElementById('depth-chart'), depth);
  state.depthChart.data.labels = labels;
  state.depthChart.data.datasets = depth;
  state.depthChart.update();

  const throughput = [
    { label: 'succeeded', data: samples.map((s) => s.succeeded), borderColor: '#16a34a' },
    { label: 'retried', data: samples.map((s) => s.retried), borderColor: '#ca8a04' },
    { label: 'failed', data: samples.map((s) => s.failed), borderColor: '#dc2626' },
  ];
  if (!state.throughputChart) state.throughputChart = lineChart(document.getElementById('throughput-chart'), throughput);
  state.throughputChart.data.labels = labels;
  state.throughputChart.data.datasets = throughput;
  state.throughputChart.update();
}

function drawFailures(failures, canReplay) {
  document.getElementById('replay-note').textContent = canReplay
    ? 'Replay enqueues the failed job again under its own tenant.'
    : 'Replay needs APPORTION_DASHBOARD_TOKEN on the orchestrator.';
  const body = document.querySelector('#failures tbody');
  body.replaceChildren(...failures.map((f) => {
    const tr = document.createElement('tr');
    tr.dataset.jobId = String(f.job_id);
    if (f.correlation_id) tr.dataset.correlationId = f.correlation_id;
    tr.append(text('td', f.job_id), text('td', f.tenant_id ?? 'system'), text('td', `${f.queue}.${f.task}`),
      text('td', f.error_code, 'code bad'), text('td', f.error_message, 'message'), text('td', f.correlation_id, 'code'),
      text('td', f.attempts), text('td', new Date(f.failed_at).toLocaleString()));
    const cell = document.createElement('td');
    if (canReplay) {
      const button = text('button', 'replay');
      button.addEventListener('click', async () => {
        button.disabled = true;
        try {
          const r = await api(`/dashboard/api/failures/${f.job_id}/replay`, { method: 'POST' });
          cell.replaceChildren(text('span', `job ${r.new_job_id}`, 'ok'));
        } catch (err) {
          cell.replaceChildren(text('span', err.message, 'bad'));
        }
      });
      cell.append(button);
    }
    tr.append(cell);
    return tr;
  }));
}

async function drawRevenue() {
  const note = document.getElementById('revenue-note');
  const box = document.getElementById('revenue-charts');
  if (!state.tenant) {
    note.textContent = 'Enter a tenant id to see its revenue.';
    return;
  }
  let rows;
  try {
    ({ rows } = await api(`/dashboard/api/revenue?tenant=${encodeURIComponent(state.tenant)}`));
  } catch (err) {
    note.textContent = err.message;
    return;
  }
  for (const c of state.revenueCharts) c.destroy();
  state.revenueCharts = [];
  box.replaceChildren();
  note.textContent = rows.length === 0 ? 'No allocations for this tenant yet.' : `${rows.length} rows, in major units; never summed across currencies.`;
  // One chart per currency: channels along the axis, one bar per model version.
  for (const currency of [...new Set(rows.map((r) => r.currency))]) {
    const mine = rows.filter((r) => r.currency === currency);
    const channels = [...new Set(mine.map((r) => r.channel))].sort();
    const models = [...new Set(mine.map((r) => r.model_version))].sort();
    const wrap = document.createElement('div');
    wrap.className = 'revenue-chart';
    const canvas = document.createElement('canvas');
    canvas.dataset.currency = currency;
    wrap.append(canvas);
    box.append(text('h3', currency), wrap);
    state.revenueCharts.push(new Chart(canvas, {
      type: 'bar',
      data: {
        labels: channels,
        datasets: models.map((m, i) => ({
          label: m,
          backgroundColor: COLORS[i % COLORS.length],
          data: channels.map((ch) => Number(mine.find((r) => r.model_version === m && r.channel === ch)?.revenue_major ?? 0)),
        })),
      },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true, title: { display: true, text: currency } } } },
    }));
  }
}

async function refresh() {
  try {
    const o = await api('/dashboard/api/overview');
    const depth = o.queues.map((q) => `${q.queue} ${q.queued}/${q.running}`).join(' · ');
    document.getElementById('worker-state').textContent = `queued/running: ${depth} · open failures: ${o.failures.length}`;
    drawQueues(o.samples);
    drawFailures(o.failures, o.replay);
  } catch (err) {
    document.getElementById('worker-state').textContent = `cannot read the dashboard: ${err.message}`;
  }
}

document.getElementById('tenant').value = state.tenant;
document.getElementById('tenant-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.tenant = document.getElementById('tenant').value.trim();
  const next = new URL(location.href);
  next.searchParams.set('tenant', state.tenant);
  history.replaceState(null, '', next);
  void drawRevenue();
});

void refresh();
void drawRevenue();
setInterval(refresh, 2000);
setInterval(drawRevenue, 10000);
