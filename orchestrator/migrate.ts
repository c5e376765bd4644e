// Installs apportion into a database: versioned migrations (migrations/, via
// node-pg-migrate), then the readable SQL sources of functions and views
// (db/, applied in file-name order).
//
// - Everything lives in schema `apportion`, including the migrations
//   bookkeeping table (apportion.schema_migrations).
// - Concurrent runs serialise on an advisory lock, so a second migrate waits
//   for the first instead of failing; it waits at most lockTimeoutMs (any
//   login can take an advisory lock) and then fails naming the holder.
// - Re-running is a no-op: db/ is applied again only when a migration ran or
//   a file's checksum changed; checksums live in apportion.db_sources.
// - db/ is the whole definition of what it holds: privileges are granted
//   afresh, and functions, views, triggers and policies it no longer defines
//   are dropped (and named in the log).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { DB_SOURCES_DIR, MIGRATIONS_DIR } from './paths.js';


// Arbitrary but fixed: 'apportion' in ASCII, as a bigint.
const MIGRATE_LOCK_KEY = '7310040112105110';

export interface MigrateResult {
  migrations: string[];
  sources: string[];
}

interface SourceFile {
  name: string;
  sql: string;
  sha256: string;
}

function readSources(): SourceFile[] {
  return fs
    .readdirSync(DB_SOURCES_DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((name) => {
      const sql = fs.readFileSync(path.join(DB_SOURCES_DIR, name), 'utf8');
      return { name, sql, sha256: createHash('sha256').update(sql).digest('hex') };
    });
}

/** How long migrate waits for the migration lock before giving up, by default. */
export const MIGRATE_LOCK_TIMEOUT_MS = 120_000;

export interface MigrateOptions {
  /** Give up waiting for the migration lock after this long (default 120 s). */
  lockTimeoutMs?: number;
}

interface LockHolder {
  pid: number;
  usename: string | null;
  application_name: string | null;
  state: string | null;
  since: Date | null;
}

// The sessions holding the migration lock (a bigint advisory lock shows in
// pg_locks as classid = high 32 bits, objid = low 32 bits, objsubid 1).
const LOCK_HOLDERS = `
  select l.pid, a.usename, a.application_name, a.state, a.backend_start as since
    from pg_locks l left join pg_stat_activity a on a.pid = l.pid
   where l.locktype = 'advisory' and l.granted and l.objsubid = 1
     and l.classid = $1::oid and l.objid = $2::oid and l.pid <> pg_backend_pid()`;

function describeHolders(holders: LockHolder[]): string {
  if (holders.length === 0) return 'a session that has since let it go';
  return holders
    .map((h) => `pid ${h.pid} (role ${h.usename ?? '?'}, application ${JSON.stringify(h.application_name ?? '')}, ${h.state ?? 'state unknown'}, connected since ${h.since?.toISOString() ?? '?'})`)
    .join(', ');
}

/**
 * Take the migration lock, waiting at most timeoutMs. Any login can take an
 * advisory lock, so one that holds ours must not stall every migration:
 * migrate waits, names the holder once, and after the timeout stops with an
 * error naming it (terminate that session, or wait for it, and run again).
 */
async function takeMigrationLock(client: pg.Client, timeoutMs: number, log: (msg: string) => void): Promise<void> {
  const key = BigInt(MIGRATE_LOCK_KEY);
  const ids = [String(key >> 32n), String(key & 0xffffffffn)];
  const deadline = Date.now() + timeoutMs;
  const seconds = `${timeoutMs % 1000 === 0 ? timeoutMs / 1000 : (timeoutMs / 1000).toFixed(1)} s`;
  let named = false;
  for (;;) {
    const { rows } = await client.query<{ ok: boolean }>(`select pg_try_advisory_lock(${MIGRATE_LOCK_KEY}) as ok`);
    if (rows[0]!.ok) return;
    const holders = (await client.query<LockHolder>(LOCK_HOLDERS, ids)).rows;
    if (Date.now() >= deadline) {
      throw new Error(
        `the migration lock (pg_advisory_lock(${MIGRATE_LOCK_KEY})) is held by ${describeHolders(holders)}; ` +
          `gave up after ${seconds}. Another migrate may still be running; otherwise end that session ` +
          `(select pg_terminate_backend(pid)) and run migrate again`,
      );
    }
    if (!named) {
      log(`waiting for the migration lock, held by ${describeHolders(holders)} (at most ${seconds})`);
      named = true;
    }
    await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
  }
}

/** The lock timeout from APPORTION_MIGRATE_LOCK_TIMEOUT_MS, if set (an error if it is not a whole number). */
export function migrateOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): MigrateOptions {
  const raw = env.APPORTION_MIGRATE_LOCK_TIMEOUT_MS;
  if (raw === undefined || raw === '') return {};
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0) throw new Error(`APPORTION_MIGRATE_LOCK_TIMEOUT_MS must be a whole number of milliseconds (got ${JSON.stringify(raw)})`);
  return { lockTimeoutMs: ms };
}

