// The SQL engine against an independent TypeScript implementation of
// docs/attribution.md (test/helpers/reference.ts), row for row: channel, cents,
// ratio, touchpoint_count, for every model kind and several parameter sets,
// over seeded random data in several tenants. Data goes in through SQL as
// apportion_ingest; the engine runs as apportion_worker, with a session time
// zone that has DST, which must not change any result.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { withTenant, type Sql } from '../orchestrator/db.js';
import { testDatabase, type TestDatabase } from './helpers/db.js';
import {
  allocate, prng, timestampText, trainMarkov,
  type Allocation, type ConversionEvent, type MarkovState, type Model, type Touch,
} from './helpers/reference.js';

const SEED = 20250601;
const TENANTS = [
  '7e000000-0000-4000-8000-000000000001',
  '7e000000-0000-4000-8000-000000000002',
  '7e000000-0000-4000-8000-000000000003',
];
const CUSTOMERS_PER_TENANT = 250;
const EVENTS_PER_TENANT = 1200;
const CHANNELS = ['direct', 'email', 'google_search', 'organic_search', 'paid_social', 'referral', 'display', 'house', 'app_direct'];
const DIRECT = new Set(['direct', 'app_direct']);

const MODELS: Record<string, Model> = {
  'ref-last-touch': { kind: 'last_touch', params: {} },
  'ref-last-touch-7d': { kind: 'last_touch', params: { lookback: '7 days', fallback_channel: 'house' } },
  'ref-first-touch': { kind: 'first_touch', params: {} },
  'ref-last-non-direct': { kind: 'last_non_direct', params: {} },
  'ref-linear': { kind: 'linear', params: { fallback_channel: 'house' } },
  'ref-linear-36h': { kind: 'linear', params: { lookback: '36 hours' } },
  'ref-time-decay': { kind: 'time_decay', params: {} },
  'ref-time-decay-short': { kind: 'time_decay', params: { half_life: '12 hours 30 minutes', lookback: '10 days' } },
  'ref-time-decay-tiny': { kind: 'time_decay', params: { half_life: '1 minute' } },
  'ref-position': { kind: 'position_based', params: {} },
  'ref-position-j': { kind: 'position_based', params: { first: 0.2, last: 0.6 } },
  'ref-position-inverse-j': { kind: 'position_based', params: { first: 0.6, last: 0.2 } },
  'ref-position-ends': { kind: 'position_based', params: { first: 0.5, last: 0.5 } },
  'ref-position-thirds': { kind: 'position_based', params: { first: 0.3, last: 0.3 } },
  'ref-fixed-3': { kind: 'fixed_split', params: { channels: ['direct', 'email', 'google_search'] } },
  'ref-fixed-7': { kind: 'fixed_split', params: { channels: ['direct', 'email', 'google_search', 'organic_search', 'paid_social', 'referral', 'display'] } },
  'ref-fixed-weighted': { kind: 'fixed_split', params: { channels: ['email', 'house', 'display', 'direct'], weights: [0.5, 0.25, 0.125, 0.125] } },
  'ref-fixed-zero': { kind: 'fixed_split', params: { channels: ['email', 'referral', 'display'], weights: [0.7, 0, 0.3] } },
  'ref-markov': { kind: 'markov', params: { training_start: '2025-02-01T00:00:00Z', training_end: '2025-04-01T00:00:00Z' } },
  'ref-markov-7d': {
    kind: 'markov',
    params: { lookback: '7 days', fallback_channel: 'house', training_start: '2025-03-10T12:00:00Z', training_end: '2025-05-15T00:00:00Z' },
  },
};
// allocate_event is checked on a sample, under versions of their own, so it
// computes from scratch rather than finding recompute_window's rows.
const SINGLE_MODELS = ['ref-time-decay', 'ref-position-j', 'ref-last-non-direct', 'ref-fixed-3', 'ref-markov-7d'];
const SINGLE_SAMPLE = 60;

const DAY = 86_400_000_000n;
const START = BigInt(Date.UTC(2025, 1, 1)) * 1000n; // 2025-02-01, a month before the US DST change
const SPAN = 90n * DAY;

let db: TestDatabase;
let worker: Sql;
const data = new Map<string, { events: ConversionEvent[]; touches: Touch[] }>();
// markov: the reference's trained state per tenant and base version.
const trained = new Map<string, MarkovState>();

