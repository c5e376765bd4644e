// An independent implementation of docs/attribution.md in TypeScript, written
// from its text, with exact arithmetic (BigInt rationals): the SQL engine is
// checked against it row for row. It shares no code with db/20_allocation.sql;
// where that text leaves a rounding choice open it follows the engine's
// documented one (time_decay: 2^-x from per-half-life factors of the exact
// exponent, rounded half up to 40 decimals, relative to the newest touch).
import { createHash } from 'node:crypto';

export type Kind =
  | 'last_touch' | 'last_non_direct' | 'first_touch' | 'linear' | 'time_decay' | 'position_based' | 'fixed_split'
  | 'markov';

export interface ModelParams {
  lookback?: string;
  fallback_channel?: string;
  half_life?: string;
  first?: number;
  last?: number;
  channels?: string[];
  weights?: number[];
  training_start?: string;
  training_end?: string;
}

export interface Touch {
  id: string;
  customerId: string;
  channel: string;
  /** microseconds since the Unix epoch, UTC */
  at: bigint;
}

export interface ConversionEvent {
  id: string;
  customerId: string;
  at: bigint;
  revenueCents: bigint;
}

export interface Allocation {
  eventId: string;
  channel: string;
  cents: bigint;
  /** the channel's weight rounded half up to 6 decimals, as text "0.333333" */
  ratio: string;
  /** the channel's exact weight */
  weight: Rat;
  touchpointCount: number;
}

// ---- exact rationals ------------------------------------------------------

export interface Rat { n: bigint; d: bigint }

const gcd = (a: bigint, b: bigint): bigint => {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b) [a, b] = [b, a % b];
  return a;
};
export const rat = (n: bigint, d = 1n): Rat => {
  if (d === 0n) throw new Error('division by zero');
  if (d < 0n) [n, d] = [-n, -d];
  const g = gcd(n, d) || 1n;
  return { n: n / g, d: d / g };
};
export const add = (a: Rat, b: Rat): Rat => rat(a.n * b.d + b.n * a.d, a.d * b.d);
export const sub = (a: Rat, b: Rat): Rat => rat(a.n * b.d - b.n * a.d, a.d * b.d);
export const mul = (a: Rat, b: Rat): Rat => rat(a.n * b.n, a.d * b.d);
export const div = (a: Rat, b: Rat): Rat => rat(a.n * b.d, a.d * b.n);
export const cmp = (a: Rat, b: Rat): number => {
  const x = a.n * b.d - b.n * a.d;
  return x < 0n ? -1 : x > 0n ? 1 : 0;
};
/** floor for non-negative rationals */
const floorNonNeg = (a: Rat): bigint => a.n / a.d;

/** A JSON number's decimal text as an exact rational ("0.4" -> 2/5). */
export function decimal(value: number | string): Rat {
  const text = String(value);
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) throw new Error(`not a decimal: ${text}`);
  const frac = m[3] ?? '';
  let n = BigInt(m[2]! + frac) * (m[1] ? -1n : 1n);
  let d = 10n ** BigInt(frac.length);
  const e = Number(m[4] ?? 0);
  if (e > 0) n *= 10n ** BigInt(e);
  if (e < 0) d *= 10n ** BigInt(-e);
  return rat(n, d);
}

/** Round half up to `places` decimals; returns the integer value * 10^places. */
function roundHalfUpScaled(a: Rat, places: number): bigint {
  const scale = 10n ** BigInt(places);
  // floor(a * scale + 1/2) for a >= 0
  return (2n * a.n * scale + a.d) / (2n * a.d);
}

/** Fixed-point text of an integer scaled by 10^places ("333333", 6 -> "0.333333"). */
function scaledText(v: bigint, places: number): string {
  const s = v.toString().padStart(places + 1, '0');
  return `${s.slice(0, s.length - places)}.${s.slice(s.length - places)}`;
}

// ---- intervals ------------------------------------------------------------

const UNIT_US: Record<string, bigint> = {
  microsecond: 1n, millisecond: 1000n, second: 1_000_000n, minute: 60_000_000n,
  hour: 3_600_000_000n, day: 86_400_000_000n, week: 604_800_000_000n,
};

