// The live path: ingest -> allocated through the real orchestrator, set
// against the engine's set-based path in the same run.
//
//   (a) sustained: EVENTS events over TENANTS tenants ingested in 500-event
//       transactions while the orchestrator allocates them, for linear and
//       for time_decay; against recompute_window over the same events (a
//       second, inactive model version of the same kind, so both write
//       every row, with fresh statistics); events/s and live/set;
//   (b) idle, one event at a time: ingest commit -> allocation commit, on
//       a worker already warm (the first WARMUP events after it started are
//       reported on their own: each new connection plans the handlers'
//       statements once);
//   (c) noisy neighbour: tenant A bulk-ingests in 5,000-event transactions
//       while tenant B ingests one event every 20 ms: B's latency, and A's
//       throughput against A alone;
//   (d) jobs that cannot run: a claim for a fresh job with PARKED jobs
//       queued that it cannot take (half llm jobs, which have no handler,
//       half jobs a year ahead at priority -100) against none.
// Latencies are commit to commit (track_commit_timestamp on the bench
// cluster).
import postgres from 'postgres';
import { loginRoleUrl } from '../lib/roles.js';
import { fmt, percentile, r0, sleep, stat, type Stat } from './lib/stats.js';
import { BATCH, benchWorker, CONCURRENCY } from './lib/worker.js';

const ROUNDS = 3;
const CLAIMS = 50;
const WARMUP = 20;
const ms2 = (v: number) => v.toFixed(2);

export interface LiveBenchResult {
  setup: { events: number; tenants: number; eventsPerTransaction: number; concurrency: number; batchSize: number; rounds: number };
  sustained: { kind: string; liveEventsPerSecond: Stat; setEventsPerSecond: Stat; ratio: number }[];
  idle: { p50: number; p99: number; samples: number; warmup: { samples: number; p50: number; max: number } };
  noisyNeighbour: { bulkEvents: number; bEvents: number; bP50: number; bP99: number; aAlonePerSecond: number; aWithBPerSecond: number; ratio: number };
  parked: { parkedJobs: number; claimMsNone: Stat; claimMsParked: Stat; ratio: number };
}

export interface LiveBenchOptions {
  shrink?: number;
  log?: (line: string) => void;
}

const tenantId = (i: number) => `1e1e0000-0000-4000-8000-${String(i).padStart(12, '0')}`;

