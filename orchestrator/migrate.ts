// Installs apportion into a database: versioned migrations (migrations/, via
// node-pg-migrate), then the readable SQL sources of functions and views
// (db/, applied in file-name order).
//
// - Everything lives in schema `apportion`, including the migrations
//   bookkeeping table (apportion.schema_migrations).
// - Concurrent runs serialise on a blocking advisory lock, so a second
//   migrate waits for the first instead of failing.
// - Re-running is a no-op: db/ is applied again only when a migration ran or
//   a file's checksum changed; checksums live in apportion.db_sources.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner } from 'node-pg-migrate';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const MIGRATIONS_DIR = path.join(root, 'migrations');
export const DB_SOURCES_DIR = path.join(root, 'db');

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

export async function migrate(databaseUrl: string, log: (msg: string) => void = () => {}): Promise<MigrateResult> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('notice', () => {});
  await client.connect();
  try {
    await client.query(`select pg_advisory_lock(${MIGRATE_LOCK_KEY})`);
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
      noLock: true, // we hold our own blocking lock
      log: () => {},
    });
    for (const m of ran) log(`migration ${m.name}`);
    const sources = await applySources(client, ran.length > 0);
    for (const s of sources) log(`source db/${s}`);
    return { migrations: ran.map((m) => m.name), sources };
  } finally {
    await client.query(`select pg_advisory_unlock(${MIGRATE_LOCK_KEY})`).catch(() => {});
    await client.end();
  }
}

/** Apply db/*.sql as apportion_owner, in one transaction, when anything changed. */
async function applySources(client: pg.Client, force: boolean): Promise<string[]> {
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
    for (const f of files) {
      try {
        await client.query(f.sql);
      } catch (err) {
        throw new Error(`db/${f.name}: ${(err as Error).message}`, { cause: err });
      }
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
