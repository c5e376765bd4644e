// Database access for the orchestrator: connections and the one way the
// TypeScript side ever sets a tenant.
import postgres from 'postgres';

export type Sql = postgres.Sql<Record<string, never>>;
export type Tx = postgres.TransactionSql<Record<string, never>>;

export interface ConnectOptions {
  max?: number;
  applicationName?: string;
  /** Server-side prepared statements; off when going through a transaction pooler. */
  prepare?: boolean;
}

export function connect(url: string, opts: ConnectOptions = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    prepare: opts.prepare ?? true,
    onnotice: () => {},
    connection: { application_name: opts.applicationName ?? 'apportion' },
    // bigint ids and cents stay exact
    types: { bigint: postgres.BigInt },
    fetch_types: NO_TYPE_FETCH,
  }) as unknown as Sql;
}

/**
 * A pool that can be swapped for a fresh one while everything holding `sql`
 * keeps using it: `sql` forwards every call to the current pool. After a
 * connection is cut at the wrong moment, postgres.js (3.4.9) can leave that
 * connection object unable to send (a write timer never reset: later queries
 * on it are never sent) or write to its closed socket from a timer (a
 * TypeError no caller can catch). Such a pool is replaced, not reused; the
 * old one is ended at once.
 */
export interface ReplaceablePool {
  sql: Sql;
  /** Swap in a fresh pool; the old one is ended without waiting. */
  replace(): void;
  /** How many times the pool was replaced. */
  readonly replacements: number;
}

export function replaceablePool(url: string, opts: ConnectOptions = {}): ReplaceablePool {
  let current = connect(url, opts);
  let replacements = 0;
  const target = (() => {}) as unknown as Sql;
  const sql = new Proxy(target, {
    apply: (_t, _this, args: unknown[]) => (current as unknown as (...a: unknown[]) => unknown)(...args),
    get: (_t, prop) => {
      const v = (current as unknown as Record<string | symbol, unknown>)[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(current) : v;
    },
  });
  return {
    sql,
    replace() {
      const old = current;
      current = connect(url, opts);
      replacements++;
      void old.end({ timeout: 0 }).catch(() => {});
    },
    get replacements() {
      return replacements;
    },
  };
}

/** The postgres.js failure that leaves a pool unusable: a write to a connection whose socket is gone. */
export function isDriverWriteBug(err: unknown): boolean {
  const e = err as { name?: string; message?: string; stack?: string };
  return e?.name === 'TypeError' && /reading 'write'/.test(e.message ?? '') && /postgres[\/](src|cjs)[\/]/.test(e.stack ?? '');
}

/**
 * postgres.js fetches the array types on every new connection and drops
 * that query's promise: a connection cut during the fetch (a restart, a
 * terminated backend) rejects it unhandled, which ends the process. The
 * orchestrator does without: no array comes back from its queries, and the
 * arrays it sends go as literals (pgArray) cast in SQL.
 */
export const NO_TYPE_FETCH = false;

/** An array literal for a `${pgArray(xs)}::text[]` (or bigint[], uuid[]) parameter. */
export function pgArray(values: readonly (string | bigint | number)[]): string {
  return `{${values.map((v) => `"${String(v).replace(/["\\]/g, (c) => '\\' + c)}"`).join(',')}}`;
}

/**
 * Run `fn` in one transaction with the tenant (and optionally the
 * correlation id) set transaction-locally: set_config(..., true). When the
 * transaction ends the settings are gone, so a pooled connection never
 * carries a tenant into the next transaction. A null tenant runs system
 * work (housekeeping) with no tenant at all.
 */
export async function withTenant<T>(
  sql: Sql,
  tenantId: string | null,
  fn: (tx: Tx) => Promise<T>,
  opts: { correlationId?: string | null } = {},
): Promise<T> {
  return (await sql.begin(async (tx) => {
    // Sent now, ahead of fn's queries on the same connection (pipelined, so
    // no extra round trip); a failure here aborts the transaction.
    const setting = tx`select set_config('app.tenant_id', ${tenantId ?? ''}, true), set_config('app.correlation_id', ${opts.correlationId ?? ''}, true)`.execute();
    setting.catch(() => {}); // if it fails, fn's queries fail too (25P02) and we rethrow below
    const result = await fn(tx as Tx);
    await setting;
    return result;
  })) as T;
}