/** The model as the reference allocates it for a tenant (markov: with its trained state). */
function modelFor(tenant: string, version: string): Model {
  const model = MODELS[version]!;
  if (model.kind !== 'markov') return model;
  let state = trained.get(`${tenant} ${version}`);
  if (!state) {
    const { events, touches } = data.get(tenant)!;
    state = trainMarkov(events, touches, model.params);
    trained.set(`${tenant} ${version}`, state);
  }
  return { ...model, trained: state };
}

function uuid(rand: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(rand() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function generate(rand: () => number): { events: ConversionEvent[]; touches: Touch[] } {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const at = () => START + BigInt(Math.floor(rand() * Number(SPAN / 1000n))) * 1000n + BigInt(Math.floor(rand() * 1000));
  const touches: Touch[] = [];
  const events: ConversionEvent[] = [];
  for (let c = 0; c < CUSTOMERS_PER_TENANT; c++) {
    const customerId = `customer-${c}`;
    // 0..24 touches, a few customers only direct-type, some timestamps shared.
    const count = rand() < 0.1 ? 0 : Math.floor(rand() * 25);
    const onlyDirect = rand() < 0.1;
    let last: bigint | undefined;
    for (let k = 0; k < count; k++) {
      const t = last !== undefined && rand() < 0.15 ? last : at();
      last = t;
      touches.push({ id: uuid(rand), customerId, channel: onlyDirect ? pick(['direct', 'app_direct']) : pick(CHANNELS), at: t });
    }
  }
  const revenues = [0n, 1n, 2n, 3n, 7n, 13n, 97n, 9973n, 10000n, 1_000_000_000_000n];
  for (let e = 0; e < EVENTS_PER_TENANT; e++) {
    const customerId = `customer-${Math.floor(rand() * CUSTOMERS_PER_TENANT)}`;
    const revenueCents = rand() < 0.4 ? pick(revenues) : BigInt(Math.floor(rand() * 5_000_000));
    // Some events at exactly a touch's time (touches at the event time count).
    const own = touches.filter((t) => t.customerId === customerId);
    const occurred = own.length > 0 && rand() < 0.1 ? pick(own).at : at();
    events.push({ id: uuid(rand), customerId, at: occurred, revenueCents });
  }
  return { events, touches };
}

function groupByCustomer(touches: Touch[]): Map<string, Touch[]> {
  const m = new Map<string, Touch[]>();
  for (const t of touches) m.set(t.customerId, [...(m.get(t.customerId) ?? []), t]);
  return m;
}

function key(modelVersion: string, a: Allocation): string {
  return `${modelVersion} ${a.eventId} ${a.channel}`;
}
function value(a: Allocation): string {
  return `${a.cents} ${a.ratio} ${a.touchpointCount}`;
}

beforeAll(async () => {
  db = await testDatabase('attribution_reference');
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  const ingest = postgres(await db.urlAs('apportion_ingest'), { max: 2, onnotice: () => {} }) as unknown as Sql;
  try {
    const rand = prng(SEED);
    for (const [i, tenant] of TENANTS.entries()) {
      await admin`select apportion.create_tenant(${'reference ' + i}, ${tenant})`;
      data.set(tenant, generate(rand));
    }
    for (const tenant of TENANTS) {
      const { events, touches } = data.get(tenant)!;
      await withTenant(ingest, tenant, async (tx) => {
        await tx`insert into apportion.channels (code, name, is_direct)
                 values ('house', 'House list', false), ('app_direct', 'App (direct)', true)`;
        const rows = touches.map((t) => ({ id: t.id, customer_id: t.customerId, channel: t.channel, occurred_at: timestampText(t.at) }));
        for (let i = 0; i < rows.length; i += 2000) {
          await tx`insert into apportion.touchpoints (id, customer_id, channel, occurred_at)
                   select id, customer_id, channel, occurred_at
                     from jsonb_to_recordset(${tx.json(rows.slice(i, i + 2000))}::jsonb)
                          as r(id uuid, customer_id text, channel text, occurred_at timestamptz)`;
        }
        const evs = events.map((e) => ({ id: e.id, customer_id: e.customerId, occurred_at: timestampText(e.at), revenue_cents: e.revenueCents.toString() }));
        for (let i = 0; i < evs.length; i += 2000) {
          await tx`insert into apportion.attribution_events (id, customer_id, occurred_at, revenue_cents, currency)
                   select id, customer_id, occurred_at, revenue_cents::bigint, 'EUR'
                     from jsonb_to_recordset(${tx.json(evs.slice(i, i + 2000))}::jsonb)
                          as r(id uuid, customer_id text, occurred_at timestamptz, revenue_cents text)`;
        }
      });
    }
    for (const [version, model] of Object.entries(MODELS)) {
      await admin`select apportion.register_model(${version}, ${model.kind}, ${admin.json(model.params as postgres.JSONValue)})`;
    }
    for (const version of SINGLE_MODELS) {
      const model = MODELS[version]!;
      await admin`select apportion.register_model(${version + '-single'}, ${model.kind}, ${admin.json(model.params as postgres.JSONValue)})`;
    }
  } finally {
    await admin.end();
    await ingest.end();
  }
  // The worker's sessions run in a time zone with DST; results must not care.
  worker = postgres(await db.urlAs('apportion_worker'), {
    max: 2,
    onnotice: () => {},
    types: { bigint: postgres.BigInt },
    connection: { TimeZone: 'America/New_York', application_name: 'attribution-reference' },
  }) as unknown as Sql;
  // Every markov version is trained for every tenant, as the worker.
  for (const tenant of TENANTS) {
    for (const version of Object.keys(MODELS).filter((v) => MODELS[v]!.kind === 'markov')) {
      for (const v of SINGLE_MODELS.includes(version) ? [version, version + '-single'] : [version]) {
        await withTenant(worker, tenant, (tx) => tx`select * from apportion.train_model(${v})`);
      }
    }
  }
});

afterAll(async () => {
  await worker?.end();
  await db?.drop();
});

describe('the engine agrees with the reference implementation', () => {
  it(`recompute_window: ${Object.keys(MODELS).length} models x ${TENANTS.length} tenants x ${EVENTS_PER_TENANT} events, row for row`, async () => {
    const expected = new Map<string, string>();
    const actual = new Map<string, string>();
    let events = 0;
    for (const tenant of TENANTS) {
      const { events: evs, touches } = data.get(tenant)!;
      const byCustomer = groupByCustomer(touches);
      for (const version of Object.keys(MODELS)) {
        for (const e of evs) {
          for (const a of allocate(e, byCustomer.get(e.customerId) ?? [], modelFor(tenant, version), DIRECT)) expected.set(`${tenant} ${key(version, a)}`, value(a));
        }
        const [counts] = await withTenant(worker, tenant, (tx) =>
          tx`select * from apportion.recompute_window('2025-01-01T00:00Z', '2026-01-01T00:00Z', ${version})`);
        expect(Number(counts!.event_count)).toBe(evs.length);
        events += Number(counts!.event_count);
      }
      const rows = await withTenant(worker, tenant, (tx) => tx`
        select tenant_id::text, model_version, event_id::text, channel, allocated_revenue_cents::text as cents,
               allocation_ratio::text as ratio, touchpoint_count
          from apportion.attribution_allocations`);
      for (const r of rows) {
        actual.set(`${r.tenant_id} ${r.model_version} ${r.event_id} ${r.channel}`, `${r.cents} ${r.ratio} ${r.touchpoint_count}`);
      }
    }
    const mismatches: string[] = [];
    for (const [k, v] of expected) if (actual.get(k) !== v) mismatches.push(`${k}: engine ${actual.get(k) ?? '(no row)'}, reference ${v}`);
    for (const [k, v] of actual) if (!expected.has(k)) mismatches.push(`${k}: engine ${v}, reference (no row)`);
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(events).toBe(TENANTS.length * EVENTS_PER_TENANT * Object.keys(MODELS).length);
    expect(actual.size).toBe(expected.size);
  });

  it(`allocate_event: a sample of ${SINGLE_SAMPLE} events per tenant under ${SINGLE_MODELS.length} models`, async () => {
    const mismatches: string[] = [];
    let compared = 0;
    for (const tenant of TENANTS) {
      const { events: evs, touches } = data.get(tenant)!;
      const byCustomer = groupByCustomer(touches);
      const sample = evs.filter((_, i) => i % Math.floor(evs.length / SINGLE_SAMPLE) === 0).slice(0, SINGLE_SAMPLE);
      for (const base of SINGLE_MODELS) {
        const version = base + '-single';
        for (const e of sample) {
          const want = allocate(e, byCustomer.get(e.customerId) ?? [], modelFor(tenant, base), DIRECT)
            .map((a) => `${a.channel} ${value(a)}`);
          const rows = await withTenant(worker, tenant, (tx) => tx`
            select channel, allocated_revenue_cents::text as cents, allocation_ratio::text as ratio, touchpoint_count, tenant_id::text
              from apportion.allocate_event(${e.id}, ${version}) order by channel`);
          const got = rows.map((r) => `${r.channel} ${r.cents} ${r.ratio} ${r.touchpoint_count}`);
          if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${tenant} ${version} ${e.id}: engine ${JSON.stringify(got)}, reference ${JSON.stringify(want)}`);
          if (rows.some((r) => r.tenant_id !== tenant)) mismatches.push(`${tenant} ${version} ${e.id}: a row of another tenant`);
          compared++;
        }
      }
    }
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(compared).toBe(TENANTS.length * SINGLE_MODELS.length * SINGLE_SAMPLE);
  });

  it(`explain_allocation: ${SINGLE_SAMPLE} events per tenant under every model give the stored rows and the exact weights`, async () => {
    const mismatches: string[] = [];
    let compared = 0;
    for (const tenant of TENANTS) {
      const { events: evs, touches } = data.get(tenant)!;
      const byCustomer = groupByCustomer(touches);
      const sample = evs.filter((_, i) => i % Math.floor(evs.length / SINGLE_SAMPLE) === 1).slice(0, SINGLE_SAMPLE);
      for (const version of Object.keys(MODELS)) {
        for (const e of sample) {
          const want = allocate(e, byCustomer.get(e.customerId) ?? [], modelFor(tenant, version), DIRECT)
            .map((a) => `${a.channel} ${a.cents} ${a.touchpointCount} ${a.weight.n}/${a.weight.d}`);
          const rows = await withTenant(worker, tenant, (tx) => tx`
            select distinct channel, allocated_revenue_cents::text as cents, touchpoint_count,
                   channel_weight_num::text || '/' || channel_weight_den::text as weight
              from apportion.explain_allocation(${e.id}, ${version})
             where allocated_revenue_cents is not null order by channel`);
          const got = rows.map((r) => `${r.channel} ${r.cents} ${r.touchpoint_count} ${r.weight}`);
          if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${tenant} ${version} ${e.id}: explain ${JSON.stringify(got)}, reference ${JSON.stringify(want)}`);
          compared++;
        }
      }
    }
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(compared).toBe(TENANTS.length * Object.keys(MODELS).length * SINGLE_SAMPLE);
  });

  it('train_model: transition counts, P(conversion) and removal effects, exactly', async () => {
    const markov = Object.keys(MODELS).filter((v) => MODELS[v]!.kind === 'markov');
    let channels = 0;
    for (const tenant of TENANTS) {
      for (const version of markov) {
        const want = modelFor(tenant, version).trained!;
        const transitions = await withTenant(worker, tenant, (tx) => tx`
          select from_state, to_state, transition_count::text as n from apportion.markov_transitions
           where model_version = ${version} order by from_state, to_state`);
        expect(Object.fromEntries(transitions.map((t) => [`${t.from_state}>${t.to_state}`, t.n])))
          .toEqual(Object.fromEntries([...want.transitions].map(([k, n]) => [k, n.toString()])));
        const summary = await withTenant(worker, tenant, (tx) => tx`
          select channel, removal_effect_num::text as re_num, removal_effect_den::text as re_den,
                 p_conversion_num::text as p_num, p_conversion_den::text as p_den
            from apportion.markov_summary(${version})`);
        const [row] = await withTenant(worker, tenant, (tx) => tx`
          select path_count::text, conversion_count::text from apportion.trained_models where model_version = ${version}`);
        expect([row!.path_count, row!.conversion_count]).toEqual([want.paths.toString(), want.conversions.toString()]);
        expect(summary.map((r) => `${r.channel} ${r.re_num}/${r.re_den}`))
          .toEqual([...want.removalEffects].map(([c, re]) => `${c} ${re.n}/${re.d}`));
        for (const r of summary) expect(`${r.p_num}/${r.p_den}`).toBe(`${want.pConversion.n}/${want.pConversion.d}`);
        // Flow conservation: P(conversion) = conversions / paths.
        expect(want.pConversion.n * want.paths).toBe(want.conversions * want.pConversion.d);
        channels += summary.length;
      }
    }
    expect(channels).toBeGreaterThan(TENANTS.length * markov.length * 5);
  });
});
