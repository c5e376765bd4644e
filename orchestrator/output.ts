// How the CLI prints: aligned tables for people, JSON for machines. In JSON
// counts and durations are numbers (bigint and numeric values from the
// database arrive as strings or BigInt), ids of jobs too while they are
// safe integers; timestamps are ISO-8601 text.

export type Row = Record<string, unknown>;

const NUMERIC_TEXT = /^-?\d+(\.\d+)?$/;

/** A database value as JSON should carry it. */
export function plain(v: unknown, key = ''): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) return v.toISOString();
  // Numeric text from the database (counts, seconds, job ids), but never
  // codes that merely look numeric, like SQLSTATEs ('22023').
  if (typeof v === 'string' && NUMERIC_TEXT.test(v) && !/(^|_)code$/.test(key) && Number.isFinite(Number(v))) {
    const n = Number(v);
    if (!v.includes('.') && !Number.isSafeInteger(n)) return v;
    return n;
  }
  if (Array.isArray(v)) return v.map((x) => plain(x));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Row).map(([k, x]) => [k, plain(x, k)]));
  }
  return v;
}

export function toJson(v: unknown): string {
  return JSON.stringify(plain(v), null, 2);
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(plain(v));
  return String(v);
}

/** An aligned text table of the given columns (all of the first row's when omitted). */
export function table(rows: Row[], columns?: string[], empty = '(none)'): string {
  if (rows.length === 0) return empty;
  const cols = columns ?? Object.keys(rows[0]!);
  const body = rows.map((r) => cols.map((c) => cell(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...body.map((b) => b[i]!.length)));
  const numeric = cols.map((_c, i) => body.every((b) => b[i] === '' || NUMERIC_TEXT.test(b[i]!)));
  const line = (cells: string[]) =>
    cells.map((s, i) => (numeric[i] ? s.padStart(widths[i]!) : s.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
