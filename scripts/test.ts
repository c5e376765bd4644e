#!/usr/bin/env -S npx tsx
// npm test: plpgsql_check lint, the pgTAP suite (pg_prove) and vitest, all
// against a real PostgreSQL. Exits non-zero if any of them fails.
//
// Without DATABASE_URL it starts a throwaway cluster (scripts/lib/cluster.ts),
// migrates a template database, and gives pgTAP and every vitest file a
// database of its own. With DATABASE_URL it uses that database (which needs
// pgTAP installable) and runs the vitest files one after another in it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { startCluster, recreateDatabase, findSystemBinDir, type Server } from './lib/cluster.js';
import { migrate } from '../orchestrator/migrate.js';
import { diffSnapshot, dumpSchema } from './lib/schema.js';
import { onPath, pgEnv } from '../orchestrator/selftest.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// npm test [-- lint|schema|pgtap|vitest ...] [pgtap-tests/x.sql ...] [vitest filters/flags ...]
const args = process.argv.slice(2);
const PARTS = ['lint', 'schema', 'pgtap', 'vitest'];
const only = new Set(args.filter((a) => PARTS.includes(a)));
const pgtapFiles = args.filter((a) => a.endsWith('.sql'));
const vitestArgs = args.filter((a) => !PARTS.includes(a) && !a.endsWith('.sql'));
const want = (part: string) => only.size === 0 || only.has(part);

// chromium: the dashboard's browser test; plproxy: the scale-out tests' router.
const OS_PACKAGES = ['postgresql-15-pgtap', 'libtap-parser-sourcehandler-pgtap-perl', 'postgresql-15-plpgsql-check',
  'postgresql-15-plproxy', 'chromium'];


function extensionInstalled(binDir: string | undefined, name: string): boolean {
  if (!binDir) return false;
  const share = spawnSync(path.join(binDir, 'pg_config'), ['--sharedir'], { encoding: 'utf8' }).stdout?.trim()
    || binDir.replace('/usr/lib/postgresql/', '/usr/share/postgresql/').replace(/\/bin$/, '');
  return fs.existsSync(path.join(share, 'extension', `${name}.control`));
}

/** Install pgTAP, pg_prove and plpgsql_check when missing and we may. */
function ensureTools(external: boolean): void {
  const binDir = findSystemBinDir();
  const missing = !onPath('pg_prove') || !onPath('chromium')
    || (!external && ['pgtap', 'plpgsql_check', 'plproxy'].some((e) => !extensionInstalled(binDir, e)));
  if (!missing) return;
  const cmd = `apt-get update && apt-get install -y ${OS_PACKAGES.join(' ')}`;
  const isRoot = process.getuid?.() === 0;
  const sudoOk = !isRoot && onPath('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if (!onPath('apt-get') || (!isRoot && !sudoOk)) {
    console.error(`pgTAP, pg_prove, plpgsql_check, PL/Proxy or chromium is missing. Install them with:\n  sudo sh -c '${cmd}'\n(or set DATABASE_URL to a server that has pgTAP, with pg_prove on PATH)`);
    process.exit(2);
  }
  console.log(`installing test tools: ${OS_PACKAGES.join(', ')}`);
  const res = spawnSync(isRoot ? 'sh' : 'sudo', isRoot ? ['-c', cmd] : ['sh', '-c', cmd], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (res.status !== 0) {
    console.error(`installing test tools failed; run it yourself:\n  sudo sh -c '${cmd}'`);
    process.exit(2);
  }
}

/** plpgsql_check over every PL/pgSQL function in apportion's schemas. */
async function lint(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`create extension if not exists plpgsql_check`;
    const findings = await sql<{ fn: string; level: string; message: string; lineno: number | null }[]>`
      select f.oid::regprocedure::text as fn, r.level, r.message, r.lineno
        from pg_proc f
        join pg_namespace n on n.oid = f.pronamespace
        join pg_language l on l.oid = f.prolang
        -- trigger functions are checked against the table they are attached to
        left join lateral (select t.tgrelid, t.tgnewtable, t.tgoldtable from pg_trigger t where t.tgfoid = f.oid limit 1) trg on true
        cross join lateral plpgsql_check_function_tb(f.oid, coalesce(trg.tgrelid, 0),
                                                     newtable => trg.tgnewtable, oldtable => trg.tgoldtable) r
       where n.nspname in ('apportion', 'apportion_internal') and l.lanname = 'plpgsql'
       order by 1, r.lineno`;
    for (const f of findings) console.error(`plpgsql_check ${f.level}: ${f.fn} line ${f.lineno ?? '?'}: ${f.message}`);
    console.log(findings.length === 0 ? 'plpgsql_check: no findings' : `plpgsql_check: ${findings.length} finding(s)`);
    return findings.length === 0;
  } finally {
    await sql.end();
  }
}

/** The committed schema snapshot matches what this install produced. */
function checkSchema(url: string): boolean {
  const diff = diffSnapshot(dumpSchema(url));
  if (diff === '') {
    console.log('schema: test/schema.sql matches a fresh install');
    return true;
  }
  console.error(`${diff}\nschema: test/schema.sql differs from a fresh install (above); if the change is intended, run npm run schema and commit test/schema.sql`);
  return false;
}

function pgProve(url: string): boolean {
  const files = pgtapFiles.length > 0 ? pgtapFiles : fs.readdirSync(path.join(root, 'pgtap-tests'))
    .filter((f) => f.endsWith('.sql')).sort().map((f) => path.join('pgtap-tests', f));
  const res = spawnSync('pg_prove', ['--failures', '--ext', '.sql', ...files], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...pgEnv(url) },
  });
  return res.status === 0;
}

function vitest(env: Record<string, string>, sequential: boolean): boolean {
  const res = spawnSync('npx', ['vitest', 'run', ...(sequential ? ['--no-file-parallelism'] : []), ...vitestArgs], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  return res.status === 0;
}

const external = process.env.DATABASE_URL;
ensureTools(Boolean(external));

let server: Server | undefined;
let ok = true;
try {
  let url: string;
  let env: Record<string, string>;
  if (external) {
    url = external;
    await migrate(url);
    env = { APPORTION_TEST_DATABASE_URL: url };
  } else {
    server = await startCluster({ fast: true });
    console.log(`test cluster: ${server.kind} PostgreSQL in ${server.dataDir}`);
    const template = await recreateDatabase(server.adminUrl, 'apportion_template');
    await migrate(template);
    url = await recreateDatabase(server.adminUrl, 'apportion_pgtap');
    await migrate(url);
    env = { APPORTION_TEST_ADMIN_URL: server.adminUrl, APPORTION_TEST_TEMPLATE: 'apportion_template' };
  }
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql`create extension if not exists pgtap`;
  await sql.end();

  if (want('lint')) ok = (await lint(url)) && ok;
  if (want('schema')) ok = checkSchema(url) && ok;
  if (want('pgtap')) ok = pgProve(url) && ok;
  if (want('vitest')) ok = vitest(env, Boolean(external)) && ok;
} catch (err) {
  console.error(err);
  ok = false;
} finally {
  await server?.stop();
}
console.log(ok ? 'npm test: all suites passed' : 'npm test: FAILED');
process.exit(ok ? 0 : 1);