/** Interval text like "30 days", "12 hours 30 minutes" in microseconds (days are 24 h, UTC). */
export function intervalMicros(text: string): bigint {
  let total = 0n;
  const re = /(\d+)\s*(microsecond|millisecond|second|minute|hour|day|week)s?/g;
  let matched = '';
  for (const m of text.matchAll(re)) {
    total += BigInt(m[1]!) * UNIT_US[m[2]!]!;
    matched += m[0];
  }
  if (!matched || text.replace(re, '').trim() !== '') throw new Error(`reference: unsupported interval ${JSON.stringify(text)}`);
  return total;
}

// ---- 2^-x to 60+ digits ---------------------------------------------------

const FIXED = 10n ** 70n;

/** ln 2 * 10^70, from ln 2 = 2 atanh(1/3) = 2 sum 1 / ((2k+1) 3^(2k+1)). */
const LN2_FIXED = (() => {
  let sum = 0n;
  let pow3 = 3n;
  for (let k = 0n; ; k++) {
    const term = FIXED * 10n ** 5n / ((2n * k + 1n) * pow3);
    if (term === 0n) break;
    sum += term;
    pow3 *= 9n;
  }
  return (2n * sum) / 10n ** 5n;
})();

/** 2^-(a / h) * 10^70 for 0 <= a / h < 1, to within a few units in the last place. */
function pow2NegFixed(a: bigint, h: bigint): bigint {
  // y = a / h * ln 2, in [0, ln 2); exp(-y) by its Taylor series.
  const y = (a * LN2_FIXED) / h;
  let term = FIXED;
  let sum = FIXED;
  for (let k = 1n; term !== 0n; k++) {
    term = (term * y) / (FIXED * k);
    sum += k % 2n === 1n ? -term : term;
  }
  return sum;
}

/** v / 10^drop rounded half up (v >= 0). */
function roundDrop(v: bigint, drop: bigint): bigint {
  const scale = 10n ** drop;
  return (2n * v + scale) / (2n * scale);
}

/**
 * time_decay touch weight relative to the newest touch, exactly as the
 * engine documents it: dt = q * half_life + r in microseconds; the weight is
 * 2^-q times 2^-(d_k * 1000^k / half_life) for the base-1000 digits d_k of r,
 * each factor rounded half up to 50 decimals, the product rounded half up to
 * 40 decimals; 0 from q >= 134 on.
 */
export function decayWeight(dtMicros: bigint, halfLifeMicros: bigint): Rat {
  const q = dtMicros / halfLifeMicros;
  if (q >= 134n) return rat(0n);
  const r = dtMicros % halfLifeMicros;
  // 2^-q = 5^q / 10^q exactly, rounded half up to 50 decimals.
  let product = q <= 50n ? 5n ** q * 10n ** (50n - q) : roundDrop(5n ** q, q - 50n);
  let places = 50n;
  for (let k = 0n, rest = r; k < 5n; k++, rest /= 1000n) {
    const d = rest % 1000n;
    product *= roundDrop(pow2NegFixed(d * 1000n ** k, halfLifeMicros), 20n);
    places += 50n;
  }
  return rat(roundDrop(product, places - 40n), 10n ** 40n);
}

// ---- the models -----------------------------------------------------------

export interface Model {
  kind: Kind;
  params: ModelParams;
  /** markov: the tenant's trained state (trainMarkov) */
  trained?: MarkovState;
}

/**
 * Allocate one event. `touches` are the tenant's touches of any customer;
 * `directChannels` the tenant's direct-type channel codes.
 */
