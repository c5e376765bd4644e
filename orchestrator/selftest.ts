// `apportion test`: run the pgTAP suite shipped with this package against
// DATABASE_URL, a database where this version of apportion is installed,
// beside whatever else it holds. Every suite file runs in one transaction
// that is rolled back, so it leaves nothing behind; pgTAP itself is created
// for the run and dropped after it when the database did not have it. The
// output is pg_prove's (TAP with --verbose), for the caller's CI.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { PGTAP_DIR } from './paths.js';
import { checkSchemaVersion } from './schema.js';

/** Something the run needs and this machine or database does not have (exit 78). */
export class SelfTestSetupError extends Error {}

export interface SelfTestOptions {
  /** Print every TAP line, not only failures and the summary. */
  verbose?: boolean;
  /** Only these suite files (names in pgtap-tests/, e.g. 20_allocation_rerun.sql). */
  files?: string[];
  log?: (msg: string) => void;
}

export function suiteFiles(only: string[] = []): string[] {
  const all = fs.readdirSync(PGTAP_DIR).filter((f) => f.endsWith('.sql')).sort();
  for (const f of only) {
    if (!all.includes(path.basename(f))) throw new SelfTestSetupError(`no suite file ${f} in ${PGTAP_DIR}`);
  }
  return only.length > 0 ? only.map((f) => path.basename(f)) : all;
}

export function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** libpq's environment for a postgres:// URL (psql and pg_prove read it). */
export function pgEnv(databaseUrl: string): Record<string, string> {
  const u = new URL(databaseUrl);
  return {
    PGHOST: u.hostname.replace(/^\[|\]$/g, ''),
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
    ...(u.searchParams.get('sslmode') ? { PGSSLMODE: u.searchParams.get('sslmode')! } : {}),
  };
}

/**
 * What a rolled-back run must leave as it found: this database's schemas and
 * extensions, and none of the roles the suite's files create (roles belong to
 * the whole cluster, where other work may add its own meanwhile).
 */
async function footprint(sql: postgres.Sql, files: string[]): Promise<string[]> {
  const suiteRoles = new Set<string>();
  for (const f of files) {
    for (const m of fs.readFileSync(path.join(PGTAP_DIR, f), 'utf8').matchAll(/create role ([a-z_][a-z0-9_]*)/gi)) suiteRoles.add(m[1]!);
  }
  const rows = await sql<{ k: string }[]>`
    select 'schema ' || nspname as k from pg_namespace where nspname !~ '^pg_(temp|toast_temp)_'
    union all select 'extension ' || extname from pg_extension
    union all select 'role ' || rolname from pg_roles where rolname = any (${[...suiteRoles]}::text[])
    order by 1`;
  return rows.map((r) => r.k);
}

/** Run the suite; resolves to true when every file passed. */
export async function runSelfTest(databaseUrl: string, opts: SelfTestOptions = {}): Promise<boolean> {
  const log = opts.log ?? ((m: string) => console.error(m));
  for (const cmd of ['pg_prove', 'psql']) {
    if (!onPath(cmd)) {
      throw new SelfTestSetupError(
        `apportion test needs ${cmd} on PATH (Debian: apt-get install postgresql-client libtap-parser-sourcehandler-pgtap-perl)`);
    }
  }
  const files = suiteFiles(opts.files);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  let createdPgtap = false;
  let before: string[] = [];
  try {
    await checkSchemaVersion(sql);
    const [me] = await sql<{ superuser: boolean; name: string }[]>`
      select rolsuper as superuser, current_user as name from pg_roles where rolname = current_user`;
    if (!me?.superuser) {
      throw new SelfTestSetupError(
        `apportion test must connect as a superuser (the suite acts as each runtime role and login, SET ROLE and SET SESSION AUTHORIZATION); ${me?.name ?? 'this role'} is not one`);
    }
    before = await footprint(sql, files);
    const [has] = await sql<{ n: number }[]>`select count(*)::int as n from pg_extension where extname = 'pgtap'`;
    if (has!.n === 0) {
      try {
        await sql`create extension pgtap`;
      } catch (err) {
        throw new SelfTestSetupError(
          `pgTAP is not available on the server (Debian: apt-get install postgresql-15-pgtap): ${(err as Error).message}`);
      }
      createdPgtap = true;
    }
    const res = spawnSync('pg_prove', ['--ext', '.sql', opts.verbose ? '--verbose' : '--failures', ...files], {
      cwd: PGTAP_DIR,
      stdio: 'inherit',
      env: { ...process.env, ...pgEnv(databaseUrl) },
    });
    let ok = res.status === 0;
    if (createdPgtap) {
      await sql`drop extension pgtap`;
      createdPgtap = false;
    }
    const after = await footprint(sql, files);
    const left = after.filter((k) => !before.includes(k));
    const gone = before.filter((k) => !after.includes(k));
    if (left.length > 0 || gone.length > 0) {
      log(`apportion test: the run changed the database: ${[...left.map((k) => `+${k}`), ...gone.map((k) => `-${k}`)].join(', ')}`);
      ok = false;
    }
    return ok;
  } finally {
    if (createdPgtap) await sql`drop extension if exists pgtap`.catch(() => {});
    await sql.end({ timeout: 1 });
  }
}
