// Figures over repeated runs, and the formats every benchmark prints them in.

export interface Stat {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

/** Median (the upper middle run for an even count), min and max of `runs`. */
export function stat(runs: number[]): Stat {
  const s = [...runs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]!, runs };
}

/** The p-th percentile of an ascending array (nearest rank, rounded down). */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A rate rounded to a whole number, with thousands separators. */
export const r0 = (x: number) => Math.round(x).toLocaleString('en-US');

/** "median (min..max)", each formatted by `f`. */
export const fmt = (s: Stat | undefined, f = r0) => (s ? `${f(s.median)} (${f(s.min)}..${f(s.max)})` : 'n/a');