export function allocate(event: ConversionEvent, touches: Touch[], model: Model, directChannels: Set<string>): Allocation[] {
  const p = model.params;
  const lookback = intervalMicros(p.lookback ?? '30 days');
  const fallback = p.fallback_channel ?? 'unattributed';

  const weights = new Map<string, Rat>();
  const counts = new Map<string, number>();
  const addWeight = (channel: string, w: Rat) => weights.set(channel, add(weights.get(channel) ?? rat(0n), w));

  if (model.kind === 'fixed_split') {
    const channels = p.channels!;
    channels.forEach((c, i) => addWeight(c, p.weights ? decimal(p.weights[i]!) : rat(1n, BigInt(channels.length))));
  } else {
    const inWindow = touches
      .filter((t) => t.customerId === event.customerId && t.at <= event.at && t.at >= event.at - lookback)
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const n = inWindow.length;
    if (n === 0) {
      addWeight(fallback, rat(1n));
    } else if (model.kind === 'markov') {
      // Per channel: its removal effect over the event's channels' sum; a
      // channel unseen in training weighs 0; all 0: each touch weighs 1.
      const re = model.trained!.removalEffects;
      for (const t of inWindow) counts.set(t.channel, (counts.get(t.channel) ?? 0) + 1);
      const channels = [...counts.keys()];
      const sum = channels.reduce((acc, c) => add(acc, re.get(c) ?? rat(0n)), rat(0n));
      for (const c of channels) {
        addWeight(c, sum.n === 0n ? rat(BigInt(counts.get(c)!)) : div(re.get(c) ?? rat(0n), sum));
      }
    } else {
      for (const t of inWindow) counts.set(t.channel, (counts.get(t.channel) ?? 0) + 1);
      const touchWeight: Rat[] = inWindow.map(() => rat(0n));
      switch (model.kind) {
        case 'last_touch':
          touchWeight[n - 1] = rat(1n);
          break;
        case 'first_touch':
          touchWeight[0] = rat(1n);
          break;
        case 'last_non_direct': {
          let i = n - 1;
          while (i >= 0 && directChannels.has(inWindow[i]!.channel)) i--;
          touchWeight[i >= 0 ? i : n - 1] = rat(1n);
          break;
        }
        case 'linear':
          for (let i = 0; i < n; i++) touchWeight[i] = rat(1n, BigInt(n));
          break;
        case 'position_based': {
          const first = decimal(p.first ?? '0.4');
          const last = decimal(p.last ?? '0.4');
          if (n === 1) touchWeight[0] = rat(1n);
          else if (n === 2) touchWeight[0] = touchWeight[1] = rat(1n, 2n);
          else {
            const middle = div(sub(sub(rat(1n), first), last), rat(BigInt(n - 2)));
            for (let i = 0; i < n; i++) touchWeight[i] = i === 0 ? first : i === n - 1 ? last : middle;
          }
          break;
        }
        case 'time_decay': {
          const halfLife = intervalMicros(p.half_life ?? '7 days');
          const newest = inWindow[n - 1]!.at;
          const raw = inWindow.map((t) => decayWeight(newest - t.at, halfLife));
          const total = raw.reduce(add, rat(0n));
          for (let i = 0; i < n; i++) touchWeight[i] = div(raw[i]!, total);
          break;
        }
        default:
          throw new Error(`reference: unknown kind ${model.kind}`);
      }
      inWindow.forEach((t, i) => addWeight(t.channel, touchWeight[i]!));
    }
  }

  // Normalise (fixed_split weights and the others already sum to 1; this
  // keeps the method honest if they did not), drop zero weights.
  const total = [...weights.values()].reduce(add, rat(0n));
  const parts = [...weights.entries()]
    .filter(([, w]) => w.n > 0n)
    .map(([channel, w]) => {
      const weight = div(w, total);
      const exact = mul(rat(event.revenueCents), weight);
      const floor = floorNonNeg(exact);
      return { channel, weight, floor, remainder: sub(exact, rat(floor)), md5: md5(`${event.id}:${channel}`) };
    });
  let leftover = event.revenueCents - parts.reduce((s, x) => s + x.floor, 0n);
  const order = [...parts].sort((a, b) => -cmp(a.remainder, b.remainder) || (a.md5 < b.md5 ? -1 : a.md5 > b.md5 ? 1 : 0));
  const extra = new Set<string>();
  for (const x of order) {
    if (leftover <= 0n) break;
    extra.add(x.channel);
    leftover--;
  }
  return parts
    .map((x) => ({
      eventId: event.id,
      channel: x.channel,
      cents: x.floor + (extra.has(x.channel) ? 1n : 0n),
      ratio: scaledText(roundHalfUpScaled(x.weight, 6), 6),
      weight: x.weight,
      touchpointCount: model.kind === 'fixed_split' ? 0 : counts.get(x.channel) ?? 0,
    }))
    .sort((a, b) => (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0));
}