export async function benchLive(url: string, opts: LiveBenchOptions = {}): Promise<LiveBenchResult> {
  const shrink = opts.shrink ?? 1;
  const log = opts.log ?? (() => {});
  const EVENTS = Math.max(2000, Math.round(50_000 / shrink));
  const TENANTS = 10;
  const PER_TX = 500;
  const BULK = Math.max(5000, Math.round(100_000 / shrink));
  const PARKED = Math.max(10_000, Math.round(1_000_000 / shrink));
  const IDLE = Math.max(50, Math.round(300 / shrink));
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  const workerUrl = await loginRoleUrl(url, 'apportion_worker', 'apportion_worker_bench');
  const ingestUrl = await loginRoleUrl(url, 'apportion_ingest', 'apportion_ingest_bench');
  const ingest = postgres(ingestUrl, { max: 2, onnotice: () => {} });
  const worker = postgres(workerUrl, { max: 1, onnotice: () => {} });
  try {
    for (let t = 0; t <= TENANTS + 1; t++) {
      await admin`select apportion.create_tenant(${'live ' + t}, ${tenantId(t)}) where not exists (select from apportion.tenants where id = ${tenantId(t)})`;
      await admin.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenantId(t)}, true)`;
        await tx`insert into apportion.touchpoints (customer_id, channel, occurred_at)
                 select 'c' || (g % 2000), (array['email','display','referral','google_search','direct'])[1 + g % 5],
                        '2026-03-01'::timestamptz - (g % 20) * interval '1 day' - g * interval '1 second'
                   from generate_series(1, 6000) g`;
      });
    }
    let run = 0;
    /** Ingest `events` events of `tenants` (round robin) in `perTx`-event transactions; resolves when all are allocated. */
    const ingestAndWait = async (tenants: number[], events: number, perTx: number, day: string): Promise<number> => {
      run++;
      const t0 = performance.now();
      let sent = 0;
      let i = 0;
      while (sent < events) {
        const t = tenants[i++ % tenants.length]!;
        const n = Math.min(perTx, events - sent);
        await ingest.begin(async (tx) => {
          await tx`select set_config('app.tenant_id', ${tenantId(t)}, true)`;
          await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency, event_type)
                   select 'c' || ((${sent} + g) % 2000), ${day}::timestamptz + g * interval '1 millisecond', 1000 + g, 'USD', ${'r' + run}
                     from generate_series(1, ${n}) g`;
        });
        sent += n;
      }
      for (;;) {
        const [r] = await admin<{ n: number }[]>`select count(*)::int as n from apportion.pending_allocations`;
        if (r!.n === 0) break;
        await sleep(10);
      }
      return (performance.now() - t0) / 1000;
    };
    const activate = async (tenants: number[], model: string | null) => {
      for (const t of tenants) {
        await ingest.begin(async (tx) => {
          await tx`select set_config('app.tenant_id', ${tenantId(t)}, true)`;
          await tx`delete from apportion.tenant_models`;
          if (model) await tx`select apportion.activate_model(${model})`;
        });
      }
    };
    const all = Array.from({ length: TENANTS }, (_, i) => i);

    // (a) sustained, per kind.
    const sustained: LiveBenchResult['sustained'] = [];
    for (const kind of ['linear', 'time_decay']) {
      await admin`select apportion.register_model(${'live-' + kind}, ${kind}, '{}')`;
      const live: number[] = [];
      const set: number[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const day = `2026-03-${String(round + (kind === 'linear' ? 0 : 10)).padStart(2, '0')}`;
        await admin`vacuum analyze apportion.attribution_events`;
        await activate(all, `live-${kind}`);
        const w = benchWorker(workerUrl);
        await w.start();
        await sleep(200);
        const liveSecs = await ingestAndWait(all, EVENTS, PER_TX, day);
        await w.stop('bench');
        await activate(all, null);
        const setModel = `live-${kind}-set-${round}`;
        await admin`select apportion.register_model(${setModel}, ${kind}, '{}')`;
        // The set path at its best: statistics that know the new events.
        await admin`analyze apportion.attribution_events`;
        const t0 = performance.now();
        for (const t of all) {
          await worker.begin(async (tx) => {
            await tx`select set_config('app.tenant_id', ${tenantId(t)}, true)`;
            await tx`select * from apportion.recompute_window(${day}::timestamptz, ${day}::timestamptz + interval '1 day', ${setModel})`;
          });
        }
        const setSecs = (performance.now() - t0) / 1000;
        live.push(EVENTS / liveSecs);
        set.push(EVENTS / setSecs);
        log(`  ${kind} round ${round}: live ${r0(EVENTS / liveSecs)} events/s, recompute_window ${r0(EVENTS / setSecs)} events/s, live/set ${(setSecs / liveSecs).toFixed(2)}`);
      }
      const l = stat(live);
      const s = stat(set);
      sustained.push({ kind, liveEventsPerSecond: l, setEventsPerSecond: s, ratio: l.median / s.median });
    }

    // (b) idle: one event at a time.
    await admin`select apportion.register_model('live-idle', 'linear', '{}')`;
    await activate([TENANTS], 'live-idle');
    const w = benchWorker(workerUrl);
    await w.start();
    await sleep(300);
    const latencies = async (tenant: number, tag: string) =>
      (await admin<{ ms: number }[]>`
        select (extract(epoch from min(pg_xact_commit_timestamp(a.xmin)) - pg_xact_commit_timestamp(e.xmin)) * 1000)::float8 as ms
          from apportion.attribution_events e
          join apportion.attribution_allocations a on a.tenant_id = e.tenant_id and a.event_id = e.id
         where e.tenant_id = ${tenantId(tenant)} and e.event_type = ${tag}
         group by e.id, e.xmin`).map((r) => r.ms).sort((a, b) => a - b);
    const single = async (tenant: number, tag: string, i: number) =>
      ingest.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenantId(tenant)}, true)`;
        await tx`insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency, event_type)
                 values (${'c' + (i % 2000)}, '2026-03-25'::timestamptz + ${i} * interval '1 second', ${1000 + i}, 'USD', ${tag})`;
      });
    const oneByOne = async (tag: string, events: number) => {
      for (let i = 0; i < events; i++) {
        await single(TENANTS, tag, i);
        await sleep(10);
      }
      for (;;) {
        const [r] = await admin<{ n: number }[]>`select count(*)::int as n from apportion.pending_allocations`;
        if (r!.n === 0) break;
        await sleep(10);
      }
      return latencies(TENANTS, tag);
    };
    const warm = await oneByOne('idle-warmup', WARMUP);
    const idle = await oneByOne('idle', IDLE);
    log(`  idle: p50 ${percentile(idle, 50).toFixed(2)} ms, p99 ${percentile(idle, 99).toFixed(2)} ms over ${idle.length} events; the ${warm.length} before them, right after the worker started: p50 ${percentile(warm, 50).toFixed(2)} ms, max ${warm[warm.length - 1]!.toFixed(2)} ms`);

    // (c) noisy neighbour: A (tenant 0) bulk, B (tenant TENANTS + 1) single events.
    await activate([0], 'live-idle');
    await activate([TENANTS + 1], 'live-idle');
    const aAloneSecs = await ingestAndWait([0], BULK, 5000, '2026-04-01');
    let stopB = false;
    let bSent = 0;
    const bLoop = (async () => {
      while (!stopB) {
        await single(TENANTS + 1, 'neighbour', bSent++);
        await sleep(20);
      }
    })();
    await sleep(100);
    const aWithBSecs = await ingestAndWait([0], BULK, 5000, '2026-04-02');
    stopB = true;
    await bLoop;
    for (;;) {
      const [r] = await admin<{ n: number }[]>`select count(*)::int as n from apportion.pending_allocations`;
      if (r!.n === 0) break;
      await sleep(10);
    }
    await w.stop('bench');
    const b = await latencies(TENANTS + 1, 'neighbour');
    const noisy = {
      bulkEvents: BULK,
      bEvents: b.length,
      bP50: percentile(b, 50),
      bP99: percentile(b, 99),
      aAlonePerSecond: BULK / aAloneSecs,
      aWithBPerSecond: BULK / aWithBSecs,
      ratio: aAloneSecs / aWithBSecs,
    };
    log(`  noisy neighbour: B p50 ${noisy.bP50.toFixed(1)} ms, p99 ${noisy.bP99.toFixed(1)} ms over ${b.length} events; A ${r0(noisy.aWithBPerSecond)} events/s vs ${r0(noisy.aAlonePerSecond)} alone`);

    // (d) jobs that cannot run: claim latency of a fresh job.
    const claimMs = async (): Promise<number[]> => {
      const out: number[] = [];
      // Settled first: the million inserts leave a checkpoint and autovacuum
      // work behind, which would otherwise land on the claims timed here.
      await admin`vacuum analyze apportion.jobs_live`;
      await admin`checkpoint`;
      await sleep(1000);
      for (let i = 0; i < CLAIMS; i++) {
        await admin`select apportion.enqueue('housekeeping', 'noop', '{}')`;
        const t0 = performance.now();
        const rows = await worker`select * from apportion.claim_jobs('bench-parked', array['attribution', 'housekeeping', 'maintenance', 'llm'], 100, 30)`;
        out.push(performance.now() - t0);
        await worker`select * from apportion.run_tenant_jobs('bench-parked', null, ${rows.map((r) => String(r.job_id))}::bigint[])`;
      }
      return out;
    };
    const none = await claimMs();
    for (let done = 0; done < PARKED; done += 10_000) {
      await ingest.begin(async (tx) => {
        await tx`select set_config('app.tenant_id', ${tenantId(0)}, true)`;
        const n = Math.min(10_000, PARKED - done);
        if ((done / 10_000) % 2 === 0) {
          await tx`select count(*) from apportion.enqueue_many('llm', 'complete', (select jsonb_agg('{}'::jsonb) from generate_series(1, ${n})))`;
        } else {
          await tx`insert into apportion.jobs (queue, task, payload, priority, run_at)
                   select 'housekeeping', 'noop', '{}', -100, now() + interval '1 year' + g * interval '1 second'
                     from generate_series(1, ${n}) g`;
        }
      });
    }
    const parked = await claimMs();
    await admin`delete from apportion.jobs where queue = 'llm' or (state = 'queued' and run_at > now() + interval '6 months')`;
    const pNone = stat(none);
    const pParked = stat(parked);
    log(`  parked: claim ${fmt(pNone, ms2)} ms with none, ${fmt(pParked, ms2)} ms with ${r0(PARKED)} parked`);

    return {
      setup: { events: EVENTS, tenants: TENANTS, eventsPerTransaction: PER_TX, concurrency: CONCURRENCY, batchSize: BATCH, rounds: ROUNDS },
      sustained,
      idle: {
        p50: percentile(idle, 50),
        p99: percentile(idle, 99),
        samples: idle.length,
        warmup: { samples: warm.length, p50: percentile(warm, 50), max: warm[warm.length - 1]! },
      },
      noisyNeighbour: noisy,
      parked: { parkedJobs: PARKED, claimMsNone: pNone, claimMsParked: pParked, ratio: pParked.median / pNone.median },
    };
  } finally {
    await worker.end();
    await ingest.end();
    await admin.end();
  }
}

export function liveMarkdown(r: LiveBenchResult): string {
  const s = r.setup;
  const out = [
    'How the live path works: ingest records each new event in `apportion.pending_allocations` (once per active model) and every inserting statement enqueues one `attribution.allocate_pending` job per tenant and model; such a job allocates up to 1,000 pending events in one engine statement (an event that fails is retried alone and, if it fails again, becomes an `allocate_event` job of its own). Runs of one tenant and model are serialised. The orchestrator runs each claim\'s tenant groups in turns (system jobs first, then tenants with fewer groups running; a tenant one group at a time unless its groups split one big claim), and jobs that cannot run (a task without a handler, a run_at still ahead) wait outside the claim index. Limits: priorities -100..100, system jobs before any tenant\'s, `enqueue_many` at most 10,000 payloads, finite `run_at`, payloads of at most 64 KiB, on every insert path.',
    '',
    '### Setup',
    '',
    `- The orchestrator in-process (concurrency ${s.concurrency}, batch ${s.batchSize}), allocating through the live path: ingest records pending work, \`attribution.allocate_pending\` jobs allocate up to 1,000 events each.`,
    `- (a) ${r0(s.events)} events over ${s.tenants} tenants ingested in ${s.eventsPerTransaction}-event transactions, one model active, timed from the first ingest to nothing pending; against \`recompute_window\` over the same events for a second, inactive version of the same kind (both write every row); ${s.rounds} rounds, median (min..max).`,
    `- (b) one event at a time ~10 ms apart, on a worker that has allocated ${r.idle.warmup.samples} such events since it started (those are reported apart: each new connection plans the handlers' statements once); (c) tenant A ingests ${r0(r.noisyNeighbour.bulkEvents)} events in 5,000-event transactions, alone and then while tenant B ingests one event every 20 ms; (d) ${CLAIMS} claims of a fresh job, with none and with ${r0(r.parked.parkedJobs)} jobs queued that cannot run yet: half \`llm\` jobs (no handler), half jobs a year ahead at priority -100.`,
    '- Latencies are from the ingest\'s commit to the commit of the event\'s allocation (track_commit_timestamp).',
    '',
    '### Figures',
    '',
    '| figure | value | goal |',
    '|---|---|---|',
  ];
  for (const k of r.sustained) {
    out.push(`| (a) ${k.kind}: live / recompute_window | ${fmt(k.liveEventsPerSecond)} / ${r0(k.setEventsPerSecond.median)} events/s = **${k.ratio.toFixed(2)}** | >= 0.7 |`);
  }
  out.push(`| (b) idle ingest -> allocated | p50 **${r.idle.p50.toFixed(2)} ms**, p99 **${r.idle.p99.toFixed(2)} ms** (${r.idle.samples} events) | p50 <= 3 ms, p99 <= 20 ms |`);
  out.push(`| (b) the first ${r.idle.warmup.samples} events after the worker started | p50 ${r.idle.warmup.p50.toFixed(2)} ms, max ${r.idle.warmup.max.toFixed(2)} ms | |`);
  const n = r.noisyNeighbour;
  out.push(`| (c) B while A bulk-ingests | p50 **${n.bP50.toFixed(1)} ms**, p99 **${n.bP99.toFixed(1)} ms** (${n.bEvents} events) | p99 <= 100 ms |`);
  out.push(`| (c) A with B / A alone | ${r0(n.aWithBPerSecond)} / ${r0(n.aAlonePerSecond)} events/s = **${n.ratio.toFixed(2)}** | >= 0.8 |`);
  out.push(`| (d) claim with jobs that cannot run / none | ${fmt(r.parked.claimMsParked, ms2)} / ${fmt(r.parked.claimMsNone, ms2)} ms = **${r.parked.ratio.toFixed(2)}** | <= 1.2 |`);
  return out.join('\n');
}