export async function migrate(databaseUrl: string, log: (msg: string) => void = () => {}, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('notice', () => {});
  await client.connect();
  try {
    await takeMigrationLock(client, opts.lockTimeoutMs ?? MIGRATE_LOCK_TIMEOUT_MS, log);
    const ran = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      migrationsTable: 'schema_migrations',
      migrationsSchema: 'apportion',
      createMigrationsSchema: true,
      schema: 'apportion',
      direction: 'up',
      checkOrder: true,
      singleTransaction: true,
      noLock: true, // we hold our own lock
      log: () => {},
    });
    for (const m of ran) log(`applied migration ${m.name}`);
    const sources = await applySources(client, ran.length > 0, log);
    for (const s of sources) log(`applied source db/${s}`);
    return { migrations: ran.map((m) => m.name), sources };
  } finally {
    await client.query(`select pg_advisory_unlock(${MIGRATE_LOCK_KEY})`).catch(() => {});
    await client.end();
  }
}

// Runtime privileges start from nothing whenever db/ is applied: db/ grants
// them again, so a grant removed from db/ is gone.
const RUNTIME_ROLES = 'public, apportion_ingest, apportion_worker, apportion_reader, apportion_allocator';
const RESET_PRIVILEGES = `
  do $$
  declare
    o text;
  begin
    for o in
      select format('schema %I', n.nspname) from pg_namespace n
       where n.nspname in ('apportion', 'apportion_internal')
      union all
      select format('table %s', c.oid::regclass) from pg_class c
       where c.relnamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
         and c.relkind in ('r', 'p', 'v', 'm', 'f') and c.relowner = 'apportion_owner'::regrole
      union all
      select format('sequence %s', c.oid::regclass) from pg_class c
       where c.relnamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
         and c.relkind = 'S' and c.relowner = 'apportion_owner'::regrole
      union all
      select format('function %s', p.oid::regprocedure) from pg_proc p
       where p.pronamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
      union all
      select format('type %s', t.oid::regtype) from pg_type t
        left join pg_class c on c.oid = t.typrelid
       where t.typnamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
         and t.typtype in ('c', 'd', 'e', 'r', 'm') and t.typelem = 0 and (c.oid is null or c.relkind = 'c')
    loop
      execute format('revoke all on %s from ${RUNTIME_ROLES}', o);
    end loop;
  end
  $$`;