// ---- markov: paths, counts, and the absorbing chain solved exactly --------

export interface MarkovState {
  /** "from>to" -> count; states are channels and (start), (conversion), (null) */
  transitions: Map<string, bigint>;
  paths: bigint;
  conversions: bigint;
  pConversion: Rat;
  removalEffects: Map<string, Rat>;
}

const byTouchOrder = (a: Touch, b: Touch) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function collapse(touches: Touch[]): string[] {
  const out: string[] = [];
  for (const t of [...touches].sort(byTouchOrder)) if (out[out.length - 1] !== t.channel) out.push(t.channel);
  return out;
}

/** The training paths of docs/attribution.md, "Data-driven model: markov". */
export function markovPaths(events: ConversionEvent[], touches: Touch[], lookback: bigint, start: bigint, end: bigint):
  { channels: string[]; converted: boolean }[] {
  const byCustomer = new Map<string, Touch[]>();
  for (const t of touches) byCustomer.set(t.customerId, [...(byCustomer.get(t.customerId) ?? []), t]);
  const eventsByCustomer = new Map<string, ConversionEvent[]>();
  for (const e of events) eventsByCustomer.set(e.customerId, [...(eventsByCustomer.get(e.customerId) ?? []), e]);
  const counts = (t: Touch, e: ConversionEvent) => t.customerId === e.customerId && t.at <= e.at && t.at >= e.at - lookback;
  const paths: { channels: string[]; converted: boolean }[] = [];
  for (const e of events) {
    if (e.at < start || e.at >= end) continue;
    const eligible = (byCustomer.get(e.customerId) ?? []).filter((t) => counts(t, e));
    if (eligible.length > 0) paths.push({ channels: collapse(eligible), converted: true });
  }
  for (const [customer, own] of byCustomer) {
    const evs = eventsByCustomer.get(customer) ?? [];
    const loose = own.filter((t) => t.at >= start && t.at < end && !evs.some((e) => counts(t, e)));
    if (loose.length > 0) paths.push({ channels: collapse(loose), converted: false });
  }
  return paths;
}

/**
 * P(conversion) of the chain, from a rational Gauss-Jordan elimination of
 * x_i = sum_j p_ij x_j + p_i,conv over the channels still in the chain
 * (`removed`: a channel whose incoming transitions go to (null)).
 */
function conversionProbability(transitions: Map<string, bigint>, channels: string[], removed?: string): Rat {
  const live = channels.filter((c) => c !== removed);
  const index = new Map(live.map((c, i) => [c, i]));
  const k = live.length;
  const total = new Map<string, bigint>();
  for (const [key, n] of transitions) {
    const from = key.split('>')[0]!;
    total.set(from, (total.get(from) ?? 0n) + n);
  }
  // Rows: (I - Q) x = r, as rationals.
  const m: Rat[][] = live.map((_, i) => live.map((__, j) => rat(i === j ? 1n : 0n)).concat([rat(0n)]));
  for (const [key, n] of transitions) {
    const [from, to] = key.split('>') as [string, string];
    const i = index.get(from);
    if (i === undefined) continue;
    const p = rat(n, total.get(from)!);
    const j = index.get(to);
    if (j !== undefined) m[i]![j] = sub(m[i]![j]!, p);
    else if (to === '(conversion)') m[i]![k] = add(m[i]![k]!, p);
  }
  for (let c = 0; c < k; c++) {
    const r = m.findIndex((row, i) => i >= c && row[c]!.n !== 0n);
    if (r < 0) throw new Error('reference: singular chain');
    [m[c], m[r]] = [m[r]!, m[c]!];
    const pivot = m[c]![c]!;
    m[c] = m[c]!.map((v) => div(v, pivot));
    for (let i = 0; i < k; i++) {
      if (i === c || m[i]![c]!.n === 0n) continue;
      const f = m[i]![c]!;
      m[i] = m[i]!.map((v, j) => sub(v, mul(f, m[c]![j]!)));
    }
  }
  let p = rat(0n);
  const startTotal = total.get('(start)') ?? 0n;
  for (const [key, n] of transitions) {
    const [from, to] = key.split('>') as [string, string];
    if (from !== '(start)') continue;
    const j = index.get(to);
    if (j !== undefined) p = add(p, mul(rat(n, startTotal), m[j]![k]!));
  }
  return p;
}

