#!/usr/bin/env -S npx tsx
// npm run demo: the whole path on a throwaway database.
//
// Starts Postgres (or uses DATABASE_URL), migrates, registers models, creates
// three tenants with synthetic touchpoints and conversions ingested as
// apportion_ingest, runs the orchestrator (as apportion_worker) until every
// event is allocated for every active model (one tenant also trains a
// data-driven markov version through the queue; its events wait for the
// training); then sends a late touchpoint, a partial refund and a
// chargeback and reads a conversion as it stood before; then prints each
// tenant's revenue by channel with the models side by side in its currency
// (USD, JPY, KWD), read as apportion_reader, the markov removal effects, one
// conversion explained, and shows that each tenant saw only its own data.
import postgres from 'postgres';
import { acquireDatabase } from './lib/cluster.js';
import { loginRoleUrl } from './lib/roles.js';
import { migrate } from '../orchestrator/migrate.js';
import { loadConfig } from '../orchestrator/config.js';
import { connect, withTenant } from '../orchestrator/db.js';
import { createLogger } from '../orchestrator/log.js';
import { Worker } from '../orchestrator/worker.js';

const MODELS: [string, string, object][] = [
  ['last-touch-v1', 'last_touch', {}],
  ['first-touch-v1', 'first_touch', {}],
  ['linear-v1', 'linear', {}],
  ['time-decay-7d', 'time_decay', { half_life: '7 days' }],
  ['position-40-40', 'position_based', { first: 0.4, last: 0.4 }],
  ['last-non-direct-v1', 'last_non_direct', {}],
  ['markov-jun-jul', 'markov', { training_start: '2025-06-01T00:00:00Z', training_end: '2025-08-01T00:00:00Z' }],
];

const TENANTS = [
  { name: 'Acme Outfitters', currency: 'USD', events: 400, touches: 1600, models: ['last-touch-v1', 'linear-v1', 'time-decay-7d', 'position-40-40', 'markov-jun-jul'] },
  { name: 'Globex Software', currency: 'JPY', events: 300, touches: 1500, models: ['first-touch-v1', 'linear-v1', 'last-non-direct-v1'] },
  { name: 'Initech Coffee', currency: 'KWD', events: 250, touches: 900, models: ['last-touch-v1', 'linear-v1', 'time-decay-7d'] },
];

const CHANNELS = ['direct', 'email', 'google_search', 'organic_search', 'paid_social', 'referral', 'display'];