// What db/ defines and the catalog holds: functions, views, triggers (other
// than constraint triggers and partitions' clones) and policies in
// apportion's schemas, with the version of each catalog row. A row that
// applying db/ did not write again is one db/ no longer defines. (Functions
// are told by their row's ctid, taken after the privilege reset rewrote
// every one of them; the others by xmin.)
const DEFINED_OBJECTS = `
  select kind, name, drop_sql, version from (
    select 'function' as kind, p.oid::regprocedure::text as name, p.ctid::text as version,
           format('drop %s %s', case p.prokind when 'p' then 'procedure' else 'function' end, p.oid::regprocedure) as drop_sql
      from pg_proc p where p.pronamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
    union all
    select 'view', c.oid::regclass::text, case when r.xmin = pg_current_xact_id()::xid then 'written' end,
           format('drop view %s', c.oid::regclass)
      from pg_class c join pg_rewrite r on r.ev_class = c.oid and r.rulename = '_RETURN'
     where c.relnamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace) and c.relkind = 'v'
    union all
    select 'trigger', format('%s on %s', t.tgname, t.tgrelid::regclass), case when t.xmin = pg_current_xact_id()::xid then 'written' end,
           format('drop trigger %I on %s', t.tgname, t.tgrelid::regclass)
      from pg_trigger t join pg_class c on c.oid = t.tgrelid
     where c.relnamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
       and not t.tgisinternal and t.tgparentid = 0
    union all
    select 'policy', format('%s on %s', p.polname, p.polrelid::regclass), case when p.xmin = pg_current_xact_id()::xid then 'written' end,
           format('drop policy %I on %s', p.polname, p.polrelid::regclass)
      from pg_policy p join pg_class c on c.oid = p.polrelid
     where c.relnamespace in ('apportion'::regnamespace, 'apportion_internal'::regnamespace)
  ) o
  order by kind, name`;

interface DefinedObject {
  kind: string;
  name: string;
  drop_sql: string;
  version: string | null;
}

/** The objects, named in full whatever the search_path db/ is applied with. */
async function definedObjects(client: pg.Client): Promise<DefinedObject[]> {
  await client.query('set local search_path = pg_catalog');
  const { rows } = await client.query<DefinedObject>(DEFINED_OBJECTS);
  await client.query('set local search_path = apportion, pg_catalog');
  return rows;
}

/**
 * Apply db/*.sql as apportion_owner, in one transaction, when anything
 * changed: runtime privileges reset, every file in name order, then whatever
 * db/ no longer defines dropped (never cascading: a leftover that something
 * else depends on stops the migration, naming both).
 */
async function applySources(client: pg.Client, force: boolean, log: (msg: string) => void): Promise<string[]> {
  const files = readSources();
  const { rows } = await client.query<{ name: string; sha256: string }>('select name, sha256 from apportion.db_sources');
  const applied = new Map(rows.map((r) => [r.name, r.sha256]));
  const changed = force || files.length !== applied.size || files.some((f) => applied.get(f.name) !== f.sha256);
  if (!changed) return [];
  await client.query('begin');
  try {
    await client.query('set local role apportion_owner');
    await client.query('set local search_path = apportion, pg_catalog');
    await client.query('set local check_function_bodies = on');
    await client.query(RESET_PRIVILEGES);
    const functionsBefore = new Map(
      (await definedObjects(client)).filter((o) => o.kind === 'function').map((o) => [o.name, o.version]),
    );
    for (const f of files) {
      try {
        await client.query(f.sql);
      } catch (err) {
        throw new Error(`db/${f.name}: ${(err as Error).message}`, { cause: err });
      }
    }
    const leftovers = (await definedObjects(client)).filter((o) =>
      o.kind === 'function' ? functionsBefore.get(o.name) === o.version : o.version !== 'written',
    );
    for (const l of leftovers) {
      try {
        await client.query(l.drop_sql);
      } catch (err) {
        throw new Error(`${l.kind} ${l.name} is no longer defined in db/ but cannot be dropped: ${(err as Error).message}`, { cause: err });
      }
      log(`dropped ${l.kind} ${l.name}: no longer defined in db/`);
    }
    await client.query('delete from apportion.db_sources');
    for (const f of files) {
      await client.query('insert into apportion.db_sources (name, sha256) values ($1, $2)', [f.name, f.sha256]);
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback');
    throw err;
  }
  return files.map((f) => f.name);
}