/** Train: transition counts, P(conversion) and every channel's removal effect, by one solve per channel. */
export function trainMarkov(events: ConversionEvent[], touches: Touch[], params: ModelParams): MarkovState {
  const lookback = intervalMicros(params.lookback ?? '30 days');
  const us = (text: string) => BigInt(Date.parse(text)) * 1000n;
  const paths = markovPaths(events, touches, lookback, us(params.training_start!), us(params.training_end!));
  const transitions = new Map<string, bigint>();
  const bump = (from: string, to: string) => transitions.set(`${from}>${to}`, (transitions.get(`${from}>${to}`) ?? 0n) + 1n);
  for (const path of paths) {
    ['(start)', ...path.channels].forEach((from, i, states) => {
      bump(from, i + 1 < states.length ? states[i + 1]! : path.converted ? '(conversion)' : '(null)');
    });
  }
  const channels = [...new Set(paths.flatMap((p) => p.channels))].sort();
  const pConversion = conversionProbability(transitions, channels);
  const removalEffects = new Map<string, Rat>();
  for (const c of channels) {
    removalEffects.set(c, pConversion.n === 0n ? rat(0n) : sub(rat(1n), div(conversionProbability(transitions, channels, c), pConversion)));
  }
  return {
    transitions,
    paths: BigInt(paths.length),
    conversions: BigInt(paths.filter((p) => p.converted).length),
    pConversion,
    removalEffects,
  };
}

// ---- refunds --------------------------------------------------------------

export interface Refund { id: string; cents: bigint; at: bigint }

/**
 * An event's refunds split over one model's allocation of it (channel ->
 * cents): in order (at, id), each over what is left of each channel, floor
 * then largest remainders, ties by md5(refund_id:channel). Returns
 * refund id -> channel -> cents (parts of 0 left out).
 */
export function splitRefunds(allocation: Map<string, bigint>, refunds: Refund[]): Map<string, Map<string, bigint>> {
  const left = new Map(allocation);
  const out = new Map<string, Map<string, bigint>>();
  const ordered = [...refunds].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const r of ordered) {
    const total = [...left.values()].reduce((x, y) => x + y, 0n);
    if (total === 0n) throw new Error(`reference: nothing left to refund for ${r.id}`);
    const parts = [...left].map(([channel, l]) => ({ channel, floor: (r.cents * l) / total, rem: (r.cents * l) % total, md5: md5(`${r.id}:${channel}`) }));
    let spare = r.cents - parts.reduce((x, p) => x + p.floor, 0n);
    for (const p of [...parts].sort((a, b) => (a.rem > b.rem ? -1 : a.rem < b.rem ? 1 : a.md5 < b.md5 ? -1 : a.md5 > b.md5 ? 1 : 0))) {
      if (spare <= 0n) break;
      p.floor += 1n;
      spare--;
    }
    const split = new Map<string, bigint>();
    for (const p of parts) {
      if (p.floor > 0n) split.set(p.channel, p.floor);
      left.set(p.channel, left.get(p.channel)! - p.floor);
    }
    out.set(r.id, split);
  }
  return out;
}

function md5(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

// ---- deterministic randomness ---------------------------------------------

/** mulberry32: a small seeded PRNG, enough for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Microseconds since the epoch as Postgres timestamptz text (UTC). */
export function timestampText(us: bigint): string {
  const ms = us / 1000n;
  const micro = ((us % 1_000_000n) + 1_000_000n) % 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // 2025-06-01T10:00:00.123Z
  return `${iso.slice(0, 19)}.${micro.toString().padStart(6, '0')}+00`;
}