// Small seeded PRNG so every run shows the same numbers.
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// An amount in major units as the database gives it (apportion.major_units:
// JPY 1234 = 1234, USD 1234 = 12.34, KWD 1234 = 1.234), with separators.
const money = (major: string) => {
  const [whole, frac] = major.split('.');
  return whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (frac === undefined ? '' : `.${frac}`);
};

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const t0 = performance.now();
const step = (msg: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

const target = await acquireDatabase('apportion_demo', { fast: true });
step(target.server ? `started a throwaway PostgreSQL (${target.server.kind}) on loopback` : 'using DATABASE_URL');
let worker: Worker | undefined;
const admin = postgres(target.url, { max: 2, onnotice: () => {} });
try {
  const ran = await migrate(target.url);
  step(`migrated: ${ran.migrations.length} migration(s), ${ran.sources.length} SQL source file(s) applied`);

  for (const [version, kind, params] of MODELS) await admin`select apportion.register_model(${version}, ${kind}, ${admin.json(params as never)})`;
  step(`registered ${MODELS.length} model versions: ${MODELS.map((m) => m[0]).join(', ')}`);

  const ingestUrl = await loginRoleUrl(target.url, 'apportion_ingest', 'apportion_ingest_demo');
  const workerUrl = await loginRoleUrl(target.url, 'apportion_worker', 'apportion_worker_demo');
  const readerUrl = await loginRoleUrl(target.url, 'apportion_reader', 'apportion_reader_demo');
  const allocatorUrl = await loginRoleUrl(target.url, 'apportion_allocator', 'apportion_allocator_demo');
  const ingest = connect(ingestUrl, { max: 2 });
  const reader = connect(readerUrl, { max: 2 });
  const allocator = connect(allocatorUrl, { max: 1 });

  // Tenants and their data, ingested the way a service would.
  const tenants: { id: string; name: string; currency: string; events: number; models: string[] }[] = [];
  const rand = prng(20250601);
  for (const t of TENANTS) {
    const [row] = await admin`select apportion.create_tenant(${t.name}) as id`;
    const id = row!.id as string;
    tenants.push({ id, name: t.name, currency: t.currency, events: t.events, models: t.models });
    const customers = Math.round(t.events * 0.8);
    const start = Date.parse('2025-06-01T00:00:00Z');
    const touches = Array.from({ length: t.touches }, (_, i) => ({
      customer_id: `cust-${Math.floor(rand() * customers)}`,
      channel: CHANNELS[Math.floor(rand() ** 1.4 * CHANNELS.length)]!,
      occurred_at: new Date(start + rand() * 60 * 86_400_000).toISOString(),
      external_id: `touch-${i}`,
    }));
    const events = Array.from({ length: t.events }, (_, i) => ({
      customer_id: `cust-${Math.floor(rand() * customers)}`,
      occurred_at: new Date(start + (20 + rand() * 45) * 86_400_000).toISOString(),
      revenue_cents: String(Math.floor(500 + rand() ** 2 * 50_000)),
      external_event_id: `order-${i}`,
    }));
    await withTenant(ingest, id, async (tx) => {
      for (const m of t.models) await tx`select apportion.activate_model(${m})`;
      await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at, external_id)
               select * from jsonb_to_recordset(${tx.json(touches as never)}) as x(customer_id text, channel text, occurred_at timestamptz, external_id text)`;
      // Inserting the events records them as pending for each active model
      // and enqueues one allocate_pending job per model.
      await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency, external_event_id)
               select customer_id, occurred_at, revenue_cents, ${t.currency}, external_event_id
                 from jsonb_to_recordset(${tx.json(events as never)}) as x(customer_id text, occurred_at timestamptz, revenue_cents bigint, external_event_id text)`;
    });
    step(`tenant ${t.name}: ${t.touches} touchpoints, ${t.events} conversions ingested; models ${t.models.join(', ')} active`);
    const markov = t.models.filter((m) => MODELS.find((x) => x[0] === m)![1] === 'markov');
    for (const m of markov) {
      // The live path holds this version's events until the tenant has trained it.
      await withTenant(ingest, id, (tx) => tx`select apportion.enqueue('attribution', 'train_model', ${tx.json({ model_version: m })})`);
      step(`tenant ${t.name}: enqueued attribution.train_model for ${m}; its events wait for the training`);
    }
  }
  const expected = tenants.reduce((n, t) => n + t.events * t.models.length, 0);
  const [queued] = await admin`select (select count(*)::int from apportion.pending_allocations) as pending,
                                      (select count(*)::int from apportion.jobs where queue = 'attribution' and state = 'queued') as jobs`;
  step(`ingest recorded ${queued!.pending} pending event x model allocations (expected ${expected}) and enqueued ${queued!.jobs} allocate_pending jobs, one per tenant and model`);

  // The orchestrator, as apportion_worker.
  const cfg = loadConfig({ ...process.env, DATABASE_URL: workerUrl, APPORTION_HEALTH_PORT: '-1', LOG_LEVEL: 'warn' });
  worker = new Worker(cfg, createLogger('warn'));
  const workStarted = performance.now();
  await worker.start();
  for (;;) {
    const [s] = await admin`select count(*) filter (where state in ('queued', 'running'))::int
                                     + (select count(*)::int from apportion.pending_allocations) as pending,
                                   count(*) filter (where state = 'failed')::int as failed
                              from apportion.jobs where queue = 'attribution'`;
    if (s!.pending === 0) {
      const secs = (performance.now() - workStarted) / 1000;
      step(`orchestrator allocated everything: ${expected} event x model allocations in ${secs.toFixed(1)} s (${Math.round(expected / secs)} per second), ${s!.failed} jobs failed`);
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pingMs = await worker.ping();
  step(`readiness ping through the queue: ${pingMs.toFixed(1)} ms`);

  // Data that changes, with the orchestrator still running: a late
  // touchpoint, a partial and a full refund, and the report as it stood.
  const acme = tenants[0]!;
  // The demo's conversions are from 2025: past the default 90-day horizon.
  await admin`update apportion.tenants set restatement_horizon = interval '10 years' where id = ${acme.id}`;
  const [before] = await admin`select now() as at`;
  const rowsOf = (event: string, m: string) => withTenant(reader, acme.id, (tx) => tx<{ channel: string; cents: string; reason: string }[]>`
    select channel, apportion.major_units(allocated_revenue_cents, currency)::text as cents, change_reason as reason
      from apportion.attribution_allocations where event_id = ${event} and model_version = ${m} order by channel`);
  const [e] = await admin`
    select e.id, e.customer_id, e.occurred_at, e.revenue_cents, e.external_event_id
      from apportion.attribution_events e
     where e.tenant_id = ${acme.id}
       and (select count(*) from apportion.attribution_allocations a where a.event_id = e.id and a.model_version = 'linear-v1') = 2
       and not exists (select from apportion.touchpoints t where t.tenant_id = e.tenant_id and t.customer_id = e.customer_id and t.channel = 'referral')
     order by e.external_event_id limit 1`;
  console.log(`\nData that changes — ${acme.name}, conversion ${e!.external_event_id} (${money((Number(e!.revenue_cents) / 100).toFixed(2))} USD) under linear-v1:`);
  console.log(table(['channel', 'USD', 'written for'], (await rowsOf(e!.id, 'linear-v1')).map((r) => [r.channel, money(r.cents), r.reason])));
  await withTenant(ingest, acme.id, (tx) => tx`
    insert into apportion.touchpoints (customer_id, channel, occurred_at, external_id)
    values (${e!.customer_id}, 'referral', ${e!.occurred_at}::timestamptz - interval '1 hour', 'late-touch-1')`);
  for (let i = 0; ; i++) {
    const rows = await rowsOf(e!.id, 'linear-v1');
    if (rows.some((r) => r.reason === 'late_touchpoint')) {
      step('a referral touchpoint arrived late (an hour before the conversion); the live path restated the conversion:');
      console.log(table(['channel', 'USD', 'written for'], rows.map((r) => [r.channel, money(r.cents), r.reason])));
      break;
    }
    if (i > 300) throw new Error('the late touchpoint was not restated in 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const changes = await withTenant(reader, acme.id, (tx) => tx`
    select channel, reason, coalesce(before_cents::text, '-') as before, coalesce(after_cents::text, '-') as after
      from apportion.allocation_changes where event_id = ${e!.id} and model_version = 'linear-v1' order by changed_at, channel`);
  console.log('every change on record (apportion.allocation_changes, cents):');
  console.log(table(['channel', 'reason', 'before', 'after'], changes.map((c) => [c.channel, c.reason, c.before, c.after])));

  const partial = BigInt(Math.floor(Number(e!.revenue_cents) / 4));
  const [f] = await admin`select id, external_event_id, revenue_cents from apportion.attribution_events
                            where tenant_id = ${acme.id} and id <> ${e!.id} and revenue_cents > 0 order by external_event_id limit 1`;
  await withTenant(ingest, acme.id, (tx) => tx`
    insert into apportion.refunds (event_id, amount_cents, occurred_at, external_refund_id, reason) values
      (${e!.id}, ${partial.toString()}::bigint, now(), 'refund-1', 'partial: one item returned'),
      (${f!.id}, ${f!.revenue_cents}::bigint, now(), 'chargeback-1', 'chargeback')`);
  const split = await withTenant(reader, acme.id, (tx) => tx`
    select a.channel, apportion.major_units(a.allocated_revenue_cents, a.currency)::text as gross,
           apportion.major_units(coalesce(sum(r.refunded_cents), 0), a.currency)::text as refunded,
           apportion.major_units(a.allocated_revenue_cents - coalesce(sum(r.refunded_cents), 0), a.currency)::text as net
      from apportion.attribution_allocations a
      left join apportion.refund_allocations r on r.event_id = a.event_id and r.model_version = a.model_version and r.channel = a.channel
     where a.event_id = ${e!.id} and a.model_version = 'linear-v1'
     group by a.channel, a.allocated_revenue_cents, a.currency order by a.channel`);
  step(`refunds: ${money((Number(partial) / 100).toFixed(2))} USD of ${e!.external_event_id} (partial), all of ${f!.external_event_id} (a chargeback); split exactly over each channel's part:`);
  console.log(table(['channel', 'gross', 'refunded', 'net'], split.map((r) => [r.channel, money(r.gross), money(r.refunded), money(r.net)])));
  const [fnet] = await withTenant(reader, acme.id, (tx) => tx`
    select count(*)::int as channels, sum(a.allocated_revenue_cents - coalesce((select sum(r.refunded_cents) from apportion.refund_allocations r
             where r.event_id = a.event_id and r.model_version = a.model_version and r.channel = a.channel), 0))::text as net
      from apportion.attribution_allocations a where a.event_id = ${f!.id}`);
  console.log(`${f!.external_event_id}, refunded in full: net ${fnet!.net} cents over its ${fnet!.channels} allocation rows (every model, every channel 0)`);
  const asOf = await withTenant(reader, acme.id, (tx) => tx`
    select channel, apportion.major_units(allocated_revenue_cents, currency)::text as cents, change_reason as reason
      from apportion.allocations_as_of('linear-v1', ${before!.at}) where event_id = ${e!.id} order by channel`);
  console.log(`${e!.external_event_id} under linear-v1 as of ${new Date(before!.at).toISOString()}, before all this (allocations_as_of):`);
  console.log(table(['channel', 'USD', 'written for'], asOf.map((r) => [r.channel, money(r.cents), r.reason])));

  await worker.stop('demo done');
  worker = undefined;

  // Report: per tenant, revenue by channel, models side by side, as apportion_reader.
  for (const t of tenants) {
    const rows = await withTenant(reader, t.id, (tx) => tx<{ channel: string; model_version: string; major: string }[]>`
      select channel, model_version, apportion.major_units(sum(revenue_cents), currency)::text as major
        from apportion.daily_channel_revenue group by 1, 2, currency`);
    const totalsByModel = await withTenant(reader, t.id, (tx) => tx<{ model_version: string; gross: string; refunded: string; net: string }[]>`
      select model_version, apportion.major_units(sum(gross_cents), currency)::text as gross,
             apportion.major_units(sum(refunded_cents), currency)::text as refunded, apportion.major_units(sum(net_cents), currency)::text as net
        from apportion.daily_channel_net_revenue where basis = 'accrual' group by model_version, currency`);
    const [totals] = await withTenant(reader, t.id, (tx) => tx`
      select count(distinct event_id)::int as events, count(distinct tenant_id)::int as tenants_seen
        from apportion.attribution_allocations`);
    const channels = [...new Set(rows.map((r) => r.channel))].sort();
    const cell = (c: string, m: string) => rows.find((r) => r.channel === c && r.model_version === m)?.major ?? '0';
    const total = (m: string, k: 'gross' | 'refunded' | 'net') => totalsByModel.find((x) => x.model_version === m)?.[k] ?? '0';
    const body = channels.map((c) => [c, ...t.models.map((m) => money(cell(c, m)))]);
    body.push(['TOTAL', ...t.models.map((m) => money(total(m, 'gross')))]);
    if (totalsByModel.some((x) => x.refunded !== x.gross && Number(x.refunded) > 0)) {
      body.push(['refunded', ...t.models.map((m) => money(total(m, 'refunded')))]);
      body.push(['NET', ...t.models.map((m) => money(total(m, 'net')))]);
    }
    console.log(`\n${t.name} — revenue (${t.currency}) by channel, ${totals!.events} conversions, rows of ${totals!.tenants_seen} tenant(s) visible`);
    console.log(table(['channel', ...t.models], body));

    for (const m of t.models.filter((v) => MODELS.find((x) => x[0] === v)![1] === 'markov')) {
      const [trained] = await withTenant(reader, t.id, (tx) => tx`
        select path_count, conversion_count, p_conversion_num || '/' || p_conversion_den as p from apportion.trained_models where model_version = ${m}`);
      const summary = await withTenant(reader, t.id, (tx) => tx<{ channel: string; re: string; removal_effect: string; share: string }[]>`
        select channel, removal_effect_num || '/' || removal_effect_den as re, removal_effect::text, share::text
          from apportion.markov_summary(${m}) order by removal_effect desc, channel`);
      // Exact fractions of real data run to many digits: show their size.
      const fraction = (f: string) => {
        const [n, d] = f.split('/');
        return f.length > 24 ? `${n!.length}-digit / ${d!.length}-digit` : f;
      };
      console.log(`
${m} for ${t.name}: trained on ${trained!.path_count} paths (${trained!.conversion_count} converting), ` +
        `P(conversion) = ${fraction(trained!.p as string)}; removal effects, exact and rounded, and global shares:`);
      console.log(table(['channel', 'removal effect (exact)', 'rounded', 'share'],
        summary.map((r) => [r.channel, fraction(r.re), r.removal_effect, r.share])));

      // One conversion explained, as a service calling the SQL API would (apportion_allocator).
      const rows = await withTenant(allocator, t.id, async (tx) => {
        const [e] = await tx`
          select a.event_id, e.revenue_cents from apportion.attribution_allocations a
            join apportion.attribution_events e on e.id = a.event_id
           where a.model_version = ${m} group by a.event_id, e.revenue_cents, e.external_event_id
          having count(*) = 3 and sum(a.touchpoint_count) = 4 order by e.external_event_id limit 1`;
        if (!e) return [];
        return tx`select *, ${e.revenue_cents}::bigint as revenue_cents from apportion.explain_allocation(${e.event_id}, ${m})`;
      });
      if (rows.length > 0) {
        console.log(`\nexplain_allocation of one ${money((Number(rows[0]!.revenue_cents) / 100).toFixed(2))} USD conversion under ${m}: its customer's touches, then each channel's split`);
        console.log(table(['touch at', 'channel', 'counted', 'touch weight'],
          rows.filter((r) => r.touch_id).map((r) => [
            new Date(r.occurred_at).toISOString().slice(0, 16).replace('T', ' '), r.channel,
            r.counted ? `yes (#${r.touch_position})` : `no: ${r.reason}`, r.counted ? `${r.weight} (${fraction(`${r.weight_num}/${r.weight_den}`)})` : ''])));
        const channels = [...new Map(rows.filter((r) => r.counted).map((r) => [r.channel, r])).values()];
        console.log(table(['channel', 'removal effect', 'weight', 'exact share (cents)', 'floor', 'spare cent', 'cents'],
          channels.map((r) => [r.channel, r.removal_effect_num === null ? '' : fraction(`${r.removal_effect_num}/${r.removal_effect_den}`),
            r.channel_weight, fraction(`${r.share_num}/${r.share_den}`), String(r.floor_cents), r.leftover_cent ? 'yes' : 'no', String(r.allocated_revenue_cents)])));
      }
    }
  }

  // Isolation: what each tenant's reader can see, and what no tenant sees.
  console.log('\nIsolation check (as apportion_reader / apportion_ingest):');
  const [all] = await admin`select count(*)::int as n from apportion.attribution_events`;
  for (const t of tenants) {
    const [seen] = await withTenant(ingest, t.id, (tx) => tx`
      select (select count(*)::int from apportion.attribution_events) as events,
             (select count(*)::int from apportion.attribution_events where tenant_id <> ${t.id}) as foreign_events`);
    const [alloc] = await withTenant(reader, t.id, (tx) => tx`
      select count(*)::int as n, count(*) filter (where tenant_id <> ${t.id})::int as foreign from apportion.attribution_allocations`);
    console.log(`  ${t.name.padEnd(16)} sees ${seen!.events} of ${all!.n} events (${seen!.foreign_events} of other tenants), ${alloc!.n} allocations (${alloc!.foreign} of other tenants)`);
  }
  const [none] = await reader`select count(*)::int as n from apportion.attribution_allocations`;
  console.log(`  no tenant set     sees ${none!.n} allocations`);
  await ingest.end();
  await reader.end();
  await allocator.end();
  step('done');
} finally {
  await worker?.stop('demo failed');
  await admin.end();
  await target.release();
}
